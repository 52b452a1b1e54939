// tests/unit/config/load_test.cpp - config::parse/load: every error class with its exact
// "FILE:LINE: message", defaults, values, relative paths, and reading files.
#include <gtest/gtest.h>
#include <algorithm>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config/config.hpp"

namespace postern::config {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A valid file around `body`: hostname on line 1, `body` from line 2, then [spool].
std::string doc(std::string_view body) {
    return "hostname = \"mx.test\"\n" + std::string(body) + "\n[spool]\ndir = \"s\"\n";
}

// The error message for `text`, or "<no error>".
std::string error_of(std::string_view text, const std::string& path = "p.toml") {
    auto r = parse(text, path);
    return r ? std::string("<no error>") : r.error_message();
}

std::shared_ptr<const config> parse_ok(std::string_view text, const std::string& path = "/srv/postern/postern.toml") {
    auto r = parse(text, path);
    EXPECT_TRUE(r) << r.error_message();
    return r ? *r : nullptr;
}

// ---- syntax ------------------------------------------------------------------------------

TEST(ConfigErrors, SyntaxErrorCarriesTomlLine) {
    const struct {
        const char* text;
        const char* prefix;
    } cases[] = {
        {"hostname = \"mx.test\"\n\n[server]\nmax_recipients = \n", "p.toml:4: "},
        {"hostname = \"mx.test\"\n\nhostname = \"b.test\"\n", "p.toml:3: "},  // redefinition
        {"hostname = \"mx.test\"\n[server\n", "p.toml:2: "},
        {"[spool]\ndir = \"unterminated\n", "p.toml:2: "},
    };
    for (const auto& c : cases) {
        const std::string e = error_of(c.text);
        EXPECT_EQ(e.rfind(c.prefix, 0), 0u) << e;
        EXPECT_GT(e.size(), std::string_view(c.prefix).size()) << "no description: " << e;
        EXPECT_EQ(e.find('\n'), std::string::npos) << "one line only: " << e;
    }
    // FILE is the path exactly as given.
    EXPECT_EQ(error_of("x = [\n", "../conf/p.toml").rfind("../conf/p.toml:1: ", 0), 0u);
}

TEST(ConfigErrors, SyntaxErrorQuotingAControlCharacterIsEscaped) {
    // toml++ quotes the offending character ("saw 't\x01'"); found by fuzz/config.
    const std::string e = error_of("ld=t\x01");
    EXPECT_EQ(e.rfind("p.toml:1: ", 0), 0u) << e;
    EXPECT_NE(e.find("\\x01"), std::string::npos) << e;
    for (unsigned char c : e) EXPECT_TRUE(c >= 0x20 && c != 0x7f) << e;
}

TEST(ConfigErrors, SyntaxErrorQuotingTheLineEndWritesItAsBackslashN) {
    // toml++ quotes what it saw with the line end ("saw 'fals<LF>'"): written as it writes a
    // lone line end ("saw '\n'"), not as \x0a.
    EXPECT_EQ(error_of("[tls]\nopportunistic = fals\n"),
              "p.toml:2: Error while parsing boolean: expected 'false', saw 'fals\\n'");
    EXPECT_EQ(error_of("[tls]\r\nopportunistic = fals\r\n"),
              "p.toml:2: Error while parsing boolean: expected 'false', saw 'fals\\r'");
}

// ---- unknown keys --------------------------------------------------------------------------

TEST(ConfigErrors, UnknownKeyAtTopLevel) {
    EXPECT_EQ(error_of(doc("foo = 1")), "p.toml:2: unknown key 'foo'");
    EXPECT_EQ(error_of(doc("\n[sever]\nlisten = []")), "p.toml:3: unknown key 'sever'");
}

TEST(ConfigErrors, UnknownKeyInTable) {
    const struct {
        const char* body;
        const char* want;
    } cases[] = {
        {"[server]\nmax_recipients = 5\nfoo = 1", "p.toml:4: unknown key 'server.foo'"},
        {"[server.sub]\nx = 1", "p.toml:2: unknown key 'server.sub'"},
        {"server.foo = 1", "p.toml:2: unknown key 'server.foo'"},  // dotted key
        {"[tls]\ncertfile = \"c\"", "p.toml:3: unknown key 'tls.certfile'"},
        {"[queue]\nretry = []", "p.toml:3: unknown key 'queue.retry'"},
        {"[delivery]\n\nports = 25", "p.toml:4: unknown key 'delivery.ports'"},
        {"[dns]\nserver = []", "p.toml:3: unknown key 'dns.server'"},
        {"[log]\nlevel = \"info\"", "p.toml:3: unknown key 'log.level'"},
    };
    for (const auto& c : cases) EXPECT_EQ(error_of(doc(c.body)), c.want) << c.body;
    EXPECT_EQ(error_of("hostname = \"h.test\"\n[spool]\ndir = \"s\"\nsize = 1\n"), "p.toml:4: unknown key 'spool.size'");
}

TEST(ConfigErrors, UnknownKeyInDomainAndRoute) {
    EXPECT_EQ(error_of(doc("[[domain]]\nname = \"a.test\"\nmaildir = \"m\"\nrelay = [\"x\"]")),
              "p.toml:5: unknown key 'domain.relay'");
    EXPECT_EQ(error_of(doc("[[domain]]\nname = \"a.test\"\nmaildir = \"m\"\n[[domain]]\nname = \"b.test\"\n"
                           "maildir = \"m\"\nport = 25")),
              "p.toml:8: unknown key 'domain.port'");
    EXPECT_EQ(error_of(doc("[[route]]\ndomain = \"p.test\"\nhosts = [\"10.0.0.1\"]\nhost = \"x\"")),
              "p.toml:5: unknown key 'route.host'");
}

// ---- types -----------------------------------------------------------------------------

TEST(ConfigErrors, WrongType) {
    const struct {
        const char* body;
        const char* want;
    } cases[] = {
        {"[server]\nmax_recipients = \"5\"", "p.toml:3: server.max_recipients: expected an integer"},
        {"[server]\nmax_recipients = 5.0", "p.toml:3: server.max_recipients: expected an integer"},
        {"[server]\nlisten = \"127.0.0.1:25\"", "p.toml:3: server.listen: expected an array of strings"},
        {"[server]\nlisten = [\n  \"127.0.0.1:25\",\n  25,\n]", "p.toml:5: server.listen: expected an array of strings"},
        {"[server]\ncommand_timeout = true",
         "p.toml:3: server.command_timeout: expected a duration (a string like \"5m\" or an integer number of seconds)"},
        {"[server]\nmax_message_size = 1.5",
         "p.toml:3: server.max_message_size: expected a size (an integer number of bytes or a string like \"50M\")"},
        {"[tls]\nopportunistic = \"yes\"", "p.toml:3: tls.opportunistic: expected a boolean (true or false)"},
        {"[tls]\ncert_file = 1\nkey_file = \"k\"", "p.toml:3: tls.cert_file: expected a string"},
        {"[queue]\nhold = 1", "p.toml:3: queue.hold: expected a boolean (true or false)"},
        {"[queue]\nretry_schedule = \"1m\"", "p.toml:3: queue.retry_schedule: expected an array of durations"},
        {"[delivery]\nport = \"25\"", "p.toml:3: delivery.port: expected an integer"},
        {"[delivery]\nmime_conversion = \"no\"", "p.toml:3: delivery.mime_conversion: expected a boolean (true or false)"},
        {"[log]\nformat = 1", "p.toml:3: log.format: expected a string"},
        {"server = 1", "p.toml:2: server: expected a table ([server])"},
        {"[[server]]\nlisten = []", "p.toml:2: server: expected a table ([server])"},
        {"[domain]\nname = \"a.test\"", "p.toml:2: domain: expected an array of tables ([[domain]])"},
        {"route = [1]", "p.toml:2: route: expected an array of tables ([[route]])"},
        {"[[domain]]\nname = 1\nmaildir = \"m\"", "p.toml:3: domain.name: expected a string"},
    };
    for (const auto& c : cases) EXPECT_EQ(error_of(doc(c.body)), c.want) << c.body;
    EXPECT_EQ(error_of("hostname = 5\n[spool]\ndir = \"s\"\n"), "p.toml:1: hostname: expected a string");
}

// ---- ranges ----------------------------------------------------------------------------

TEST(ConfigErrors, PortRange) {
    EXPECT_EQ(error_of(doc("[delivery]\nport = 0")), "p.toml:3: delivery.port: must be between 1 and 65535 (got 0)");
    EXPECT_EQ(error_of(doc("[delivery]\nport = 65536")),
              "p.toml:3: delivery.port: must be between 1 and 65535 (got 65536)");
    EXPECT_EQ(parse_ok(doc("[delivery]\nport = 65535"))->delivery.port, 65535);
    EXPECT_EQ(error_of(doc("[server]\nlisten = [\"127.0.0.1:0\"]")),
              "p.toml:3: server.listen: invalid address '127.0.0.1:0': port must be between 1 and 65535");
}

TEST(ConfigErrors, MaxMessageSizeRange) {
    const std::string range = "p.toml:3: server.max_message_size: must be between 1KiB and 2GiB ";
    EXPECT_EQ(error_of(doc("[server]\nmax_message_size = 1023")), range + "(got 1023 bytes)");
    EXPECT_EQ(error_of(doc("[server]\nmax_message_size = 2147483649")), range + "(got 2147483649 bytes)");
    EXPECT_EQ(error_of(doc("[server]\nmax_message_size = \"3G\"")), range + "(got 3GiB)");
    EXPECT_EQ(error_of(doc("[server]\nmax_message_size = -1")), range + "(got -1)");
    EXPECT_EQ(error_of(doc("[server]\nmax_message_size = \"50MB\"")),
              "p.toml:3: server.max_message_size: invalid size '50MB': unknown unit 'MB' (use K, M, G, KiB, MiB or GiB)");
    EXPECT_EQ(parse_ok(doc("[server]\nmax_message_size = 1024"))->server.max_message_size, 1024u);
    EXPECT_EQ(parse_ok(doc("[server]\nmax_message_size = \"2G\""))->server.max_message_size, 2147483648u);
    EXPECT_EQ(parse_ok(doc("[server]\nmax_message_size = \"10MiB\""))->server.max_message_size, 10485760u);
    EXPECT_EQ(parse_ok(doc("[server]\nmax_message_size = \"1K\""))->server.max_message_size, 1024u);
}

TEST(ConfigErrors, IntegerRanges) {
    const struct {
        const char* body;
        const char* want;
    } cases[] = {
        {"[server]\nmax_recipients = 0", "p.toml:3: server.max_recipients: must be between 1 and 100000 (got 0)"},
        {"[server]\nmax_recipients = 100001",
         "p.toml:3: server.max_recipients: must be between 1 and 100000 (got 100001)"},
        {"[server]\nmax_connections = 0", "p.toml:3: server.max_connections: must be between 1 and 100000 (got 0)"},
        {"[server]\nmax_connections = 100001",
         "p.toml:3: server.max_connections: must be between 1 and 100000 (got 100001)"},
        {"[server]\nmax_connections_per_ip = 0",
         "p.toml:3: server.max_connections_per_ip: must be between 1 and server.max_connections (1000) (got 0)"},
        {"[server]\nmax_connections_per_ip = 1001",
         "p.toml:3: server.max_connections_per_ip: must be between 1 and server.max_connections (1000) (got 1001)"},
        {"[server]\nmax_connections = 20\nmax_connections_per_ip = 21",
         "p.toml:4: server.max_connections_per_ip: must be between 1 and server.max_connections (20) (got 21)"},
        {"[server]\nmax_errors = 0", "p.toml:3: server.max_errors: must be between 1 and 1000 (got 0)"},
        {"[server]\nmax_errors = 1001", "p.toml:3: server.max_errors: must be between 1 and 1000 (got 1001)"},
        {"[server]\nmax_line_length = 511", "p.toml:3: server.max_line_length: must be between 512 and 65536 (got 511)"},
        {"[server]\nmax_line_length = 65537",
         "p.toml:3: server.max_line_length: must be between 512 and 65536 (got 65537)"},
        {"[server]\nthreads = -1", "p.toml:3: server.threads: must be between 0 and 256 (got -1)"},
        {"[server]\nthreads = 257", "p.toml:3: server.threads: must be between 0 and 256 (got 257)"},
    };
    for (const auto& c : cases) EXPECT_EQ(error_of(doc(c.body)), c.want) << c.body;

    auto cfg = parse_ok(doc("[server]\nmax_recipients = 100000\nmax_connections = 20\nmax_connections_per_ip = 20\n"
                            "max_errors = 1000\nmax_line_length = 512\nthreads = 3"));
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->server.max_recipients, 100000u);
    EXPECT_EQ(cfg->server.max_connections, 20u);
    EXPECT_EQ(cfg->server.max_connections_per_ip, 20u);
    EXPECT_EQ(cfg->server.max_errors, 1000u);
    EXPECT_EQ(cfg->server.max_line_length, 512u);
    EXPECT_EQ(cfg->server.threads, 3u);
}

TEST(ConfigErrors, DurationRanges) {
    const struct {
        const char* body;
        const char* want;
    } cases[] = {
        {"[server]\ncommand_timeout = 0", "p.toml:3: server.command_timeout: must be between 1s and 1h (got 0s)"},
        {"[server]\ncommand_timeout = -5", "p.toml:3: server.command_timeout: must be between 1s and 1h (got -5s)"},
        {"[server]\ncommand_timeout = \"61m\"", "p.toml:3: server.command_timeout: must be between 1s and 1h (got 61m)"},
        {"[server]\ndata_timeout = \"2h\"", "p.toml:3: server.data_timeout: must be between 1s and 1h (got 2h)"},
        {"[delivery]\ncommand_timeout = 0",
         "p.toml:3: delivery.command_timeout: must be between 1s and 1h (got 0s)"},
        {"[delivery]\nfinal_timeout = \"2h\"", "p.toml:3: delivery.final_timeout: must be between 1s and 1h (got 2h)"},
        {"[delivery]\nfinal_timeout = true",
         "p.toml:3: delivery.final_timeout: expected a duration (a string like \"5m\" or an integer number of seconds)"},
        {"[tls]\nhandshake_retry_delay = \"25h\"",
         "p.toml:3: tls.handshake_retry_delay: must be between 0s and 1d (got 25h)"},
        {"[queue]\nmax_age = \"61d\"", "p.toml:3: queue.max_age: must be between 0s and 60d (got 61d)"},
        {"[queue]\nretry_schedule = []", "p.toml:3: queue.retry_schedule: must not be empty"},
        {"[queue]\nretry_schedule = [\"1m\", \"0s\"]",
         "p.toml:3: queue.retry_schedule: must be between 1s and 7d (got 0s)"},
        {"[queue]\nretry_schedule = [\"1m\", \"8d\"]",
         "p.toml:3: queue.retry_schedule: must be between 1s and 7d (got 8d)"},
        {"[queue]\nretry_schedule = [\n  \"1m\",\n  \"1h\",\n  \"30m\",\n]",
         "p.toml:6: queue.retry_schedule: must not decrease (30m after 1h)"},
    };
    for (const auto& c : cases) EXPECT_EQ(error_of(doc(c.body)), c.want) << c.body;

    auto cfg = parse_ok(doc("[server]\ncommand_timeout = \"1h\"\ndata_timeout = 1\n[tls]\nhandshake_retry_delay = \"0s\"\n"
                            "[queue]\nretry_schedule = [\"1s\", \"1s\", \"1w\"]\nmax_age = \"60d\""));
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->server.command_timeout, 3600s);
    EXPECT_EQ(cfg->server.data_timeout, 1s);
    EXPECT_EQ(cfg->tls.handshake_retry_delay, 0s);
    EXPECT_EQ(cfg->queue.retry_schedule, (std::vector<seconds>{1s, 1s, 604800s}));
    EXPECT_EQ(cfg->queue.max_age, 60 * 86400s);
    EXPECT_EQ(parse_ok(doc("[tls]\nhandshake_retry_delay = \"1d\""))->tls.handshake_retry_delay, 86400s);
    auto d = parse_ok(doc("[delivery]\ncommand_timeout = 1\nfinal_timeout = \"1h\""));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->delivery.command_timeout, 1s);
    EXPECT_EQ(d->delivery.final_timeout, 3600s);
    EXPECT_TRUE(d->delivery.mime_conversion);
    auto off = parse_ok(doc("[delivery]\nmime_conversion = false"));
    ASSERT_TRUE(off);
    EXPECT_FALSE(off->delivery.mime_conversion);
}

TEST(ConfigErrors, LogFormat) {
    EXPECT_EQ(error_of(doc("[log]\nformat = \"xml\"")), "p.toml:3: log.format: must be \"text\" or \"json\" (got 'xml')");
    EXPECT_EQ(parse_ok(doc("[log]\nformat = \"json\""))->log.format, log_format::json);
    EXPECT_EQ(parse_ok(doc("[log]\nformat = \"text\""))->log.format, log_format::text);
}

// ---- durations and addresses inside the file ---------------------------------------------

TEST(ConfigErrors, BadDuration) {
    EXPECT_EQ(error_of(doc("[server]\ncommand_timeout = \"5x\"")),
              "p.toml:3: server.command_timeout: invalid duration '5x': unknown unit 'x' (use s, m, h, d or w)");
    EXPECT_EQ(error_of(doc("[queue]\nmax_age = \"\"")), "p.toml:3: queue.max_age: empty duration");
    EXPECT_EQ(error_of(doc("[queue]\nretry_schedule = [\"1m\",\n  \"-1m\"]")),
              "p.toml:4: queue.retry_schedule: invalid duration '-1m': expected a number followed by s, m, h, d or w");
    EXPECT_EQ(parse_ok(doc("[server]\ncommand_timeout = \"90\""))->server.command_timeout, 90s);
}

TEST(ConfigErrors, SameHostPortTwice) {
    // A second listener on the same address cannot bind (serve would fail without a line);
    // a next hop listed twice would be tried twice. The port and the IP text are compared as
    // meant: 10.0.0.5 is 10.0.0.5:25 in relay_to, [::1]:2525 is [0:0::1]:2525.
    EXPECT_EQ(error_of(doc("[server]\nlisten = [\"127.0.0.1:2525\",\n  \"127.0.0.1:2525\"]")),
              "p.toml:4: server.listen: '127.0.0.1:2525' is the same as an earlier entry (line 3)");
    EXPECT_EQ(error_of(doc("[server]\nlisten = [\"[::1]:2525\", \"[0:0::1]:2525\"]")),
              "p.toml:3: server.listen: '[0:0::1]:2525' is the same as an earlier entry (line 3)");
    EXPECT_EQ(error_of(doc("[[domain]]\nname = \"a.test\"\nrelay_to = [\"10.0.0.5:25\", \"10.0.0.5\"]")),
              "p.toml:4: domain.relay_to: '10.0.0.5' is the same as an earlier entry (line 4)");
    EXPECT_EQ(error_of(doc("[[domain]]\nname = \"a.test\"\nrelay_to = [\"MX.a.test\", \"mx.a.test:25\"]")),
              "p.toml:4: domain.relay_to: 'mx.a.test:25' is the same as an earlier entry (line 4)");
    // Other ports or hosts are other entries.
    EXPECT_EQ(error_of(doc("[server]\nlisten = [\"127.0.0.1:2525\", \"127.0.0.1:2526\", \"[::1]:2525\"]")),
              "<no error>");
}

TEST(ConfigErrors, BadHostPort) {
    EXPECT_EQ(error_of(doc("[server]\nlisten = [\"127.0.0.1\"]")),
              "p.toml:3: server.listen: invalid address '127.0.0.1': missing port");
    EXPECT_EQ(error_of(doc("[server]\nlisten = [\"::1:25\"]")),
              "p.toml:3: server.listen: invalid address '::1:25': write an IPv6 address in brackets, as in [::1]:25");
    EXPECT_EQ(error_of(doc("[[domain]]\nname = \"a.test\"\nrelay_to = [\"bad_host:25\"]")),
              "p.toml:4: domain.relay_to: invalid address 'bad_host:25': 'bad_host' is neither an IP address nor a "
              "valid host name");
    EXPECT_EQ(error_of(doc("[[route]]\ndomain = \"p.test\"\nhosts = [\"mx.p.test:x\"]")),
              "p.toml:4: route.hosts: invalid address 'mx.p.test:x': invalid port");
    EXPECT_EQ(error_of(doc("[dns]\nservers = [\"127.0.0.1:99999\"]")),
              "p.toml:3: dns.servers: invalid address '127.0.0.1:99999': port must be between 1 and 65535");
}

TEST(ConfigErrors, ListenMustBeNumeric) {
    EXPECT_EQ(error_of(doc("[server]\nlisten = [\"localhost:2525\"]")),
              "p.toml:3: server.listen: 'localhost:2525' is not numeric: the host must be an IP address");
    EXPECT_EQ(error_of(doc("[server]\nlisten = []")), "p.toml:3: server.listen: must not be empty");
    EXPECT_EQ(error_of(doc("[dns]\nservers = [\"ns.test\"]")),
              "p.toml:3: dns.servers: 'ns.test' is not numeric: the host must be an IP address");
}

// ---- domains and routes ---------------------------------------------------------------

TEST(ConfigErrors, DuplicateDomainNamesBothLines) {
    EXPECT_EQ(error_of(doc("[[domain]]\nname = \"a.test\"\nmaildir = \"m\"\n\n[[domain]]\nname = \"A.Test\"\n"
                           "relay_to = [\"10.0.0.1\"]")),
              "p.toml:7: duplicate domain 'a.test' (first defined at line 3)");
}

TEST(ConfigErrors, DomainNeedsExactlyOneOfRelayToAndMaildir) {
    EXPECT_EQ(error_of(doc("[[domain]]\nname = \"a.test\"\nrelay_to = [\"10.0.0.1\"]\nmaildir = \"m\"")),
              "p.toml:5: domain 'a.test': set either relay_to or maildir, not both");
    EXPECT_EQ(error_of(doc("[[domain]]\nname = \"a.test\"")),
              "p.toml:2: domain 'a.test': one of relay_to or maildir is required");
    EXPECT_EQ(error_of(doc("[[domain]]\nmaildir = \"m\"")), "p.toml:2: domain: missing required key 'name'");
    EXPECT_EQ(error_of(doc("[[domain]]\nname = \"a.test\"\nrelay_to = []")),
              "p.toml:4: domain.relay_to: must not be empty");
    EXPECT_EQ(error_of(doc("[[domain]]\nname = \"a.test\"\nmaildir = \"\"")),
              "p.toml:4: domain.maildir: must not be empty");
    EXPECT_EQ(error_of(doc("[[domain]]\nname = \"a_b.test\"\nmaildir = \"m\"")),
              "p.toml:3: domain.name: 'a_b.test' is not a valid domain name");
}

// A domain may be written with U-labels: the config holds (and matches by) the A-label; one
// that has none is an error at its line.
TEST(ConfigValues, ULabelDomainsBecomeALabels) {
    const auto cfg = parse_ok(doc("[[domain]]\nname = \"B\u00fccher.test\"\nmaildir = \"m\"\n[[route]]\n"
                                  "domain = \"\u4f8b.test\"\nhosts = [\"10.0.0.1\"]"));
    ASSERT_TRUE(cfg);
    ASSERT_EQ(cfg->domains.size(), 1u);
    EXPECT_EQ(cfg->domains[0].name, "xn--bcher-kva.test");
    EXPECT_NE(cfg->find_domain("xn--bcher-kva.test"), nullptr);
    ASSERT_EQ(cfg->routes.size(), 1u);
    EXPECT_EQ(cfg->routes[0].domain, "xn--fsq.test");
    // Both spellings of one domain are one domain.
    EXPECT_EQ(error_of(doc("[[domain]]\nname = \"b\u00fccher.test\"\nmaildir = \"m\"\n[[domain]]\n"
                           "name = \"xn--bcher-kva.test\"\nmaildir = \"n\"")),
              "p.toml:6: duplicate domain 'xn--bcher-kva.test' (first defined at line 3)");
    EXPECT_EQ(error_of(doc("[[domain]]\nname = \"\u2603.test\"\nmaildir = \"m\"")),
              "p.toml:3: domain.name: '\u2603.test' is not a valid internationalized domain name (string "
              "contains a disallowed character)");
    EXPECT_EQ(error_of(doc("[[route]]\ndomain = \"\u2603.test\"\nhosts = [\"10.0.0.1\"]")),
              "p.toml:3: route.domain: '\u2603.test' is not a valid internationalized domain name (string "
              "contains a disallowed character)");
}

TEST(ConfigErrors, Routes) {
    EXPECT_EQ(error_of(doc("[[route]]\ndomain = \"p.test\"\nhosts = [\"10.0.0.1\"]\n[[route]]\ndomain = \"P.test\"\n"
                           "hosts = [\"10.0.0.2\"]")),
              "p.toml:6: duplicate route for 'p.test' (first defined at line 3)");
    EXPECT_EQ(error_of(doc("[[domain]]\nname = \"a.test\"\nmaildir = \"m\"\n[[route]]\ndomain = \"a.test\"\n"
                           "hosts = [\"10.0.0.2\"]")),
              "p.toml:6: route for 'a.test' contradicts the hosted domain defined at line 3");
    EXPECT_EQ(error_of(doc("[[route]]\ndomain = \"p.test\"\nhosts = []")), "p.toml:4: route.hosts: must not be empty");
    EXPECT_EQ(error_of(doc("[[route]]\nhosts = [\"10.0.0.1\"]")), "p.toml:2: route: missing required key 'domain'");
    EXPECT_EQ(error_of(doc("[[route]]\ndomain = \"p.test\"")), "p.toml:2: route: missing required key 'hosts'");
    EXPECT_EQ(error_of(doc("[[route]]\ndomain = \"*.p.test\"\nhosts = [\"10.0.0.1\"]")),
              "p.toml:3: route.domain: '*.p.test' is not a valid domain name (or \"*\" for every domain not hosted)");
}

// [[profile]] is parsed; its errors are in profile_load_test.cpp.
TEST(ConfigErrors, ProfileIsAccepted) {
    EXPECT_EQ(error_of(doc("\n[[profile]]\nname = \"partner\"\nhosts = [\"*\"]\n[profile.outbound]\ntls = \"mandatory\"")),
              "<no error>");
    EXPECT_EQ(error_of(doc("\n[[profile]]\nname = \"partner\"\nhost = [\"*\"]")),
              "p.toml:3: profile 'partner' matches nothing: give hosts, sender_domains or recipient_domains\n"
              "p.toml:5: unknown key 'profile.host'");
}

TEST(ConfigErrors, SpoolDirRequired) {
    EXPECT_EQ(error_of("hostname = \"mx.test\"\n"), "p.toml:1: missing required key 'spool.dir'");
    EXPECT_EQ(error_of("hostname = \"mx.test\"\n\n[spool]\n"), "p.toml:3: missing required key 'spool.dir'");
    EXPECT_EQ(error_of("hostname = \"mx.test\"\n[spool]\ndir = \"\"\n"), "p.toml:3: spool.dir: must not be empty");
    EXPECT_EQ(error_of("hostname = \"mx.test\"\n[spool]\ndir = \"s\"\nsync = \"never\"\n"),
              "p.toml:4: spool.sync: must be \"filesystem\" or \"file\" (got 'never')");
    EXPECT_EQ(error_of("hostname = \"mx.test\"\n[spool]\ndir = \"s\"\nsync = true\n"),
              "p.toml:4: spool.sync: expected a string");
}

TEST(ConfigErrors, SpoolDirTooLongForTheControlSocket) {
    // `<spool.dir>/control.sock` must fit in sockaddr_un.sun_path (107 bytes and the NUL): a
    // longer one passed check-config, then `serve` could not bind its control socket.
    const std::string fits = "/" + std::string(93, 'd');  // 94 bytes, + "/control.sock" = 107
    auto cfg = parse_ok("[spool]\ndir = \"" + fits + "\"\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->spool.dir, fits);
    const std::string longer = fits + "d";
    EXPECT_EQ(error_of("hostname = \"mx.test\"\n[spool]\nsync = \"file\"\ndir = \"" + longer + "\"\n"),
              "p.toml:4: spool.dir: the control socket " + longer + "/control.sock would be 108 bytes long, over "
              "the 107 a UNIX socket's path can have: choose a shorter spool directory");
    // A relative spool.dir counts as resolved against the config file's directory.
    const std::string base = "/" + std::string(80, 'b'), rel = std::string(20, 's');
    EXPECT_EQ(error_of("hostname = \"mx.test\"\n[spool]\ndir = \"" + rel + "\"\n", base + "/p.toml")
                  .find(base + "/p.toml:3: spool.dir: the control socket " + base + "/" + rel + "/control.sock would be"),
              0u);
}

TEST(ConfigErrors, CertAndKeyBothOrNeither) {
    EXPECT_EQ(error_of(doc("[tls]\ncert_file = \"c.pem\"")),
              "p.toml:3: tls.cert_file is set but tls.key_file is not (set both or neither)");
    EXPECT_EQ(error_of(doc("[tls]\nkey_file = \"k.pem\"")),
              "p.toml:3: tls.key_file is set but tls.cert_file is not (set both or neither)");
    EXPECT_EQ(error_of(doc("[tls]\ncert_file = \"c.pem\"\nkey_file = \"\"")),
              "p.toml:4: tls.key_file is empty but tls.cert_file is set (set both or neither)");
    auto cfg = parse_ok(doc("[tls]\ncert_file = \"\"\nkey_file = \"\""));
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->tls.cert_file, "");
    EXPECT_EQ(cfg->tls.key_file, "");
}

TEST(ConfigErrors, HostnameMustBeADomainName) {
    EXPECT_EQ(error_of("hostname = \"mx_1.test\"\n[spool]\ndir = \"s\"\n"),
              "p.toml:1: hostname: 'mx_1.test' is not a valid domain name");
}

TEST(ConfigErrors, ControlCharactersAreEscaped) {
    EXPECT_EQ(error_of("hostname = \"a\\nb\"\n[spool]\ndir = \"s\"\n"),
              "p.toml:1: hostname: 'a\\x0ab' is not a valid domain name");
}

TEST(ConfigErrors, AllReportedInLineOrder) {
    const std::string text = doc("[server]\nmax_recipients = 0\nfoo = 1\n[log]\nformat = \"xml\"");
    EXPECT_EQ(error_of(text),
              "p.toml:3: server.max_recipients: must be between 1 and 100000 (got 0)\n"
              "p.toml:4: unknown key 'server.foo'\n"
              "p.toml:6: log.format: must be \"text\" or \"json\" (got 'xml')");
}

// ---- values, defaults, paths -------------------------------------------------------------

TEST(ConfigLoad, DefaultsWhenKeysAbsent) {
    auto cfg = parse_ok("[spool]\ndir = \"s\"\n");
    ASSERT_TRUE(cfg);
    char buf[HOST_NAME_MAX + 1] = {};
    ASSERT_EQ(gethostname(buf, sizeof buf - 1), 0);
    EXPECT_EQ(cfg->hostname, buf);
    const config def;  // the documented defaults in config.hpp
    ASSERT_EQ(cfg->server.listen.size(), 1u);
    EXPECT_EQ(cfg->server.listen[0].to_string(), "127.0.0.1:2525");
    EXPECT_EQ(cfg->spool.sync, spool_sync::filesystem);
    EXPECT_EQ(cfg->server.max_message_size, 52428800u);
    EXPECT_EQ(cfg->server.max_buffered_size, 512u << 20);
    EXPECT_EQ(cfg->server.max_recipients, 1000u);
    EXPECT_EQ(cfg->server.max_connections, 1000u);
    EXPECT_EQ(cfg->server.max_connections_per_ip, 50u);
    EXPECT_EQ(cfg->server.command_timeout, 300s);
    EXPECT_EQ(cfg->server.data_timeout, 300s);
    EXPECT_EQ(cfg->server.max_errors, 10u);
    EXPECT_EQ(cfg->server.max_line_length, 2048u);
    EXPECT_EQ(cfg->server.threads, 0u);
    EXPECT_TRUE(cfg->tls.opportunistic);
    EXPECT_EQ(cfg->tls.cert_file, "");
    EXPECT_EQ(cfg->tls.key_file, "");
    EXPECT_EQ(cfg->tls.ca_file, "");
    EXPECT_EQ(cfg->tls.handshake_retry_delay, 300s);
    EXPECT_EQ(cfg->queue.retry_schedule, def.queue.retry_schedule);
    // SPEC's default, spelled out: 1m, 5m, 15m, 30m, 1h, 2h, 4h (the compiled-in value above
    // could change along with the loaded one and still pass the comparison)
    EXPECT_EQ(cfg->queue.retry_schedule,
              (std::vector<seconds>{1min, 5min, 15min, 30min, 1h, 2h, 4h}));
    EXPECT_EQ(cfg->queue.max_age, 5 * 86400s);
    EXPECT_FALSE(cfg->queue.hold);
    EXPECT_EQ(cfg->delivery.port, 25);
    EXPECT_EQ(cfg->delivery.command_timeout, 300s);  // RFC 5321 4.5.3.2
    EXPECT_EQ(cfg->delivery.final_timeout, 600s);
    EXPECT_TRUE(cfg->dns.servers.empty());
    EXPECT_EQ(cfg->log.format, log_format::text);
    EXPECT_TRUE(cfg->domains.empty());
    EXPECT_TRUE(cfg->routes.empty());
    EXPECT_EQ(cfg->source_path, "/srv/postern/postern.toml");
}

TEST(ConfigLoad, BufferedSizeAtLeastMaxMessageSize) {
    // The default follows a larger max_message_size (one message must always fit) ...
    EXPECT_EQ(parse_ok(doc("[server]\nmax_message_size = \"1G\""))->server.max_buffered_size, 1u << 30);
    EXPECT_EQ(parse_ok(doc("[server]\nmax_message_size = \"1M\""))->server.max_buffered_size, 512u << 20);
    EXPECT_EQ(parse_ok(doc("[server]\nmax_message_size = \"2M\"\nmax_buffered_size = \"2M\""))
                  ->server.max_buffered_size,
              2u << 20);
    // ... and a smaller value written in the file is an error.
    EXPECT_EQ(error_of(doc("[server]\nmax_message_size = \"10M\"\nmax_buffered_size = \"5M\"")),
              "p.toml:4: server.max_buffered_size: must be at least server.max_message_size (10MiB) (got 5MiB)");
    EXPECT_EQ(error_of(doc("[server]\nmax_buffered_size = \"512K\"")),
              "p.toml:3: server.max_buffered_size: must be between 1MiB and 64GiB (got 512KiB)");
    EXPECT_EQ(error_of(doc("[server]\nmax_buffered_size = true")),
              "p.toml:3: server.max_buffered_size: expected a size (an integer number of bytes or a string like \"50M\")");
}

// README gives server.user the default "": writing the default is the same as leaving the key
// out (no user), not "'' is not a valid user name". Other keys of [server] are still read.
TEST(ConfigLoad, EmptyServerUserIsTheDefault) {
    auto cfg = parse_ok(doc("[server]\nuser = \"\"\nallow_root = true\nthreads = 3"));
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->server.user, "");
    EXPECT_TRUE(cfg->server.allow_root);
    EXPECT_EQ(cfg->server.threads, 3u);
    EXPECT_EQ(error_of(doc("[server]\nuser = \" \"")), "p.toml:3: server.user: ' ' is not a valid user name");
}

// A user that does not exist is found at its line (check-config passed it, and serve as root
// then refused with no line); one that does (every system has "nobody") is taken.
// (Checked with the files, check_files = true: the queue commands need no user. As root an
// error, where serve would switch to the user; otherwise a warning.)
TEST(ConfigLoad, ServerUserMustExist) {
    const std::string said = "p.toml:3: server.user: no such user 'nosuchuser-postern' (create it, e.g. useradd "
                             "--system --no-create-home --shell /usr/sbin/nologin nosuchuser-postern)";
    auto r = parse(doc("[server]\nuser = \"nosuchuser-postern\""), "p.toml", true);
    if (::geteuid() == 0) {
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error_message(), said);
    } else {
        ASSERT_TRUE(r) << r.error_message();
        const auto w = warnings(**r);  // also: no tls.cert_file, STARTTLS not offered (line 1)
        const std::string want = "p.toml:3: warning: " + said.substr(std::string("p.toml:3: ").size()) +
                                 "; serve started as root refuses this configuration";
        EXPECT_EQ(std::count(w.begin(), w.end(), want), 1) << ::testing::PrintToString(w);
    }
    EXPECT_TRUE(parse(doc("[server]\nuser = \"nosuchuser-postern\""), "p.toml", false));
    EXPECT_TRUE(parse(doc("[server]\nuser = \"nosuchuser-postern\""), "p.toml", true, /*check_user=*/false));
    auto ok = parse(doc("[server]\nuser = \"nobody\""), "p.toml", true);
    ASSERT_TRUE(ok) << ok.error_message();
    EXPECT_EQ((*ok)->server.user, "nobody");
}

TEST(ConfigLoad, PerIpDefaultFollowsSmallerMaxConnections) {
    auto cfg = parse_ok(doc("[server]\nmax_connections = 10"));
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->server.max_connections_per_ip, 10u);
}

TEST(ConfigLoad, EveryKeyIsRead) {
    const std::string text = R"(hostname = "MX.Example.test"
[server]
listen = ["0.0.0.0:25", "[::]:587"]
max_message_size = "10M"
max_buffered_size = "1G"
max_recipients = 50
max_connections = 200
max_connections_per_ip = 5
command_timeout = "2m"
data_timeout = 600
max_errors = 3
max_line_length = 1000
[spool]
dir = "/var/spool/postern"
sync = "file"
[tls]
opportunistic = false
cert_file = "/etc/ssl/c.pem"
key_file = "k.pem"
ca_file = "ca.pem"
handshake_retry_delay = "10m"
[queue]
retry_schedule = ["30s", "2m"]
max_age = "1w"
hold = true
[delivery]
port = 2526
command_timeout = "90s"
final_timeout = "15m"
[dns]
servers = ["127.0.0.1:5353", "::1", "[2001:db8::53]", "10.0.0.53"]
[log]
format = "json"
[[domain]]
name = "Example.TEST"
relay_to = ["10.0.0.5", "internal.example.test:2525"]
[[domain]]
name = "local.test"
maildir = "mail/local.test"
[[route]]
domain = "partner.test"
hosts = ["127.0.0.2:2526"]
[[route]]
domain = "*"
hosts = ["smarthost.test"]
)";
    auto cfg = parse_ok(text, "/etc/postern/postern.toml");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->hostname, "MX.Example.test");
    ASSERT_EQ(cfg->server.listen.size(), 2u);
    EXPECT_EQ(cfg->server.listen[0].to_string(), "0.0.0.0:25");
    EXPECT_EQ(cfg->server.listen[1].host, "::");
    EXPECT_EQ(cfg->server.listen[1].port, 587);
    EXPECT_EQ(cfg->server.max_message_size, 10485760u);
    EXPECT_EQ(cfg->server.max_buffered_size, 1073741824u);
    EXPECT_EQ(cfg->server.max_recipients, 50u);
    EXPECT_EQ(cfg->server.max_connections, 200u);
    EXPECT_EQ(cfg->server.max_connections_per_ip, 5u);
    EXPECT_EQ(cfg->server.command_timeout, 120s);
    EXPECT_EQ(cfg->server.data_timeout, 600s);
    EXPECT_EQ(cfg->server.max_errors, 3u);
    EXPECT_EQ(cfg->server.max_line_length, 1000u);
    EXPECT_EQ(cfg->spool.dir, "/var/spool/postern");
    EXPECT_EQ(cfg->spool.sync, spool_sync::file);
    EXPECT_FALSE(cfg->tls.opportunistic);
    EXPECT_EQ(cfg->tls.cert_file, "/etc/ssl/c.pem");
    EXPECT_EQ(cfg->tls.key_file, "/etc/postern/k.pem");
    EXPECT_EQ(cfg->tls.ca_file, "/etc/postern/ca.pem");
    EXPECT_EQ(cfg->tls.handshake_retry_delay, 600s);
    EXPECT_EQ(cfg->queue.retry_schedule, (std::vector<seconds>{30s, 120s}));
    EXPECT_EQ(cfg->queue.max_age, 7 * 86400s);
    EXPECT_TRUE(cfg->queue.hold);
    EXPECT_EQ(cfg->delivery.port, 2526);
    EXPECT_EQ(cfg->delivery.command_timeout, 90s);
    EXPECT_EQ(cfg->delivery.final_timeout, 900s);
    ASSERT_EQ(cfg->dns.servers.size(), 4u);
    EXPECT_EQ(cfg->dns.servers[0].to_string(), "127.0.0.1:5353");
    EXPECT_EQ(cfg->dns.servers[1].to_string(), "[::1]:53");
    EXPECT_EQ(cfg->dns.servers[2].to_string(), "[2001:db8::53]:53");
    EXPECT_EQ(cfg->dns.servers[3].to_string(), "10.0.0.53:53");
    EXPECT_EQ(cfg->log.format, log_format::json);
    ASSERT_EQ(cfg->domains.size(), 2u);
    EXPECT_EQ(cfg->domains[0].name, "example.test");
    EXPECT_EQ(cfg->domains[0].line, 34);
    ASSERT_EQ(cfg->domains[0].relay_to.size(), 2u);
    EXPECT_EQ(cfg->domains[0].relay_to[0].to_string(), "10.0.0.5:25");
    EXPECT_EQ(cfg->domains[0].relay_to[1].to_string(), "internal.example.test:2525");
    EXPECT_EQ(cfg->domains[0].maildir, "");
    EXPECT_EQ(cfg->domains[1].name, "local.test");
    EXPECT_TRUE(cfg->domains[1].relay_to.empty());
    EXPECT_EQ(cfg->domains[1].maildir, "/etc/postern/mail/local.test");
    ASSERT_EQ(cfg->routes.size(), 2u);
    EXPECT_EQ(cfg->routes[0].domain, "partner.test");
    EXPECT_EQ(cfg->routes[0].line, 40);
    EXPECT_EQ(cfg->routes[0].hosts.at(0).to_string(), "127.0.0.2:2526");
    EXPECT_EQ(cfg->routes[1].domain, "*");
    EXPECT_EQ(cfg->routes[1].hosts.at(0).to_string(), "smarthost.test:25");
    EXPECT_EQ(cfg->find_domain("EXAMPLE.test"), &cfg->domains[0]);
    EXPECT_EQ(cfg->find_domain("partner.test"), nullptr);
}

TEST(ConfigLoad, RelativePathsResolveAgainstTheConfigDirectory) {
    auto cfg = parse_ok(doc("[tls]\ncert_file = \"var/tls/./cert.pem\"\nkey_file = \"../keys/key.pem\"\n"
                            "[[domain]]\nname = \"a.test\"\nmaildir = \"var/mail/a.test/\""),
                        "/srv/postern/conf/postern.toml");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->spool.dir, "/srv/postern/conf/s");
    EXPECT_EQ(cfg->tls.cert_file, "/srv/postern/conf/var/tls/cert.pem");
    EXPECT_EQ(cfg->tls.key_file, "/srv/postern/keys/key.pem");
    EXPECT_EQ(cfg->domains.at(0).maildir, "/srv/postern/conf/var/mail/a.test");
    EXPECT_EQ(cfg->tls.ca_file, "");  // "" keeps meaning the system store

    // A relative config path is taken from the current directory.
    auto rel = parse_ok("[spool]\ndir = \"../spool//x/\"\n", "conf/postern.toml");
    ASSERT_TRUE(rel);
    const fs::path cwd = fs::current_path();
    EXPECT_EQ(rel->spool.dir, (cwd / "spool/x").lexically_normal().string());
    EXPECT_EQ(rel->source_path, (cwd / "conf/postern.toml").lexically_normal().string());
    EXPECT_TRUE(fs::path(rel->spool.dir).is_absolute());

    // Text not from a file: relative to the current directory, no source path.
    auto mem = parse_ok("[spool]\ndir = \"s\"\n", "");
    ASSERT_TRUE(mem);
    EXPECT_EQ(mem->spool.dir, (cwd / "s").string());
    EXPECT_EQ(mem->source_path, "");
}

// ---- files ------------------------------------------------------------------------------

class ConfigFile : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/postern-config-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string write(const std::string& name, const std::string& text) {
        const fs::path p = dir_ / name;
        std::ofstream(p) << text;
        return p.string();
    }
    fs::path dir_;
};

TEST_F(ConfigFile, LoadsAFile) {
    const std::string path = write("postern.toml", "hostname = \"mx.test\"\n[spool]\ndir = \"spool\"\n");
    auto r = load(path);
    ASSERT_TRUE(r) << r.error_message();
    EXPECT_EQ((*r)->spool.dir, (dir_ / "spool").string());
    EXPECT_EQ((*r)->source_path, path);
}

TEST_F(ConfigFile, ErrorsNameTheFileAsGiven) {
    const std::string path = write("bad.toml", "hostname = \"mx.test\"\n[spool]\ndir = \"s\"\nfoo = 1\n");
    auto r = load(path);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error_message(), path + ":4: unknown key 'spool.foo'");
}

TEST_F(ConfigFile, UnreadableFile) {
    const std::string missing = (dir_ / "missing.toml").string();
    auto r = load(missing);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error_message(), missing + ": cannot open: No such file or directory");
    auto d = load(dir_.string());
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error_message(), dir_.string() + ": cannot read: is a directory");
}

// Loaded from a file (check-config, serve, reload), the files the server reads must be there:
// a typo in a profile's ca_file is an error at its line, not a 4.7.5 at every delivery.
TEST(ConfigLoad, FilesTheServerReadsMustExistWhenLoadedFromAFile) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("postern-files-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    { std::ofstream(dir / "cert.pem") << "x"; }
    { std::ofstream(dir / "key.pem") << "x"; }
    fs::create_directories(dir / "ca-dir");
    const std::string good = "[tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n";
    const std::string conf = (dir / "p.toml").string();
    auto write_and_load = [&](const std::string& text) {
        std::ofstream(conf, std::ios::trunc) << text;
        auto r = load(conf);
        return r ? std::string("<no error>") : r.error_message();
    };
    EXPECT_EQ(write_and_load(doc(good)), "<no error>");
    EXPECT_EQ(write_and_load(doc("[tls]\ncert_file = \"cert.pem\"\nkey_file = \"kye.pem\"\n")),
              conf + ":4: tls.key_file: " + (dir / "kye.pem").string() + ": No such file or directory");
    EXPECT_EQ(write_and_load(doc(good + "ca_file = \"ca-dir\"\n")),
              conf + ":5: tls.ca_file: " + (dir / "ca-dir").string() + ": not a regular file");
    EXPECT_EQ(write_and_load(doc("[[profile]]\nname = \"partner\"\nrecipient_domains = [\"p.test\"]\n"
                                 "[profile.outbound]\ntls = \"mandatory\"\nverify = \"ca\"\nca_file = \"partner-ca.pm\"\n")),
              conf + ":8: profile.outbound.ca_file: " + (dir / "partner-ca.pm").string() +
                  ": No such file or directory");
    // the same text parsed from memory (unit tests, tools) does not look at the disk
    EXPECT_TRUE(parse(doc("[tls]\ncert_file = \"nope.pem\"\nkey_file = \"nope.key\"\n"), conf));
    fs::remove_all(dir);
}

}  // namespace
}  // namespace postern::config
