// tests/unit/config/default_config_test.cpp - the file `postern init` writes loads with our loader,
// matches the compiled-in defaults, and documents every key
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.hpp"

namespace postern::config {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

bool is_comment(const std::string& line) { return line.rfind("#", 0) == 0; }
bool is_header(const std::string& line) { return line.rfind("[", 0) == 0; }
bool is_key(const std::string& line) { return !line.empty() && !is_comment(line) && !is_header(line); }

TEST(DefaultConfig, ParsesWithOurLoader) {
    auto r = parse(default_config_text(), "/opt/pt/postern.toml");
    ASSERT_TRUE(r) << r.error_message();
    const config& c = **r;
    const config def;  // compiled-in defaults
    EXPECT_EQ(c.hostname, "localhost");
    ASSERT_EQ(c.server.listen.size(), 1u);
    EXPECT_EQ(c.server.listen[0].to_string(), "127.0.0.1:2525");
    EXPECT_EQ(c.server.max_message_size, def.server.max_message_size);
    EXPECT_EQ(c.server.max_buffered_size, def.server.max_buffered_size);
    EXPECT_EQ(c.server.max_recipients, def.server.max_recipients);
    EXPECT_EQ(c.server.max_connections, def.server.max_connections);
    EXPECT_EQ(c.server.max_connections_per_ip, def.server.max_connections_per_ip);
    EXPECT_EQ(c.server.command_timeout, def.server.command_timeout);
    EXPECT_EQ(c.server.data_timeout, def.server.data_timeout);
    EXPECT_EQ(c.server.max_errors, def.server.max_errors);
    EXPECT_EQ(c.server.max_line_length, def.server.max_line_length);
    EXPECT_EQ(c.spool.dir, "/opt/pt/var/spool");
    EXPECT_EQ(c.spool.sync, spool_sync::filesystem);
    EXPECT_TRUE(c.tls.opportunistic);
    EXPECT_EQ(c.tls.cert_file, "/opt/pt/var/tls/cert.pem");
    EXPECT_EQ(c.tls.key_file, "/opt/pt/var/tls/key.pem");
    EXPECT_EQ(c.tls.ca_file, "");
    EXPECT_EQ(c.tls.handshake_retry_delay, 300s);
    EXPECT_EQ(c.queue.retry_schedule, def.queue.retry_schedule);
    EXPECT_EQ(c.queue.max_age, def.queue.max_age);
    EXPECT_EQ(c.queue.hold, false);
    EXPECT_EQ(c.delivery.port, 25);
    EXPECT_EQ(c.delivery.command_timeout, def.delivery.command_timeout);
    EXPECT_EQ(c.delivery.final_timeout, def.delivery.final_timeout);
    EXPECT_TRUE(c.delivery.mime_conversion);
    EXPECT_TRUE(c.dns.servers.empty());
    EXPECT_EQ(c.log.format, log_format::text);
    ASSERT_EQ(c.domains.size(), 1u);
    EXPECT_EQ(c.domains[0].name, "localhost");
    EXPECT_EQ(c.domains[0].maildir, "/opt/pt/var/mail/localhost");
    EXPECT_TRUE(c.domains[0].relay_to.empty());
    EXPECT_TRUE(c.routes.empty());
    EXPECT_NE(c.find_domain("LOCALHOST"), nullptr);
}

TEST(DefaultConfig, LoadsFromAFileLikeInitWritesIt) {
    char tmpl[] = "/tmp/postern-init-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const fs::path dir = tmpl;
    const fs::path file = dir / "postern.toml";
    std::ofstream(file) << default_config_text();
    // load() checks that the certificate and key it names are there, as init writes them
    fs::create_directories(dir / "var/tls");
    std::ofstream(dir / "var/tls/cert.pem") << "x";
    std::ofstream(dir / "var/tls/key.pem") << "x";
    auto r = load(file.string());
    std::error_code ec;
    fs::remove_all(dir, ec);
    ASSERT_TRUE(r) << r.error_message();
    EXPECT_EQ((*r)->spool.dir, (dir / "var/spool").string());
    EXPECT_EQ((*r)->domains.at(0).maildir, (dir / "var/mail/localhost").string());
}

TEST(DefaultConfig, MentionsEveryKey) {
    const std::string text = default_config_text();
    for (const char* key :
         {"hostname", "listen", "max_message_size", "max_buffered_size", "max_recipients", "max_connections",
          "max_connections_per_ip", "command_timeout", "data_timeout", "max_errors", "max_line_length", "dir",
          "opportunistic", "cert_file", "key_file", "ca_file", "handshake_retry_delay", "retry_schedule", "max_age",
          "hold", "port", "final_timeout", "mime_conversion", "servers", "format", "name", "maildir"})
        EXPECT_NE(text.find("\n" + std::string(key) + " = "), std::string::npos) << key;
    for (const char* header : {"[server]", "[spool]", "[tls]", "[queue]", "[delivery]", "[dns]", "[log]", "[[domain]]"})
        EXPECT_NE(text.find("\n" + std::string(header) + "\n"), std::string::npos) << header;
}

TEST(DefaultConfig, EveryKeyHasAnExplainingComment) {
    // Each key, or run of related keys, is directly preceded by a comment (a table header in
    // between is fine: "# ...\n[[domain]]\nname = ...").
    const auto lines = lines_of(default_config_text());
    ASSERT_GT(lines.size(), 20u);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (!is_key(lines[i])) continue;
        std::size_t j = i;
        while (j > 0 && (is_key(lines[j - 1]) || is_header(lines[j - 1]))) --j;
        EXPECT_TRUE(j > 0 && is_comment(lines[j - 1])) << "line " << i + 1 << " has no comment: " << lines[i];
    }
}

TEST(DefaultConfig, CommentedRouteExampleIsValid) {
    // Uncommenting the [[route]] example must give a valid file.
    const auto lines = lines_of(default_config_text());
    std::string text;
    bool in_example = false;
    for (const auto& line : lines) {
        if (line == "# [[route]]") in_example = true;
        if (in_example && line.rfind("# ", 0) == 0) text += line.substr(2) + "\n";
        else text += line + "\n";
    }
    ASSERT_TRUE(in_example) << "the default file no longer shows a [[route]] example";
    auto r = parse(text, "/opt/pt/postern.toml");
    ASSERT_TRUE(r) << r.error_message();
    ASSERT_EQ((*r)->routes.size(), 1u);
    EXPECT_EQ((*r)->routes[0].domain, "partner.test");
    EXPECT_EQ((*r)->routes[0].hosts.at(0).to_string(), "127.0.0.2:2526");
}

}  // namespace
}  // namespace postern::config
