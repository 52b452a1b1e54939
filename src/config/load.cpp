// config/load.cpp - read postern.toml into the immutable config (SPEC §5)
// The only translation unit that includes toml++. Every problem is reported as
// "FILE:LINE: message" (FILE as given, LINE of the offending key or value); all problems
// found are reported, one per line, in file order. Unknown keys are errors everywhere.
#ifndef TOML_HEADER_ONLY
#define TOML_HEADER_ONLY 0  // link the compiled Debian library (as its pkg-config/CMake files say)
#endif
#ifndef TOML_SHARED_LIB
#define TOML_SHARED_LIB 1
#endif
#include <pwd.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <sstream>
#include <tuple>

#include <fmt/format.h>

#include "config/config.hpp"
#include "config/public_suffix.hpp"
#include "config/values.hpp"
#include "control/control.hpp"  // the control socket's path in the spool
#include "profile/pattern.hpp"  // pure entry parsing, shared with the matcher

namespace postern::config {

namespace {

namespace fs = std::filesystem;

using line_t = std::uint32_t;

line_t line_of(const toml::source_region& r) { return std::max<line_t>(r.begin.line, 1); }
line_t line_of(const toml::node& n) { return line_of(n.source()); }
line_t line_of(const toml::key& k) { return line_of(k.source()); }

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

// Control characters from the file (a "\n" inside a string value, a stray \x01 that toml++
// quotes in its syntax error) are escaped, so each problem stays on one printable line.
std::string escape_controls(std::string_view message) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string clean;
    for (const char c : message) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) clean += std::string("\\x") + hex[u >> 4] + hex[u & 15];
        else clean += c;
    }
    return clean;
}

std::string join(std::string_view prefix, std::string_view key) {
    return prefix.empty() ? std::string(key) : std::string(prefix) + "." + std::string(key);
}

// A string value and where it was.
struct located_string {
    std::string value;
    line_t line = 0;
};

std::string no_such_user(const std::string& u) {
    return "server.user: no such user '" + u + "' (create it, e.g. useradd --system --no-create-home --shell "
           "/usr/sbin/nologin " + u + ")";
}

class loader {
public:
    loader(std::string file, fs::path base_dir, bool check_files, bool check_user)
        : file_(std::move(file)), base_dir_(std::move(base_dir)), check_files_(check_files),
          check_user_(check_files && check_user) {}

    std::shared_ptr<config> build(const toml::table& root);
    // spool.dir alone (spool_dir_of): out.dir, or the errors of that key.
    void load_spool_dir(const toml::table& root, spool_config& out);
    bool failed() const { return !errors_.empty(); }

    std::string message() const {
        auto sorted = errors_;
        std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        std::string out;
        for (const auto& [line, text] : sorted) {
            if (!out.empty()) out += '\n';
            out += file_ + ":" + std::to_string(line) + ": " + text;
        }
        return out;
    }

private:
    // Every problem is one line: see escape_controls().
    void fail(line_t line, const std::string& message) { errors_.emplace_back(line, escape_controls(message)); }

    // Reports every key of `t` not in `allowed` as "unknown key 'prefix.key'".
    void check_keys(const toml::table& t, std::string_view prefix, std::initializer_list<std::string_view> allowed) {
        for (auto&& [k, v] : t) {
            (void)v;
            if (std::find(allowed.begin(), allowed.end(), k.str()) == allowed.end())
                fail(line_of(k), "unknown key " + in_quotes(join(prefix, k.str())));
        }
    }

    // The sub-table `key` of `parent`, or nullptr when absent (or reported as not a table).
    const toml::table* section(const toml::table& parent, std::string_view key) {
        const toml::node* n = parent.get(key);
        if (!n) return nullptr;
        if (!n->is_table()) {
            fail(line_of(*n), std::string(key) + ": expected a table ([" + std::string(key) + "])");
            return nullptr;
        }
        return n->as_table();
    }

    // The array-of-tables `key` of `parent` ([[key]]); empty when absent or mistyped.
    std::vector<const toml::table*> table_array(const toml::table& parent, std::string_view key) {
        std::vector<const toml::table*> out;
        const toml::node* n = parent.get(key);
        if (!n) return out;
        const std::string expected = std::string(key) + ": expected an array of tables ([[" + std::string(key) + "]])";
        const toml::array* a = n->as_array();
        if (!a) {
            fail(line_of(*n), expected);
            return out;
        }
        for (const toml::node& e : *a) {
            if (const toml::table* t = e.as_table()) out.push_back(t);
            else fail(line_of(e), expected);
        }
        return out;
    }

    std::optional<located_string> read_string(const toml::node& n, const std::string& name) {
        if (const auto* s = n.as_string()) return located_string{s->get(), line_of(n)};
        fail(line_of(n), name + ": expected a string");
        return std::nullopt;
    }

    std::optional<bool> read_bool(const toml::node& n, const std::string& name) {
        if (const auto* b = n.as_boolean()) return b->get();
        fail(line_of(n), name + ": expected a boolean (true or false)");
        return std::nullopt;
    }

    std::optional<std::int64_t> read_int(const toml::node& n, const std::string& name, std::int64_t lo, std::int64_t hi) {
        const auto* i = n.as_integer();
        if (!i) {
            fail(line_of(n), name + ": expected an integer");
            return std::nullopt;
        }
        const std::int64_t v = i->get();
        if (v < lo || v > hi) {
            fail(line_of(n), name + ": must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                                 " (got " + std::to_string(v) + ")");
            return std::nullopt;
        }
        return v;
    }

    std::optional<std::uint16_t> read_port(const toml::node& n, const std::string& name) {
        const auto v = read_int(n, name, 1, 65535);
        if (!v) return std::nullopt;
        return static_cast<std::uint16_t>(*v);
    }

    // A duration: a TOML integer (seconds) or a string such as "5m".
    std::optional<seconds> read_duration(const toml::node& n, const std::string& name, seconds lo, seconds hi) {
        seconds v{};
        if (const auto* i = n.as_integer()) {
            v = seconds{i->get()};
        } else if (const auto* s = n.as_string()) {
            auto r = parse_duration(s->get());
            if (!r) {
                fail(line_of(n), name + ": " + r.error_message());
                return std::nullopt;
            }
            v = *r;
        } else {
            fail(line_of(n), name + ": expected a duration (a string like \"5m\" or an integer number of seconds)");
            return std::nullopt;
        }
        if (v < lo || v > hi) {
            fail(line_of(n), name + ": must be between " + detail::format_duration(lo) + " and " +
                                 detail::format_duration(hi) + " (got " + detail::format_duration(v) + ")");
            return std::nullopt;
        }
        return v;
    }

    // A size in bytes: a TOML integer or a string such as "50M".
    std::optional<std::uint64_t> read_size(const toml::node& n, const std::string& name, std::uint64_t lo,
                                           std::uint64_t hi) {
        std::uint64_t v = 0;
        if (const auto* i = n.as_integer()) {
            if (i->get() < 0) {
                fail(line_of(n), name + ": must be between " + detail::format_size(lo) + " and " +
                                     detail::format_size(hi) + " (got " + std::to_string(i->get()) + ")");
                return std::nullopt;
            }
            v = static_cast<std::uint64_t>(i->get());
        } else if (const auto* s = n.as_string()) {
            auto r = detail::parse_size(s->get());
            if (!r) {
                fail(line_of(n), name + ": " + r.error_message());
                return std::nullopt;
            }
            v = *r;
        } else {
            fail(line_of(n), name + ": expected a size (an integer number of bytes or a string like \"50M\")");
            return std::nullopt;
        }
        if (v < lo || v > hi) {
            fail(line_of(n), name + ": must be between " + detail::format_size(lo) + " and " + detail::format_size(hi) +
                                 " (got " + detail::format_size(v) + ")");
            return std::nullopt;
        }
        return v;
    }

    // A path, made absolute against the config file's directory and lexically normalised.
    // Returns "" for an empty string when `allow_empty`.
    std::optional<std::string> read_path(const toml::node& n, const std::string& name, bool allow_empty) {
        auto s = read_string(n, name);
        if (!s) return std::nullopt;
        if (s->value.empty()) {
            if (allow_empty) return std::string();
            fail(s->line, name + ": must not be empty");
            return std::nullopt;
        }
        if (s->value.find('\0') != std::string::npos) {
            fail(s->line, name + ": must not contain a NUL character");
            return std::nullopt;
        }
        return resolve(s->value);
    }

    // A file the server reads (certificate, key, CA bundle): a path as above which, when the
    // configuration comes from a file (check-config, serve, reload), must name a regular file
    // that can be opened now - a typo is reported here with its line, not at the first
    // delivery that needs it.
    std::optional<std::string> read_file_path(const toml::node& n, const std::string& name, bool allow_empty) {
        auto v = read_path(n, name, allow_empty);
        if (!v || v->empty() || !check_files_) return v;
        struct stat st {};
        if (::stat(v->c_str(), &st) != 0) {
            fail(line_of(n), name + ": " + *v + ": " + std::strerror(errno));
            return std::nullopt;
        }
        if (!S_ISREG(st.st_mode)) {
            fail(line_of(n), name + ": " + *v + ": not a regular file");
            return std::nullopt;
        }
        if (::access(v->c_str(), R_OK) != 0) {
            fail(line_of(n), name + ": " + *v + ": cannot read: " + std::strerror(errno));
            return std::nullopt;
        }
        return v;
    }

    std::string resolve(const std::string& text) const {
        fs::path p(text);
        if (p.is_relative()) p = base_dir_ / p;
        p = p.lexically_normal();
        if (!p.has_filename() && p.has_relative_path()) p = p.parent_path();  // "var/spool/" -> "var/spool"
        return p.string();
    }

    // An array of "host:port" strings. `ip_only`: the host must be an IP literal.
    std::optional<std::vector<host_port>> read_host_ports(const toml::node& n, const std::string& name,
                                                          std::uint16_t default_port, bool ip_only, bool allow_empty) {
        const toml::array* a = n.as_array();
        if (!a) {
            fail(line_of(n), name + ": expected an array of strings");
            return std::nullopt;
        }
        if (a->empty() && !allow_empty) {
            fail(line_of(n), name + ": must not be empty");
            return std::nullopt;
        }
        std::vector<host_port> out;
        bool ok = true;
        std::map<std::string, line_t> seen;  // host (canonical IP text or lower-case name) and port
        for (const toml::node& e : *a) {
            const auto* s = e.as_string();
            if (!s) {
                fail(line_of(e), name + ": expected an array of strings");
                ok = false;
                continue;
            }
            auto hp = parse_host_port(s->get(), default_port);
            if (!hp) {
                fail(line_of(e), name + ": " + hp.error_message());
                ok = false;
                continue;
            }
            if (ip_only && !detail::is_ip_literal(hp->host)) {
                fail(line_of(e), name + ": " + in_quotes(s->get()) + " is not numeric: the host must be an IP address");
                ok = false;
                continue;
            }
            // The same address twice: a listener that cannot bind, a next hop tried twice.
            const auto pat = profile::parse_host_pattern(hp->host);
            const std::string key = fmt::format("{}:{}", pat ? pat->key : hp->host, hp->port);
            if (const auto [it, fresh] = seen.emplace(key, line_of(e)); !fresh) {
                fail(line_of(e), fmt::format("{}: {} is the same as an earlier entry (line {})", name,
                                             in_quotes(s->get()), it->second));
                ok = false;
                continue;
            }
            out.push_back(std::move(*hp));
        }
        if (!ok) return std::nullopt;
        return out;
    }

    // U-labels in a name from the file become A-labels (detail::to_a_labels), in place;
    // false, with the error at its line, when a non-ASCII name has no A-label form.
    bool to_a_labels(located_string& s, const std::string& name) {
        auto a = detail::to_a_labels(s.value);
        if (!a) {
            fail(s.line, name + ": " + in_quotes(s.value) + " is not a valid internationalized domain name (" +
                             a.error_message() + ")");
            return false;
        }
        s.value = std::move(*a);
        return true;
    }

    // A domain name, lower-cased, U-labels as A-labels.
    std::optional<located_string> read_domain(const toml::node& n, const std::string& name) {
        auto s = read_string(n, name);
        if (!s || !to_a_labels(*s, name)) return std::nullopt;
        if (!detail::is_valid_domain(s->value)) {
            fail(s->line, name + ": " + in_quotes(s->value) + " is not a valid domain name");
            return std::nullopt;
        }
        s->value = detail::to_lower(s->value);
        return s;
    }

    void load_server(const toml::table& t, server_config& out);
    void load_spool(const toml::table& t, spool_config& out);  // all but spool.dir
    void load_tls(const toml::table& t, tls_config& out);
    void load_queue(const toml::table& t, queue_config& out);
    void load_domains(const toml::table& root, config& out);
    void load_routes(const toml::table& root, config& out);
    void load_profiles(const toml::table& root, config& out);

    // Who already holds an entry of `hosts` / `sender_domains` / `recipient_domains`.
    struct entry_owner {
        std::string profile;  // name, or "" when the profile has no valid name
        line_t profile_line = 0;
        std::string text;  // the entry as normalised
        line_t line = 0;
    };
    using entry_map = std::map<std::string, entry_owner>;  // pattern key -> first holder
    using pattern_parser = result<profile::pattern> (*)(std::string_view);
    std::optional<std::vector<std::string>> read_profile_entries(const toml::node& n, const std::string& name,
                                                                 pattern_parser parse, entry_map& seen,
                                                                 const entry_owner& self, std::string_view what);
    bool read_tls_requirements(const toml::node& n, const std::string& prefix, bool inbound, const config& cfg,
                               tls_requirements& out);

    std::string file_;
    fs::path base_dir_;
    bool check_files_ = false;
    bool check_user_ = false;
    bool cert_file_written_ = false;  // tls.cert_file is a non-empty string (usable or not)
    std::vector<std::pair<line_t, std::string>> errors_;
    std::map<std::string, line_t> domain_lines_;  // hosted domain -> line of its name
};

void loader::load_server(const toml::table& t, server_config& out) {
    check_keys(t, "server",
               {"listen", "max_message_size", "max_buffered_size", "max_recipients", "max_connections",
                "max_connections_per_ip", "command_timeout", "data_timeout", "max_errors", "max_line_length", "user",
                "allow_root", "threads"});
    if (const auto* n = t.get("listen"))
        if (auto v = read_host_ports(*n, "server.listen", 0, true, false)) out.listen = std::move(*v);
    bool max_message_size_ok = true;
    if (const auto* n = t.get("max_message_size")) {
        auto v = read_size(*n, "server.max_message_size", std::uint64_t{1} << 10, std::uint64_t{2} << 30);
        if (v) out.max_message_size = *v;
        max_message_size_ok = v.has_value();
    }
    if (const auto* n = t.get("max_buffered_size")) {
        auto v = read_size(*n, "server.max_buffered_size", std::uint64_t{1} << 20, std::uint64_t{64} << 30);
        if (v && max_message_size_ok && *v < out.max_message_size)
            fail(line_of(*n), "server.max_buffered_size: must be at least server.max_message_size (" +
                                  detail::format_size(out.max_message_size) + ") (got " + detail::format_size(*v) +
                                  ")");
        else if (v)
            out.max_buffered_size = *v;
    } else {
        // The default (512 MiB) follows a larger max_message_size: one message always fits.
        out.max_buffered_size = std::max(out.max_buffered_size, out.max_message_size);
    }
    if (const auto* n = t.get("max_recipients"))
        if (auto v = read_int(*n, "server.max_recipients", 1, 100000)) out.max_recipients = static_cast<std::uint32_t>(*v);
    bool max_connections_ok = true;
    if (const auto* n = t.get("max_connections")) {
        auto v = read_int(*n, "server.max_connections", 1, 100000);
        if (v) out.max_connections = static_cast<std::uint32_t>(*v);
        max_connections_ok = v.has_value();
    }
    if (const auto* n = t.get("max_connections_per_ip")) {
        const auto* i = n->as_integer();
        if (!i) {
            fail(line_of(*n), "server.max_connections_per_ip: expected an integer");
        } else if (!max_connections_ok) {
            // server.max_connections is wrong already; no bound to check against.
        } else if (i->get() < 1 || i->get() > out.max_connections) {
            fail(line_of(*n), "server.max_connections_per_ip: must be between 1 and server.max_connections (" +
                                  std::to_string(out.max_connections) + ") (got " + std::to_string(i->get()) + ")");
        } else {
            out.max_connections_per_ip = static_cast<std::uint32_t>(i->get());
        }
    } else {
        // The default (50) must not exceed a smaller max_connections the user did set.
        out.max_connections_per_ip = std::min(out.max_connections_per_ip, out.max_connections);
    }
    if (const auto* n = t.get("command_timeout"))
        if (auto v = read_duration(*n, "server.command_timeout", seconds{1}, seconds{3600})) out.command_timeout = *v;
    if (const auto* n = t.get("data_timeout"))
        if (auto v = read_duration(*n, "server.data_timeout", seconds{1}, seconds{3600})) out.data_timeout = *v;
    if (const auto* n = t.get("max_errors"))
        if (auto v = read_int(*n, "server.max_errors", 1, 1000)) out.max_errors = static_cast<std::uint32_t>(*v);
    if (const auto* n = t.get("max_line_length"))
        if (auto v = read_int(*n, "server.max_line_length", 512, 65536))
            out.max_line_length = static_cast<std::uint32_t>(*v);
    if (const auto* n = t.get("user"))
        if (auto v = read_string(*n, "server.user")) {
            // POSIX portable user names (and what useradd accepts by default).
            const std::string& u = v->value;
            const bool ok = !u.empty() && u.size() <= 32 && (std::islower(static_cast<unsigned char>(u[0])) || u[0] == '_') &&
                            std::all_of(u.begin(), u.end(), [](char c) {
                                return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
                                       c == '_' || c == '-';
                            });
            // "" is the documented default (README): no user, the same as leaving the key out.
            if (u.empty()) out.user.clear();
            else if (!ok) fail(v->line, "server.user: '" + u + "' is not a valid user name");
            else if (u == "root") fail(v->line, "server.user: must not be root (use server.allow_root = true to run as root)");
            // Like the TLS files, checked where the file names it: `check-config` must not pass
            // a config that `serve` then refuses for want of the user. Only as root, where serve
            // switches to it; otherwise the user is ignored (and warnings() says it is missing).
            else if (check_user_ && ::geteuid() == 0 && ::getpwnam(u.c_str()) == nullptr)
                fail(v->line, no_such_user(u));
            else {
                out.user = u;
                out.user_line = static_cast<int>(v->line);
            }
        }
    if (const auto* n = t.get("allow_root"))
        if (auto v = read_bool(*n, "server.allow_root")) out.allow_root = *v;
    if (const auto* n = t.get("threads"))
        if (auto v = read_int(*n, "server.threads", 0, 256)) out.threads = static_cast<std::uint32_t>(*v);
}

void loader::load_spool_dir(const toml::table& root, spool_config& out) {
    const toml::table* t = nullptr;
    if (root.get("spool") == nullptr || !(t = section(root, "spool"))) {
        if (root.get("spool") == nullptr) fail(1, "missing required key 'spool.dir'");
        return;
    }
    if (const auto* n = t->get("dir")) {
        if (auto v = read_path(*n, "spool.dir", false)) {
            // The control socket lives in the spool (`postern queue`): its whole path must fit in
            // a UNIX socket address, or `serve` could not start with a file that passed here.
            if (auto problem = control::socket_path_problem(*v)) fail(line_of(*n), "spool.dir: " + *problem);
            out.dir = std::move(*v);
        }
    } else {
        fail(line_of(*t), "missing required key 'spool.dir'");
    }
}

void loader::load_spool(const toml::table& t, spool_config& out) {
    check_keys(t, "spool", {"dir", "sync"});
    if (const auto* n = t.get("sync")) {
        if (auto s = read_string(*n, "spool.sync")) {
            if (s->value == "filesystem") out.sync = spool_sync::filesystem;
            else if (s->value == "file") out.sync = spool_sync::file;
            else fail(s->line, "spool.sync: must be \"filesystem\" or \"file\" (got " + in_quotes(s->value) + ")");
        }
    }
}

void loader::load_tls(const toml::table& t, tls_config& out) {
    check_keys(t, "tls", {"opportunistic", "cert_file", "key_file", "ca_file", "handshake_retry_delay"});
    out.line = static_cast<int>(line_of(t));
    if (const auto* n = t.get("opportunistic")) {
        out.opportunistic_line = static_cast<int>(line_of(*n));
        if (auto v = read_bool(*n, "tls.opportunistic")) out.opportunistic = *v;
    }
    const toml::node* cert = t.get("cert_file");
    const toml::node* key = t.get("key_file");
    if (cert) {
        out.cert_file_line = static_cast<int>(line_of(*cert));
        if (auto v = read_file_path(*cert, "tls.cert_file", true)) out.cert_file = std::move(*v);
    }
    if (key) {
        out.key_file_line = static_cast<int>(line_of(*key));
        if (auto v = read_file_path(*key, "tls.key_file", true)) out.key_file = std::move(*v);
    }
    const auto is_set = [](const toml::node* n) {
        return n && n->is_string() && !n->as_string()->get().empty();
    };
    cert_file_written_ = is_set(cert);
    if (is_set(cert) && !key)
        fail(line_of(*cert), "tls.cert_file is set but tls.key_file is not (set both or neither)");
    else if (is_set(cert) && key && key->is_string() && !is_set(key))
        fail(line_of(*key), "tls.key_file is empty but tls.cert_file is set (set both or neither)");
    else if (is_set(key) && !cert)
        fail(line_of(*key), "tls.key_file is set but tls.cert_file is not (set both or neither)");
    else if (is_set(key) && cert && cert->is_string() && !is_set(cert))
        fail(line_of(*cert), "tls.cert_file is empty but tls.key_file is set (set both or neither)");
    if (const auto* n = t.get("ca_file")) {
        out.ca_file_line = static_cast<int>(line_of(*n));
        if (auto v = read_file_path(*n, "tls.ca_file", true)) out.ca_file = std::move(*v);
    }
    if (const auto* n = t.get("handshake_retry_delay"))
        if (auto v = read_duration(*n, "tls.handshake_retry_delay", seconds{0}, seconds{86400}))
            out.handshake_retry_delay = *v;
}

void loader::load_queue(const toml::table& t, queue_config& out) {
    check_keys(t, "queue", {"retry_schedule", "max_age", "hold"});
    if (const auto* n = t.get("retry_schedule")) {
        const toml::array* a = n->as_array();
        if (!a) {
            fail(line_of(*n), "queue.retry_schedule: expected an array of durations");
        } else if (a->empty()) {
            fail(line_of(*n), "queue.retry_schedule: must not be empty");
        } else {
            std::vector<seconds> schedule;
            bool ok = true;
            for (const toml::node& e : *a) {
                auto v = read_duration(e, "queue.retry_schedule", seconds{1}, seconds{7 * 86400});
                if (!v) {
                    ok = false;
                    continue;
                }
                if (!schedule.empty() && *v < schedule.back()) {
                    fail(line_of(e), "queue.retry_schedule: must not decrease (" + detail::format_duration(*v) +
                                         " after " + detail::format_duration(schedule.back()) + ")");
                    ok = false;
                }
                schedule.push_back(*v);
            }
            if (ok) out.retry_schedule = std::move(schedule);
        }
    }
    if (const auto* n = t.get("max_age"))
        if (auto v = read_duration(*n, "queue.max_age", seconds{0}, seconds{60 * 86400})) out.max_age = *v;
    if (const auto* n = t.get("hold"))
        if (auto v = read_bool(*n, "queue.hold")) out.hold = *v;
}

void loader::load_domains(const toml::table& root, config& out) {
    for (const toml::table* t : table_array(root, "domain")) {
        check_keys(*t, "domain", {"name", "relay_to", "maildir"});
        domain_config d;
        d.line = static_cast<int>(line_of(*t));
        const toml::node* name = t->get("name");
        std::optional<located_string> n;
        if (!name) fail(line_of(*t), "domain: missing required key 'name'");
        else n = read_domain(*name, "domain.name");
        const std::string label = n ? "domain " + in_quotes(n->value) : std::string("domain");

        const toml::node* relay = t->get("relay_to");
        const toml::node* maildir = t->get("maildir");
        if (relay && maildir) {
            fail(std::max(line_of(*relay), line_of(*maildir)),
                 label + ": set either relay_to or maildir, not both");
        } else if (!relay && !maildir) {
            fail(line_of(*t), label + ": one of relay_to or maildir is required");
        } else if (relay) {
            if (auto v = read_host_ports(*relay, "domain.relay_to", 25, false, false)) d.relay_to = std::move(*v);
        } else {
            if (auto v = read_path(*maildir, "domain.maildir", false)) d.maildir = std::move(*v);
        }

        if (!n) continue;
        d.name = n->value;
        if (auto [it, inserted] = domain_lines_.emplace(d.name, n->line); !inserted) {
            fail(n->line, "duplicate domain " + in_quotes(d.name) + " (first defined at line " +
                              std::to_string(it->second) + ")");
            continue;
        }
        out.domains.push_back(std::move(d));
    }
}

void loader::load_routes(const toml::table& root, config& out) {
    std::map<std::string, line_t> seen;
    for (const toml::table* t : table_array(root, "route")) {
        check_keys(*t, "route", {"domain", "hosts"});
        route_config r;
        r.line = static_cast<int>(line_of(*t));
        std::optional<located_string> dom;
        if (const toml::node* n = t->get("domain")) {
            if (auto s = read_string(*n, "route.domain"); s && to_a_labels(*s, "route.domain")) {
                if (s->value == "*") {
                    dom = s;
                } else if (detail::is_valid_domain(s->value)) {
                    s->value = detail::to_lower(s->value);
                    dom = s;
                } else {
                    fail(s->line, "route.domain: " + in_quotes(s->value) +
                                      " is not a valid domain name (or \"*\" for every domain not hosted)");
                }
            }
        } else {
            fail(line_of(*t), "route: missing required key 'domain'");
        }
        if (const toml::node* n = t->get("hosts")) {
            if (auto v = read_host_ports(*n, "route.hosts", 25, false, false)) r.hosts = std::move(*v);
        } else {
            fail(line_of(*t), "route: missing required key 'hosts'");
        }

        if (!dom) continue;
        r.domain = dom->value;
        if (auto [it, inserted] = seen.emplace(r.domain, dom->line); !inserted) {
            fail(dom->line, "duplicate route for " + in_quotes(r.domain) + " (first defined at line " +
                                std::to_string(it->second) + ")");
            continue;
        }
        // Mail for a hosted domain is delivered by its [[domain]] entry; a route would contradict it.
        if (auto it = domain_lines_.find(r.domain); it != domain_lines_.end()) {
            fail(dom->line, "route for " + in_quotes(r.domain) + " contradicts the hosted domain defined at line " +
                                std::to_string(it->second));
            continue;
        }
        out.routes.push_back(std::move(r));
    }
}

// ---- [[profile]] (SPEC §1.3, §1.4) ---------------------------------------------------------

namespace {

std::string describe(const std::string& profile, line_t profile_line) {
    return profile.empty() ? "the profile at line " + std::to_string(profile_line) : "profile " + in_quotes(profile);
}

bool is_profile_name(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
               c == '_';
    });
}

// "sha256:AB:CD:..." -> "sha256:abcd..."; nullopt unless 64 hex digits follow a known prefix.
std::optional<std::string> normalise_fingerprint(std::string_view text) {
    const std::string lower = detail::to_lower(text);
    std::string_view rest(lower);
    std::string prefix;
    for (std::string_view p : {"sha256:", "spki-sha256:"})
        if (rest.substr(0, p.size()) == p) {
            prefix = std::string(p);
            rest.remove_prefix(p.size());
        }
    if (prefix.empty()) return std::nullopt;
    std::string hex;
    for (const char c : rest) {
        if (c == ':') continue;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
        hex += c;
    }
    if (hex.size() != 64) return std::nullopt;
    return prefix + hex;
}

}  // namespace

// An array of profile entries, parsed by `parse`, each checked against the entries of this
// and every earlier profile (`seen`, keyed by the pattern's canonical key).
std::optional<std::vector<std::string>> loader::read_profile_entries(const toml::node& n, const std::string& name,
                                                                     pattern_parser parse, entry_map& seen,
                                                                     const entry_owner& self, std::string_view what) {
    const toml::array* a = n.as_array();
    if (!a) {
        fail(line_of(n), name + ": expected an array of strings");
        return std::nullopt;
    }
    if (a->empty()) {
        fail(line_of(n), name + ": must not be empty");
        return std::nullopt;
    }
    std::vector<std::string> out;
    for (const toml::node& e : *a) {
        auto s = read_string(e, name);
        if (!s || !to_a_labels(*s, name)) continue;
        auto pat = parse(s->value);
        if (!pat) {
            fail(s->line, name + ": " + pat.error_message());
            continue;
        }
        entry_owner owner = self;
        owner.text = pat->text;
        owner.line = s->line;
        auto [it, inserted] = seen.emplace(pat->key, owner);
        if (!inserted) {
            const entry_owner& first = it->second;
            const std::string as = first.text == pat->text ? "" : " as " + in_quotes(first.text);
            if (first.profile_line == self.profile_line)
                fail(s->line, name + ": duplicate entry " + in_quotes(pat->text) + " (already at line " +
                                  std::to_string(first.line) + as + ")");
            else
                fail(s->line, name + ": " + in_quotes(pat->text) + " in " + describe(self.profile, self.profile_line) +
                                  " is also in " + describe(first.profile, first.profile_line) + as + " (line " +
                                  std::to_string(first.line) + "): " + std::string(what) +
                                  " can belong to one profile only");
            continue;
        }
        out.push_back(pat->text);
    }
    return out;
}

// [profile.outbound] or [profile.inbound]. Returns false when the value is not a table.
bool loader::read_tls_requirements(const toml::node& n, const std::string& prefix, bool inbound, const config& cfg,
                                   tls_requirements& out) {
    const toml::table* t = n.as_table();
    if (!t) {
        fail(line_of(n), prefix + ": expected a table ([" + prefix + "])");
        return false;
    }
    out.present = true;
    check_keys(*t, prefix, {"tls", "verify", "peer_names", "fingerprints", "min_tls_version", "min_cipher_bits", "ca_file"});

    const toml::node* tls = t->get("tls");
    const toml::node* verify = t->get("verify");
    const toml::node* peer_names = t->get("peer_names");
    const toml::node* fingerprints = t->get("fingerprints");
    const toml::node* min_version = t->get("min_tls_version");
    const toml::node* min_bits = t->get("min_cipher_bits");
    const toml::node* ca_file = t->get("ca_file");
    bool tls_ok = true, verify_ok = true, names_ok = true, pins_ok = true;

    if (tls) {
        tls_ok = false;
        if (auto s = read_string(*tls, prefix + ".tls")) {
            tls_ok = true;
            if (s->value == "opportunistic") out.tls = tls_mode::opportunistic;
            else if (s->value == "mandatory") out.tls = tls_mode::mandatory;
            else if (s->value == "none") out.tls = tls_mode::none;
            else {
                tls_ok = false;
                fail(s->line, prefix + ".tls: must be \"opportunistic\", \"mandatory\" or \"none\" (got " +
                                  in_quotes(s->value) + ")");
            }
        }
    }
    if (verify) {
        verify_ok = false;
        if (auto s = read_string(*verify, prefix + ".verify")) {
            verify_ok = true;
            if (s->value == "none") out.verify = verify_level::none;
            else if (s->value == "ca") out.verify = verify_level::ca;
            else if (s->value == "ca+name") out.verify = verify_level::ca_name;
            else if (s->value == "fingerprint") out.verify = verify_level::fingerprint;
            else if (s->value == "dane") out.verify = verify_level::dane;
            else {
                verify_ok = false;
                fail(s->line, prefix + ".verify: must be \"none\", \"ca\", \"ca+name\", \"fingerprint\" or \"dane\" (got " +
                                  in_quotes(s->value) + ")");
            }
        }
    }
    // A list of strings, each normalised by `norm` (nullopt = invalid, reported with `why`).
    const auto read_list = [&](const toml::node& node, const std::string& name, auto norm, std::string_view why,
                               std::vector<std::string>& into) {
        const toml::array* a = node.as_array();
        if (!a) {
            fail(line_of(node), name + ": expected an array of strings");
            return false;
        }
        if (a->empty()) {
            fail(line_of(node), name + ": must not be empty");
            return false;
        }
        bool ok = true;
        for (const toml::node& e : *a) {
            const auto s = read_string(e, name);
            if (!s) {
                ok = false;
                continue;
            }
            std::optional<std::string> v = norm(s->value);
            if (!v) {
                fail(s->line, name + ": " + in_quotes(s->value) + " " + std::string(why));
                ok = false;
            } else if (std::find(into.begin(), into.end(), *v) != into.end()) {
                fail(s->line, name + ": duplicate entry " + in_quotes(*v));
                ok = false;
            } else {
                into.push_back(std::move(*v));
            }
        }
        return ok;
    };
    if (peer_names)
        names_ok = read_list(
            *peer_names, prefix + ".peer_names",
            [](const std::string& v) -> std::optional<std::string> {
                if (v == "*") return std::nullopt;
                auto a = detail::to_a_labels(v);  // certificates carry A-labels (RFC 6125 6.4.2)
                if (!a) return std::nullopt;
                auto p = profile::parse_domain_pattern(*a);
                return p ? std::optional<std::string>(p->text) : std::nullopt;
            },
            "is not a host name (a leftmost-label wildcard is allowed: *.partner.test)", out.peer_names);
    if (fingerprints)
        pins_ok = read_list(*fingerprints, prefix + ".fingerprints", normalise_fingerprint,
                            "is not \"sha256:HEX\" or \"spki-sha256:HEX\" with 64 hex digits (colons allowed)",
                            out.fingerprints);
    bool version_ok = false, bits_ok = false;
    if (min_version) {
        if (auto s = read_string(*min_version, prefix + ".min_tls_version")) {
            version_ok = s->value == "1.0" || s->value == "1.1" || s->value == "1.2" || s->value == "1.3";
            if (s->value == "1.0") out.min_tls_version = tls_version::v1_0;
            else if (s->value == "1.1") out.min_tls_version = tls_version::v1_1;
            else if (s->value == "1.2") out.min_tls_version = tls_version::v1_2;
            else if (s->value == "1.3") out.min_tls_version = tls_version::v1_3;
            else
                fail(s->line, prefix + ".min_tls_version: must be \"1.0\", \"1.1\", \"1.2\" or \"1.3\" (got " +
                                  in_quotes(s->value) + ")");
        }
    }
    if (min_bits)
        if (auto v = read_int(*min_bits, prefix + ".min_cipher_bits", 0, 256)) {
            out.min_cipher_bits = static_cast<int>(*v);
            bits_ok = true;
        }
    if (ca_file) {
        out.ca_file_line = static_cast<int>(line_of(*ca_file));
        if (auto v = read_file_path(*ca_file, prefix + ".ca_file", false)) out.ca_file = std::move(*v);
    }

    // Contradictions: a requirement that would never be enforced is an error, not a surprise.
    if (!tls_ok || !verify_ok) return true;
    const std::string verify_text = "\"" + std::string(to_string(out.verify)) + "\"";
    if (out.tls == tls_mode::none) {
        if (out.verify != verify_level::none)
            fail(line_of(*verify), prefix + ".verify: " + verify_text + " contradicts tls = \"none\"");
        for (const auto& [node, key] : {std::pair{peer_names, "peer_names"}, std::pair{fingerprints, "fingerprints"},
                                        std::pair{min_version, "min_tls_version"}, std::pair{min_bits, "min_cipher_bits"},
                                        std::pair{ca_file, "ca_file"}})
            if (node) fail(line_of(*node), prefix + "." + key + ": has no effect with tls = \"none\"");
        return true;
    }
    const std::string tls_is =
        " (tls is " + (out.tls == tls_mode::global ? std::string("not set") : "\"opportunistic\"") + ")";
    if (out.verify != verify_level::none && out.tls != tls_mode::mandatory)
        fail(line_of(*verify), prefix + ".verify: " + verify_text + " is enforced only with tls = \"mandatory\"" + tls_is);
    // Opportunistic TLS takes whatever session the peer offers (SPEC 1.1): a minimum is only
    // ever checked under mandatory TLS (tls::evaluate), so anywhere else it would be a promise
    // nothing keeps.
    for (const auto& [node, key, ok] : {std::tuple{min_version, "min_tls_version", version_ok},
                                        std::tuple{min_bits, "min_cipher_bits", bits_ok}})
        if (node && ok && out.tls != tls_mode::mandatory)
            fail(line_of(*node), prefix + "." + key + ": is enforced only with tls = \"mandatory\"" + tls_is);
    if (out.verify == verify_level::fingerprint && !fingerprints)
        fail(line_of(*verify), prefix + ".verify: \"fingerprint\" needs the pins in " + prefix + ".fingerprints");
    if (fingerprints && pins_ok && out.verify != verify_level::fingerprint)
        fail(line_of(*fingerprints), prefix + ".fingerprints: pins are used only with verify = \"fingerprint\" (verify is " +
                                         verify_text + ")");
    if (peer_names && names_ok && out.verify != verify_level::ca_name && out.verify != verify_level::dane)
        fail(line_of(*peer_names), prefix + ".peer_names: names are checked only with verify = \"ca+name\" or " +
                                       "\"dane\" (verify is " + verify_text + ")");
    if (ca_file && out.verify != verify_level::ca && out.verify != verify_level::ca_name)
        fail(line_of(*ca_file), prefix + ".ca_file: a trust store is used only with verify = \"ca\" or \"ca+name\" " +
                                    "(verify is " + verify_text + ")");
    if (inbound && out.verify == verify_level::ca_name && !peer_names)
        fail(line_of(*verify), prefix + ".verify: \"ca+name\" needs " + prefix +
                                   ".peer_names (the names client certificates must carry)");
    // (Not said again when tls.cert_file is written but unusable: that is reported at its line.)
    if (inbound && out.tls == tls_mode::mandatory && cfg.tls.cert_file.empty() && !cert_file_written_)
        fail(line_of(*tls), prefix + ".tls: \"mandatory\" needs tls.cert_file and tls.key_file (without a " +
                                "certificate STARTTLS cannot be offered)");
    return true;
}

void loader::load_profiles(const toml::table& root, config& out) {
    std::map<std::string, line_t> names;  // lower-case name -> line
    entry_map hosts_seen, senders_seen, recipients_seen;
    for (const toml::table* t : table_array(root, "profile")) {
        check_keys(*t, "profile",
                   {"name", "hosts", "sender_domains", "recipient_domains", "relay", "outbound", "inbound"});
        profile_config p;
        p.line = static_cast<int>(line_of(*t));
        if (const toml::node* n = t->get("name")) {
            if (auto s = read_string(*n, "profile.name")) {
                if (!is_profile_name(s->value)) {
                    fail(s->line, "profile.name: " + in_quotes(s->value) +
                                      " must be 1 to 64 letters, digits, '.', '-' or '_'");
                } else if (auto [it, inserted] = names.emplace(detail::to_lower(s->value), s->line); !inserted) {
                    fail(s->line, "duplicate profile name " + in_quotes(s->value) + " (first defined at line " +
                                      std::to_string(it->second) + ")");
                } else {
                    p.name = s->value;
                }
            }
        } else {
            fail(line_of(*t), "profile: missing required key 'name'");
        }
        const entry_owner self{p.name, line_of(*t), {}, 0};
        const std::string label = describe(p.name, line_of(*t));

        const toml::node* hosts = t->get("hosts");
        const toml::node* senders = t->get("sender_domains");
        const toml::node* recipients = t->get("recipient_domains");
        if (hosts)
            if (auto v = read_profile_entries(*hosts, "profile.hosts", profile::parse_host_pattern, hosts_seen, self,
                                              "a host"))
                p.hosts = std::move(*v);
        if (senders)
            if (auto v = read_profile_entries(*senders, "profile.sender_domains", profile::parse_domain_pattern,
                                              senders_seen, self, "a sender domain"))
                p.sender_domains = std::move(*v);
        if (recipients)
            if (auto v = read_profile_entries(*recipients, "profile.recipient_domains", profile::parse_domain_pattern,
                                              recipients_seen, self, "a recipient domain"))
                p.recipient_domains = std::move(*v);
        if (!hosts && !senders && !recipients)
            fail(line_of(*t), label + " matches nothing: give hosts, sender_domains or recipient_domains");

        if (const toml::node* n = t->get("relay")) {
            if (auto s = read_string(*n, "profile.relay")) {
                if (s->value == "hosted") {
                    p.relay = profile_config::relay_mode::hosted;
                } else if (s->value == "any") {
                    p.relay = profile_config::relay_mode::any;
                    // Relay rights follow the client's address or name; a sender domain is
                    // whatever the client writes in MAIL FROM.
                    if (!hosts)
                        fail(s->line, "profile.relay: \"any\" needs hosts (relay is granted by the client's address "
                                      "or name, never by the sender domain)");
                    else if (std::find(p.hosts.begin(), p.hosts.end(), "*") != p.hosts.end())
                        fail(s->line, "profile.relay: \"any\" with hosts = [\"*\"] would make an open relay; "
                                      "list the clients' addresses");
                    else
                        for (const auto& h : p.hosts)
                            if (auto pat = profile::parse_host_pattern(h);
                                pat && pat->kind == profile::pattern_kind::prefix &&
                                pat->prefix_len < (pat->address.v6 ? 16u : 8u))
                                fail(s->line, "profile.relay: \"any\" with hosts = [\"" + h +
                                                  "\"] would make (nearly) an open relay; list the clients' "
                                                  "networks (IPv4 /8 or longer, IPv6 /16 or longer)");
                            else if (pat && pat->kind == profile::pattern_kind::wildcard_name &&
                                     is_public_suffix(pat->suffix))
                                // Relay by name follows forward-confirmed reverse DNS, which anyone
                                // with an address can set up under a public suffix ("com",
                                // "co.uk", a hosting provider's "compute.amazonaws.com").
                                fail(s->line, "profile.relay: \"any\" with hosts = [\"" + h +
                                                  "\"] would make (nearly) an open relay: \"" + pat->suffix +
                                                  "\" is a public suffix, under which anyone can name an "
                                                  "address; name the clients' own domain (\"*.example.com\")");
                            else if (pat && pat->kind == profile::pattern_kind::wildcard_name)
                                // The wildcard matches names at any depth, so also those under a
                                // public suffix below it ("*.amazonaws.com" takes every EC2
                                // customer's "ec2-....compute-1.amazonaws.com").
                                if (const auto below = public_suffix_under(pat->suffix))
                                    fail(s->line, "profile.relay: \"any\" with hosts = [\"" + h +
                                                      "\"] would make (nearly) an open relay: it takes the names "
                                                      "under the public suffix \"" + *below +
                                                      "\", where anyone can name an address; name the clients' "
                                                      "own domain (\"*.mail.example.com\")");
                } else {
                    fail(s->line, "profile.relay: must be \"hosted\" or \"any\" (got " + in_quotes(s->value) + ")");
                }
            }
        }

        // sender_domains select a profile for inbound mail only, recipient_domains for
        // outbound only: a direction nothing can select for is a mistake.
        if (const toml::node* n = t->get("outbound"))
            if (read_tls_requirements(*n, "profile.outbound", false, out, p.outbound) && !hosts && !recipients &&
                senders)
                fail(line_of(*n), "profile.outbound: never applies: " + label +
                                      " has no hosts or recipient_domains (sender_domains select a profile for "
                                      "inbound mail only)");
        if (const toml::node* n = t->get("inbound"))
            if (read_tls_requirements(*n, "profile.inbound", true, out, p.inbound) && !hosts && !senders && recipients)
                fail(line_of(*n), "profile.inbound: never applies: " + label +
                                      " has no hosts or sender_domains (recipient_domains select a profile for "
                                      "outbound mail only)");
        out.profiles.push_back(std::move(p));
    }
}

std::shared_ptr<config> loader::build(const toml::table& root) {
    auto cfg = std::make_shared<config>();
    check_keys(root, "",
               {"hostname", "server", "spool", "tls", "queue", "delivery", "dns", "log", "domain", "route", "profile"});

    if (const auto* n = root.get("hostname")) {
        if (auto s = read_string(*n, "hostname")) {
            if (detail::is_valid_domain(s->value)) cfg->hostname = s->value;
            else fail(s->line, "hostname: " + in_quotes(s->value) + " is not a valid domain name");
        }
    } else {
        char buf[HOST_NAME_MAX + 1] = {};
        if (gethostname(buf, sizeof buf - 1) != 0 || !detail::is_valid_domain(buf))
            fail(1, "hostname: not set, and the machine's host name " + in_quotes(buf) +
                        " is not a valid domain name; set hostname");
        else cfg->hostname = buf;
    }

    if (const auto* t = section(root, "server")) load_server(*t, cfg->server);
    load_spool_dir(root, cfg->spool);
    if (const toml::node* n = root.get("spool"); n && n->is_table()) load_spool(*n->as_table(), cfg->spool);
    if (const auto* t = section(root, "tls")) load_tls(*t, cfg->tls);
    if (const auto* t = section(root, "queue")) load_queue(*t, cfg->queue);
    if (const auto* t = section(root, "delivery")) {
        check_keys(*t, "delivery", {"port", "command_timeout", "final_timeout", "mime_conversion"});
        if (const auto* n = t->get("port"))
            if (auto v = read_port(*n, "delivery.port")) cfg->delivery.port = *v;
        if (const auto* n = t->get("command_timeout"))
            if (auto v = read_duration(*n, "delivery.command_timeout", seconds{1}, seconds{3600}))
                cfg->delivery.command_timeout = *v;
        if (const auto* n = t->get("final_timeout"))
            if (auto v = read_duration(*n, "delivery.final_timeout", seconds{1}, seconds{3600}))
                cfg->delivery.final_timeout = *v;
        if (const auto* n = t->get("mime_conversion"))
            if (auto v = read_bool(*n, "delivery.mime_conversion")) cfg->delivery.mime_conversion = *v;
    }
    if (const auto* t = section(root, "dns")) {
        check_keys(*t, "dns", {"servers"});
        if (const auto* n = t->get("servers"))
            if (auto v = read_host_ports(*n, "dns.servers", 53, true, true)) cfg->dns.servers = std::move(*v);
    }
    if (const auto* t = section(root, "log")) {
        check_keys(*t, "log", {"format"});
        if (const auto* n = t->get("format")) {
            if (auto s = read_string(*n, "log.format")) {
                if (s->value == "text") cfg->log.format = log_format::text;
                else if (s->value == "json") cfg->log.format = log_format::json;
                else fail(s->line, "log.format: must be \"text\" or \"json\" (got " + in_quotes(s->value) + ")");
            }
        }
    }
    load_domains(root, *cfg);
    load_routes(root, *cfg);
    load_profiles(root, *cfg);  // after [tls]: inbound "mandatory" needs its certificate
    return cfg;
}

}  // namespace

namespace {

// The TOML document of `text` and the absolute path of its file (`path`; an empty path, text
// not from a file, resolves relative paths against the current directory); or the error line.
std::optional<std::string> parse_toml(std::string_view text, const std::string& path, fs::path& absolute,
                                      toml::table& root) {
    std::error_code ec;
    absolute = path.empty() ? fs::current_path(ec) / "" : fs::absolute(fs::path(path), ec);
    if (ec) return path + ": " + ec.message();
    absolute = absolute.lexically_normal();
    try {
        root = toml::parse(text, std::string_view(path));
    } catch (const toml::parse_error& e) {
        // toml++ quotes what it saw up to and including the end of the line ("saw 'fals<LF>'"):
        // a line end is written `\n`, as toml++ itself writes it elsewhere ("saw '\n'").
        std::string what(e.description());
        for (std::size_t at = 0; (at = what.find_first_of("\r\n", at)) != std::string::npos; at += 2)
            what.replace(at, 1, what[at] == '\n' ? "\\n" : "\\r");
        return path + ":" + std::to_string(line_of(e.source())) + ": " + escape_controls(what);
    }
    return std::nullopt;
}

}  // namespace

result<std::string> spool_dir_of(const std::string& path) {
    auto text = read_text(path);
    if (!text) return error{text.error_message()};
    fs::path absolute;
    toml::table root;
    if (auto problem = parse_toml(*text, path, absolute, root)) return error{*problem};
    loader l(path, absolute.parent_path(), false, false);
    spool_config out;
    l.load_spool_dir(root, out);
    if (l.failed()) return error{l.message()};
    return out.dir;
}

result<std::shared_ptr<const config>> parse(std::string_view text, const std::string& path, bool check_files,
                                            bool check_user) {
    fs::path absolute;
    toml::table root;
    if (auto problem = parse_toml(text, path, absolute, root)) return error{*problem};
    loader l(path, absolute.parent_path(), check_files, check_user);
    auto cfg = l.build(root);
    if (l.failed()) return error{l.message()};
    cfg->source_path = path.empty() ? std::string() : absolute.string();
    cfg->source_name = path;
    return std::shared_ptr<const config>(std::move(cfg));
}

std::vector<std::string> warnings(const config& cfg) {
    std::vector<std::string> out;
    // SPEC 1.1: opportunistic TLS advertises STARTTLS inbound, which needs a certificate. At the
    // key's line, else the [tls] table's, else line 1 (the default is on).
    if (cfg.tls.opportunistic && cfg.tls.cert_file.empty())
        out.push_back(fmt::format("{}:{}: warning: tls.opportunistic is on but tls.cert_file is not set: STARTTLS "
                                  "will not be offered inbound without a certificate (set tls.cert_file and "
                                  "tls.key_file; outbound STARTTLS is not affected)",
                                  cfg.source_name,
                                  cfg.tls.opportunistic_line   ? cfg.tls.opportunistic_line
                                  : cfg.tls.line              ? cfg.tls.line
                                                              : 1));
    // Not root (check-config run by an admin, a test server): the user is not switched to, so
    // its absence is no error here, but serve started as root would refuse this file.
    if (!cfg.server.user.empty() && ::geteuid() != 0 && ::getpwnam(cfg.server.user.c_str()) == nullptr)
        out.push_back(fmt::format("{}:{}: warning: {}; serve started as root refuses this configuration",
                                  cfg.source_name, cfg.server.user_line ? cfg.server.user_line : 1,
                                  no_such_user(cfg.server.user)));
    for (const auto& p : cfg.profiles)
        for (const auto* dir : {&p.outbound, &p.inbound}) {
            const char* side = dir == &p.outbound ? "outbound" : "inbound";
            if (dir->verify == verify_level::dane)
                out.push_back(fmt::format("{}:{}: warning: profile '{}': verify = \"dane\" is not implemented yet: every "
                                          "{} session under this profile is refused (no mail flows)",
                                          cfg.source_name, p.line, p.name, side));
            // SPEC 1.3 lists "1.0" and "1.1"; Postern never negotiates below TLS 1.2 (RFC 8996,
            // docs/security.md), so such a minimum is 1.2 in effect.
            if (dir->tls == tls_mode::mandatory &&
                (dir->min_tls_version == tls_version::v1_0 || dir->min_tls_version == tls_version::v1_1))
                out.push_back(fmt::format("{}:{}: warning: profile '{}': {} min_tls_version = \"{}\": TLS 1.0 and 1.1 "
                                          "are never negotiated (the floor is TLS 1.2), so a peer without TLS 1.2 "
                                          "gets no mail",
                                          cfg.source_name, p.line, p.name, side,
                                          dir->min_tls_version == tls_version::v1_0 ? "1.0" : "1.1"));
        }
    // SPEC §1.4: a client matched by address or host name is never under a sender-domain
    // profile. A profile written for a partner's MX hosts with only [profile.outbound] also
    // matches those hosts when they send to us, and then a mandatory sender-domain profile does
    // not apply to their mail: it is accepted as the global switch says (found by review).
    const profile_config* mandatory_senders = nullptr;
    for (const auto& q : cfg.profiles)
        if (!q.sender_domains.empty() && q.inbound.tls == tls_mode::mandatory) {
            mandatory_senders = &q;
            break;
        }
    if (mandatory_senders)
        for (const auto& p : cfg.profiles) {
            const bool by_host = std::any_of(p.hosts.begin(), p.hosts.end(), [](const std::string& h) { return h != "*"; });
            if (!by_host || p.inbound.present) continue;
            out.push_back(fmt::format("{}:{}: warning: profile '{}' matches clients by hosts and has no "
                                      "[profile.inbound]: mail from the clients it matches is never under a "
                                      "sender-domain profile (profile '{}' requires TLS for its senders), so it is "
                                      "accepted as tls.opportunistic says; add [profile.inbound] to say what applies",
                                      cfg.source_name, p.line, p.name, mandatory_senders->name));
        }
    return out;
}

result<std::string> read_text(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return error{path + ": cannot read: is a directory"};
    std::ifstream in(path, std::ios::binary);
    if (!in) return error{path + ": cannot open: " + std::strerror(errno)};
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return error{path + ": cannot read: " + std::strerror(errno)};
    return text.str();
}

result<std::shared_ptr<const config>> load(const std::string& path, bool check_files, bool check_user) {
    auto text = read_text(path);
    if (!text) return error{text.error_message()};
    return parse(*text, path, check_files, check_user);
}

}  // namespace postern::config
