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
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <sstream>

#include "config/config.hpp"
#include "config/values.hpp"

namespace postern::config {

namespace {

namespace fs = std::filesystem;

using line_t = std::uint32_t;

line_t line_of(const toml::source_region& r) { return std::max<line_t>(r.begin.line, 1); }
line_t line_of(const toml::node& n) { return line_of(n.source()); }
line_t line_of(const toml::key& k) { return line_of(k.source()); }

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string join(std::string_view prefix, std::string_view key) {
    return prefix.empty() ? std::string(key) : std::string(prefix) + "." + std::string(key);
}

// A string value and where it was.
struct located_string {
    std::string value;
    line_t line = 0;
};

class loader {
public:
    loader(std::string file, fs::path base_dir) : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

    std::shared_ptr<config> build(const toml::table& root);
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
    // Control characters from the file (a "\n" inside a string value) are escaped, so each
    // problem stays on one line.
    void fail(line_t line, const std::string& message) {
        static constexpr char hex[] = "0123456789abcdef";
        std::string clean;
        for (const char c : message) {
            const auto u = static_cast<unsigned char>(c);
            if (u < 0x20 || u == 0x7f) clean += std::string("\\x") + hex[u >> 4] + hex[u & 15];
            else clean += c;
        }
        errors_.emplace_back(line, std::move(clean));
    }

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
            out.push_back(std::move(*hp));
        }
        if (!ok) return std::nullopt;
        return out;
    }

    // A domain name, lower-cased.
    std::optional<located_string> read_domain(const toml::node& n, const std::string& name) {
        auto s = read_string(n, name);
        if (!s) return std::nullopt;
        if (!detail::is_valid_domain(s->value)) {
            fail(s->line, name + ": " + in_quotes(s->value) + " is not a valid domain name");
            return std::nullopt;
        }
        s->value = detail::to_lower(s->value);
        return s;
    }

    void load_server(const toml::table& t, server_config& out);
    void load_spool(const toml::table* t, spool_config& out);
    void load_tls(const toml::table& t, tls_config& out);
    void load_queue(const toml::table& t, queue_config& out);
    void load_domains(const toml::table& root, config& out);
    void load_routes(const toml::table& root, config& out);

    std::string file_;
    fs::path base_dir_;
    std::vector<std::pair<line_t, std::string>> errors_;
    std::map<std::string, line_t> domain_lines_;  // hosted domain -> line of its name
};

void loader::load_server(const toml::table& t, server_config& out) {
    check_keys(t, "server",
               {"listen", "max_message_size", "max_recipients", "max_connections", "max_connections_per_ip",
                "command_timeout", "data_timeout", "max_errors", "max_line_length"});
    if (const auto* n = t.get("listen"))
        if (auto v = read_host_ports(*n, "server.listen", 0, true, false)) out.listen = std::move(*v);
    if (const auto* n = t.get("max_message_size"))
        if (auto v = read_size(*n, "server.max_message_size", std::uint64_t{1} << 10, std::uint64_t{2} << 30))
            out.max_message_size = *v;
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
}

void loader::load_spool(const toml::table* t, spool_config& out) {
    if (!t) {
        fail(1, "missing required key 'spool.dir'");
        return;
    }
    check_keys(*t, "spool", {"dir"});
    if (const auto* n = t->get("dir")) {
        if (auto v = read_path(*n, "spool.dir", false)) out.dir = std::move(*v);
    } else {
        fail(line_of(*t), "missing required key 'spool.dir'");
    }
}

void loader::load_tls(const toml::table& t, tls_config& out) {
    check_keys(t, "tls", {"opportunistic", "cert_file", "key_file", "ca_file", "handshake_retry_delay"});
    if (const auto* n = t.get("opportunistic"))
        if (auto v = read_bool(*n, "tls.opportunistic")) out.opportunistic = *v;
    const toml::node* cert = t.get("cert_file");
    const toml::node* key = t.get("key_file");
    if (cert)
        if (auto v = read_path(*cert, "tls.cert_file", true)) out.cert_file = std::move(*v);
    if (key)
        if (auto v = read_path(*key, "tls.key_file", true)) out.key_file = std::move(*v);
    const auto is_set = [](const toml::node* n) {
        return n && n->is_string() && !n->as_string()->get().empty();
    };
    if (is_set(cert) && !key)
        fail(line_of(*cert), "tls.cert_file is set but tls.key_file is not (set both or neither)");
    else if (is_set(cert) && key && key->is_string() && !is_set(key))
        fail(line_of(*key), "tls.key_file is empty but tls.cert_file is set (set both or neither)");
    else if (is_set(key) && !cert)
        fail(line_of(*key), "tls.key_file is set but tls.cert_file is not (set both or neither)");
    else if (is_set(key) && cert && cert->is_string() && !is_set(cert))
        fail(line_of(*cert), "tls.cert_file is empty but tls.key_file is set (set both or neither)");
    if (const auto* n = t.get("ca_file"))
        if (auto v = read_path(*n, "tls.ca_file", true)) out.ca_file = std::move(*v);
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
        if (auto v = read_duration(*n, "queue.max_age", seconds{60}, seconds{60 * 86400})) out.max_age = *v;
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
            if (auto s = read_string(*n, "route.domain")) {
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

std::shared_ptr<config> loader::build(const toml::table& root) {
    auto cfg = std::make_shared<config>();
    for (auto&& [k, v] : root) {
        (void)v;
        if (k.str() == "profile") fail(line_of(k), "[[profile]] is not supported by this version");
    }
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
    if (root.get("spool") == nullptr) load_spool(nullptr, cfg->spool);
    else if (const auto* t = section(root, "spool")) load_spool(t, cfg->spool);
    if (const auto* t = section(root, "tls")) load_tls(*t, cfg->tls);
    if (const auto* t = section(root, "queue")) load_queue(*t, cfg->queue);
    if (const auto* t = section(root, "delivery")) {
        check_keys(*t, "delivery", {"port"});
        if (const auto* n = t->get("port"))
            if (auto v = read_port(*n, "delivery.port")) cfg->delivery.port = *v;
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
    return cfg;
}

}  // namespace

result<std::shared_ptr<const config>> parse(std::string_view text, const std::string& path) {
    // An empty path (text not from a file) resolves relative paths against the current directory.
    std::error_code ec;
    fs::path absolute = path.empty() ? fs::current_path(ec) / "" : fs::absolute(fs::path(path), ec);
    if (ec) return error{path + ": " + ec.message()};
    absolute = absolute.lexically_normal();

    toml::table root;
    try {
        root = toml::parse(text, std::string_view(path));
    } catch (const toml::parse_error& e) {
        return error{path + ":" + std::to_string(line_of(e.source())) + ": " + std::string(e.description())};
    }

    loader l(path, absolute.parent_path());
    auto cfg = l.build(root);
    if (l.failed()) return error{l.message()};
    cfg->source_path = path.empty() ? std::string() : absolute.string();
    return std::shared_ptr<const config>(std::move(cfg));
}

result<std::shared_ptr<const config>> load(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return error{path + ": cannot read: is a directory"};
    std::ifstream in(path, std::ios::binary);
    if (!in) return error{path + ": cannot open: " + std::strerror(errno)};
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return error{path + ": cannot read: " + std::strerror(errno)};
    return parse(text.str(), path);
}

}  // namespace postern::config
