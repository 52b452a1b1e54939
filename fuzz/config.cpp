// fuzz/config.cpp - the configuration loader (src/config: toml++ parse, then validation into
// the typed config) and its value parsers (durations, sizes, host:port).
// Input: one octet choosing the mode, then a TOML file (modes 0, 1) or one value (2: duration
// and size, 3: host:port).
// Invariants, beyond no crash / leak / UB / uncaught exception:
// - config::parse gives either a config or an error of one or more lines, each exactly
//   "FILE:LINE: message" with FILE as given, 1 <= LINE <= the number of lines in the file + 1,
//   sorted by LINE, and a message without control characters;
// - a config honours what config.hpp promises: a valid host name, absolute paths, a hosted
//   domain has exactly one of maildir / relay_to, profile TLS requirements are consistent
//   (verify only with mandatory, fingerprints exactly with verify = "fingerprint", nothing but
//   `tls` with tls = "none") and no entry is in two profiles;
// - parsing the same text twice gives the same result;
// - durations and sizes: formatting a parsed value parses back to it; host:port: to_string()
//   parses back to the same host and port.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "config/values.hpp"
#include "fuzz.hpp"

namespace postern::fuzz {
namespace {

using namespace postern::config;

constexpr const char* file = "/etc/postern/postern.toml";

void check_error(std::string_view text, const std::string& message) {
    FUZZ_CHECK(!message.empty(), "empty error message");
    std::size_t lines_in_file = 1;
    for (char c : text) lines_in_file += c == '\n';
    const std::string prefix = std::string(file) + ":";
    unsigned long last = 0;
    std::size_t pos = 0;
    while (pos <= message.size()) {
        const std::size_t e = std::min(message.find('\n', pos), message.size());
        const std::string_view line = std::string_view(message).substr(pos, e - pos);
        pos = e + 1;
        FUZZ_CHECK(line.substr(0, prefix.size()) == prefix, "error without FILE: " + show(message));
        std::string_view rest = line.substr(prefix.size());
        std::size_t digits = 0;
        unsigned long n = 0;
        while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9' && digits < 9)
            n = n * 10 + static_cast<unsigned long>(rest[digits++] - '0');
        FUZZ_CHECK(digits > 0 && n >= 1 && n <= lines_in_file + 1, "error LINE: " + show(line));
        FUZZ_CHECK(n >= last, "errors not sorted by line: " + show(message));
        last = n;
        rest.remove_prefix(digits);
        FUZZ_CHECK(rest.size() > 2 && rest.substr(0, 2) == ": ", "error format: " + show(line));
        for (unsigned char c : rest) FUZZ_CHECK(c >= 0x20 && c != 0x7f, "control octet in error: " + show(line));
    }
}

bool absolute(const std::string& p) { return !p.empty() && p.front() == '/'; }

void check_requirements(const tls_requirements& r, const std::string& what) {
    if (r.verify != verify_level::none) FUZZ_CHECK(r.tls == tls_mode::mandatory, what + ": verify without mandatory");
    FUZZ_CHECK(r.fingerprints.empty() == (r.verify != verify_level::fingerprint), what + ": fingerprints");
    if (!r.peer_names.empty())
        FUZZ_CHECK(r.verify == verify_level::ca_name || r.verify == verify_level::dane, what + ": peer_names");
    if (!r.ca_file.empty()) {
        FUZZ_CHECK(r.verify == verify_level::ca || r.verify == verify_level::ca_name, what + ": ca_file");
        FUZZ_CHECK(absolute(r.ca_file), what + ": ca_file not absolute");
    }
    if (r.tls == tls_mode::none)
        FUZZ_CHECK(r.verify == verify_level::none && r.peer_names.empty() && r.fingerprints.empty() &&
                       r.ca_file.empty(),
                   what + ": settings with tls = none");
}

void check_config(const postern::config::config& c) {
    FUZZ_CHECK(detail::is_valid_domain(c.hostname), "hostname " + show(c.hostname));
    FUZZ_CHECK(absolute(c.spool.dir), "spool.dir " + show(c.spool.dir));
    FUZZ_CHECK(c.tls.cert_file.empty() || absolute(c.tls.cert_file), "tls.cert_file");
    FUZZ_CHECK(c.tls.key_file.empty() || absolute(c.tls.key_file), "tls.key_file");
    FUZZ_CHECK(!c.server.listen.empty(), "no listen address");
    FUZZ_CHECK(c.server.max_recipients >= 1 && c.server.max_message_size >= 1 && c.server.max_line_length >= 1,
               "server limits");
    FUZZ_CHECK(!c.queue.retry_schedule.empty(), "empty retry schedule");
    std::set<std::string> domains;
    for (const auto& d : c.domains) {
        FUZZ_CHECK(d.relay_to.empty() != d.maildir.empty(), "domain " + show(d.name) + ": maildir xor relay_to");
        FUZZ_CHECK(d.maildir.empty() || absolute(d.maildir), "domain maildir not absolute");
        FUZZ_CHECK(detail::to_lower(d.name) == d.name, "domain name not lower-case");
        FUZZ_CHECK(domains.insert(d.name).second, "domain twice: " + show(d.name));
        FUZZ_CHECK(c.find_domain(d.name) != nullptr, "find_domain misses " + show(d.name));
    }
    std::set<std::string> names, hosts, senders, recipients;
    for (const auto& p : c.profiles) {
        FUZZ_CHECK(names.insert(p.name).second, "profile name twice: " + show(p.name));
        check_requirements(p.outbound, "profile " + p.name + " outbound");
        check_requirements(p.inbound, "profile " + p.name + " inbound");
        for (const auto& h : p.hosts) FUZZ_CHECK(hosts.insert(h).second, "host in two profiles: " + show(h));
        for (const auto& d : p.sender_domains)
            FUZZ_CHECK(senders.insert(d).second, "sender domain in two profiles: " + show(d));
        for (const auto& d : p.recipient_domains)
            FUZZ_CHECK(recipients.insert(d).second, "recipient domain in two profiles: " + show(d));
    }
}

void check_file(std::string_view text) {
    const auto r = parse(text, file);
    const auto again = parse(text, file);
    FUZZ_CHECK(r.ok() == again.ok(), "parse is not deterministic");
    if (!r) {
        check_error(text, r.error_message());
        FUZZ_CHECK(r.error_message() == again.error_message(), "error message is not deterministic");
        return;
    }
    FUZZ_CHECK((*r)->source_path == file, "source_path " + show((*r)->source_path));
    check_config(**r);
}

void check_values(std::string_view text) {
    if (const auto d = parse_duration(text)) {
        const std::string f = detail::format_duration(*d);
        const auto d2 = parse_duration(f);
        FUZZ_CHECK(d2 && *d2 == *d, "duration round trip: " + show(text) + " -> " + f);
    }
    if (const auto s = detail::parse_size(text)) {
        std::string f = detail::format_size(*s);
        if (f.size() > 6 && f.compare(f.size() - 6, 6, " bytes") == 0) f.resize(f.size() - 6);  // message form
        const auto s2 = detail::parse_size(f);
        FUZZ_CHECK(s2 && *s2 == *s, "size round trip: " + show(text) + " -> " + f);
    }
}

void check_host_port(std::string_view text, std::uint16_t default_port) {
    const auto hp = parse_host_port(text, default_port);
    if (!hp) return;
    FUZZ_CHECK(default_port != 0 || hp->port != 0, "port 0 accepted: " + show(text));
    const std::string s = hp->to_string();
    const auto hp2 = parse_host_port(s, 0);
    FUZZ_CHECK(hp2 && hp2->host == hp->host && hp2->port == hp->port,
               "host:port round trip: " + show(text) + " -> " + show(s));
}

}  // namespace
}  // namespace postern::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace postern::fuzz;
    input in(data, size);
    const std::uint8_t mode = in.byte();
    const std::string_view text = in.rest();
    switch (mode & 3) {
        case 0:
        case 1: check_file(text); break;
        case 2: check_values(text); break;
        case 3: check_host_port(text, mode & 4 ? 25 : 0); break;
    }
    return 0;
}
