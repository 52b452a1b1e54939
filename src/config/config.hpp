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
    // Message content held in memory while being received, all sessions together: past
    // 1 MiB a message needs room here, else 452 4.3.1 (smtp::content_budget). Never less
    // than max_message_size (the default follows a larger max_message_size).
    std::uint64_t max_buffered_size = std::uint64_t{512} << 20;
    std::uint32_t max_recipients = 1000;        // per transaction (452 4.5.3)
    std::uint32_t max_connections = 1000;       // total concurrent inbound sessions
    std::uint32_t max_connections_per_ip = 50;  // concurrent sessions per client IP
    seconds command_timeout{300};               // RFC 5321 4.5.3.2.7: 5 minutes
    seconds data_timeout{300};                  // idle time allowed while receiving DATA/BDAT
    std::uint32_t max_errors = 10;              // bad commands before 421 and close
    std::uint32_t max_line_length = 2048;       // command line, including CRLF (RFC 5321 4.5.3.1.4 says 512; extensions need more)
    // Started as root, Postern binds its listeners and reads its keys, then runs as this user
    // (runtime/privileges.hpp). "" = none: starting as root is refused unless allow_root.
    std::string user;
    int user_line = 0;  // of server.user in the file (0 = not written), for messages
    bool allow_root = false;
    // Threads that run inbound sessions (each its own event loop; policy/loop_choice.hpp picks
    // the thread for each connection). 0 = one per CPU. Deliveries, the queue and DNS stay on the main thread.
    std::uint32_t threads = 0;
};

// How a commit is made durable (queue/spool.hpp). Both fsync before the 250; they differ in
// how many messages one flush covers.
enum class spool_sync {
    filesystem,  // syncfs(2) of the spool's file system, shared by every commit in flight
    file,        // fsync(2) of each queue file (the directory fsync is shared either way)
};

struct spool_config {
    std::string dir;  // absolute
    spool_sync sync = spool_sync::filesystem;
};

struct tls_config {
    bool opportunistic = true;
    std::string cert_file;  // absolute, or empty = no certificate (STARTTLS not offered)
    std::string key_file;
    std::string ca_file;  // empty = system trust store
    seconds handshake_retry_delay{300};
    // Where the file says so (toml++ source lines; 0 = not written), for the messages about
    // the files these keys name (runtime/tls_setup.hpp) and the warnings below.
    int line = 0;  // the [tls] table (or inline table)
    int opportunistic_line = 0, cert_file_line = 0, key_file_line = 0, ca_file_line = 0;
};

struct queue_config {
    std::vector<seconds> retry_schedule{seconds{60},   seconds{300},  seconds{900}, seconds{1800},
                                        seconds{3600}, seconds{7200}, seconds{14400}};
    seconds max_age{5 * 86400};
    bool hold = false;  // put every accepted message on hold (like Postfix's HOLD action)
};

struct delivery_config {
    std::uint16_t port = 25;
    // RFC 5321 4.5.3.2: how long the SMTP client waits for one whole reply - the greeting,
    // EHLO, STARTTLS (and its handshake), MAIL, RCPT, DATA, RSET, QUIT: 5 minutes - and for
    // the reply after the end of data: 10 minutes. Each limit runs from the command (or the
    // previous reply) to the reply's last line; a reply trickling in does not restart it.
    seconds command_timeout{300};
    seconds final_timeout{600};
    // RFC 6152 3: 8-bit content for a next hop without 8BITMIME is made 7-bit (true), or, when
    // false, content declared 8-bit bounces 5.6.3 and undeclared 8-bit content goes as it came:
    // for mail whose signatures (DKIM) must reach the next hop intact (Postfix's
    // disable_mime_output_conversion, which sends the 8-bit content instead).
    bool mime_conversion = true;
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

// ---- connection profiles (SPEC §1.2-1.4) ---------------------------------------------------
// A [[profile]] names a set of peers (hosts, sender domains, recipient domains) and the TLS
// requirements for talking to them. Which profile applies to a connection is decided by
// profile::match_inbound / match_outbound (src/profile/match.hpp); the effective TLS policy by
// profile::resolve_inbound / resolve_outbound (src/profile/policy.hpp).

// A direction's `tls` key. `global` = the key is absent: follow tls.opportunistic.
enum class tls_mode { global, opportunistic, mandatory, none };
// `verify`: "none" "ca" "ca+name" "fingerprint" "dane", in that order of strength.
enum class verify_level { none, ca, ca_name, fingerprint, dane };
// `min_tls_version`: "1.0" ... "1.3".
enum class tls_version { v1_0, v1_1, v1_2, v1_3 };

constexpr std::string_view to_string(tls_mode m) {
    switch (m) {
        case tls_mode::global: return "global";
        case tls_mode::opportunistic: return "opportunistic";
        case tls_mode::mandatory: return "mandatory";
        case tls_mode::none: return "none";
    }
    return "?";
}
// The spelling used in the file: "ca+name" for verify_level::ca_name.
constexpr std::string_view to_string(verify_level v) {
    switch (v) {
        case verify_level::none: return "none";
        case verify_level::ca: return "ca";
        case verify_level::ca_name: return "ca+name";
        case verify_level::fingerprint: return "fingerprint";
        case verify_level::dane: return "dane";
    }
    return "?";
}
// "1.2" (OpenSSL and the logs say "TLSv1.2").
constexpr std::string_view to_string(tls_version v) {
    switch (v) {
        case tls_version::v1_0: return "1.0";
        case tls_version::v1_1: return "1.1";
        case tls_version::v1_2: return "1.2";
        case tls_version::v1_3: return "1.3";
    }
    return "?";
}

// [profile.outbound] or [profile.inbound] (SPEC §1.3). Inbound, `verify` and `peer_names` apply
// to the client certificate (verify "none" requests none; anything stronger requires one).
// The loader guarantees: verify other than "none" only with tls = "mandatory"; fingerprints
// non-empty exactly when verify = "fingerprint"; peer_names only with "ca+name" or "dane";
// ca_file only with "ca" or "ca+name"; with tls = "none" nothing but `tls` is set.
struct tls_requirements {
    tls_mode tls = tls_mode::global;
    verify_level verify = verify_level::none;
    std::vector<std::string> peer_names;    // lower-case; "*.partner.test" = leftmost-label wildcard
    std::vector<std::string> fingerprints;  // "sha256:HEX" (certificate) or "spki-sha256:HEX"
                                            // (public key): 64 lower-case hex digits, no colons
    tls_version min_tls_version = tls_version::v1_2;
    int min_cipher_bits = 128;
    std::string ca_file;   // absolute, or "" = tls.ca_file, else the system store
    int ca_file_line = 0;  // line of ca_file in the file (0 = not written)
    bool present = false;  // the table was given
};

// One [[profile]] (SPEC §1.4). Entries are normalised (lower-case names, canonical IP text);
// no host, sender domain or recipient domain appears in two profiles (the loader rejects it).
// `hosts` serve both directions (client IP/name inbound, destination IP/name outbound);
// `sender_domains` select a profile inbound only (at MAIL FROM), `recipient_domains` outbound
// only. src/profile/pattern.hpp parses and matches the entries.
struct profile_config {
    std::string name;                            // unique; letters, digits, '.', '-', '_'
    std::vector<std::string> hosts;              // "192.0.2.1", "2001:db8::/32", "192.0.2.0/24",
                                                 // "10.1.*", "mx.partner.test", "*.partner.test", "*"
    std::vector<std::string> sender_domains;     // "partner.test" or "*.partner.test"
    std::vector<std::string> recipient_domains;  // same forms
    // Relay rights for clients this profile matches by address or name (never by sender
    // domain, which anyone can claim): "hosted" = only hosted domains, "any" = relay.
    enum class relay_mode { hosted, any } relay = relay_mode::hosted;
    tls_requirements outbound, inbound;
    int line = 0;  // line of the [[profile]] table, for messages
};

struct config {
    std::string source_path;  // the file this came from (absolute)
    std::string source_name;  // the same, as given (FILE in "FILE:LINE: ..." messages)
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
    std::vector<profile_config> profiles;  // in file order

    // The hosted domain for `domain` (case-insensitive), or nullptr.
    const domain_config* find_domain(std::string_view domain) const;
};

// Parse and validate `path`. On failure the error message is "FILE:LINE: message", FILE as
// given and LINE that of the offending key or value (LINE omitted only when the file cannot be
// read at all). Every problem found is reported, one per line, sorted by line, so the first
// line is the first problem in the file. A TOML syntax error stops parsing: one line.
// A missing [spool] table, or an invalid machine host name when `hostname` is absent, is
// reported at line 1. load() also checks that the files the server reads (tls.cert_file,
// tls.key_file, tls.ca_file, a profile's ca_file) exist and can be read, and, when run as root
// (where serve switches to it), that server.user exists, at their lines. `check_files` = false
// skips those checks (the queue commands need no key, certificate or user); `check_user` = false
// skips only the user's (`postern init`, which may run before the user is created).
result<std::shared_ptr<const config>> load(const std::string& path, bool check_files = true, bool check_user = true);
// spool.dir alone, checked as load() checks it, whatever the rest of the file holds (the queue
// commands, while the running server keeps the configuration it last loaded); its errors, or
// a TOML syntax error, as load() words them.
result<std::string> spool_dir_of(const std::string& path);
// The whole file, or "PATH: cannot open: REASON" / "PATH: cannot read: REASON" (load's wording).
result<std::string> read_text(const std::string& path);
// Same, from text already in memory; `path` is used for messages and to resolve relative paths
// (an empty `path`: relative to the current directory, source_path left empty). The files it
// names are only checked with `check_files`.
result<std::shared_ptr<const config>> parse(std::string_view text, const std::string& path, bool check_files = false,
                                            bool check_user = true);

// Valid settings that will not work as written, as "FILE:LINE: warning: ..." lines: a profile
// with verify = "dane" (SPEC §1.3 lists it; DANE is not implemented yet, so every session
// under that profile is refused and no mail flows); tls.opportunistic on without
// tls.cert_file (SPEC §1.1 says EHLO advertises STARTTLS; without a certificate it cannot be
// offered inbound). check-config prints them (exit 0) and serve logs them at start-up and
// reload.
std::vector<std::string> warnings(const config& cfg);

// "5m" -> 300 s. Units: s, m, h, d, w; a bare integer is seconds. Errors: empty, bad unit, overflow.
result<seconds> parse_duration(std::string_view text);
// "127.0.0.1:2525", "[::1]:25", "host:25"; default_port used when no ":port" is present (0 = required).
// Host names are checked (LDH) and lower-cased; IPv6 needs brackets, except that a bare IPv6
// address ("::1") is accepted when a default port applies.
result<host_port> parse_host_port(std::string_view text, std::uint16_t default_port = 0);

// The embedded default configuration written by `postern init` (SPEC §4).
std::string default_config_text();

}  // namespace postern::config
