// config/config.hpp - the immutable, typed configuration (SPEC §5).
// config::load() turns a TOML file into this; no toml++ type escapes src/config/.
// Relative paths in the file are resolved against the config file's directory, so
// every path here is absolute. Defaults below are the documented defaults.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace postern::config {

using seconds = std::chrono::seconds;

// "127.0.0.1:2525", "[::1]:2525", "mx.example.test:25"
struct host_port {
    std::string host;  // IP literal (no brackets) or host name
    std::uint16_t port = 0;
    std::string to_string() const;  // brackets around IPv6
};

struct server_config {
    std::vector<host_port> listen{{"127.0.0.1", 2525}};
    std::uint64_t max_message_size = 52428800;  // bytes; SIZE and DATA limit (552 5.3.4)
    std::uint32_t max_recipients = 1000;        // per transaction (452 4.5.3)
    std::uint32_t max_connections = 1000;       // total concurrent inbound sessions
    std::uint32_t max_connections_per_ip = 50;  // concurrent sessions per client IP
    seconds command_timeout{300};               // RFC 5321 4.5.3.2.7: 5 minutes
    seconds data_timeout{300};                  // idle time allowed while receiving DATA/BDAT
    std::uint32_t max_errors = 10;              // bad commands before 421 and close
    std::uint32_t max_line_length = 2048;       // command line, including CRLF (RFC 5321 4.5.3.1.4 says 512; extensions need more)
};

struct spool_config {
    std::string dir;  // absolute
};

struct tls_config {
    bool opportunistic = true;
    std::string cert_file;  // absolute, or empty = no certificate (STARTTLS not offered)
    std::string key_file;
    std::string ca_file;  // empty = system trust store
    seconds handshake_retry_delay{300};
};

struct queue_config {
    std::vector<seconds> retry_schedule{seconds{60},   seconds{300},  seconds{900}, seconds{1800},
                                        seconds{3600}, seconds{7200}, seconds{14400}};
    seconds max_age{5 * 86400};
    bool hold = false;  // put every accepted message on hold (like Postfix's HOLD action)
};

struct delivery_config {
    std::uint16_t port = 25;
};

struct dns_config {
    std::vector<host_port> servers;  // empty = system resolver; port defaults to 53
};

enum class log_format { text, json };

struct log_config {
    log_format format = log_format::text;
};

struct domain_config {
    std::string name;                   // lower-case ASCII (A-labels)
    std::vector<host_port> relay_to;    // exactly one of relay_to / maildir is set
    std::string maildir;                // absolute, or empty
    int line = 0;                       // line of the [[domain]] table, for messages
};

struct route_config {
    std::string domain;  // lower-case, or "*" = smarthost
    std::vector<host_port> hosts;
    int line = 0;
};

struct config {
    std::string source_path;  // the file this came from (absolute)
    std::string hostname;     // as written (a valid domain name); default: gethostname()
    server_config server;
    spool_config spool;
    tls_config tls;
    queue_config queue;
    delivery_config delivery;
    dns_config dns;
    log_config log;
    std::vector<domain_config> domains;
    std::vector<route_config> routes;

    // The hosted domain for `domain` (case-insensitive), or nullptr.
    const domain_config* find_domain(std::string_view domain) const;
};

// Parse and validate `path`. On failure the error message is "FILE:LINE: message", FILE as
// given and LINE that of the offending key or value (LINE omitted only when the file cannot be
// read at all). Every problem found is reported, one per line, sorted by line, so the first
// line is the first problem in the file. A TOML syntax error stops parsing: one line.
// A missing [spool] table, or an invalid machine host name when `hostname` is absent, is
// reported at line 1.
result<std::shared_ptr<const config>> load(const std::string& path);
// Same, from text already in memory; `path` is used for messages and to resolve relative paths
// (an empty `path`: relative to the current directory, source_path left empty).
result<std::shared_ptr<const config>> parse(std::string_view text, const std::string& path);

// "5m" -> 300 s. Units: s, m, h, d, w; a bare integer is seconds. Errors: empty, bad unit, overflow.
result<seconds> parse_duration(std::string_view text);
// "127.0.0.1:2525", "[::1]:25", "host:25"; default_port used when no ":port" is present (0 = required).
// Host names are checked (LDH) and lower-cased; IPv6 needs brackets, except that a bare IPv6
// address ("::1") is accepted when a default port applies.
result<host_port> parse_host_port(std::string_view text, std::uint16_t default_port = 0);

// The embedded default configuration written by `postern init` (SPEC §4).
std::string default_config_text();

}  // namespace postern::config
