// log/log.cpp - text and JSON line formatting for the event log (SPEC §6).
// text:  2026-11-28T14:40:01.123Z info connect session=1A client=127.0.0.1:5123
// json:  {"ts":"2026-11-28T14:40:01.123Z","level":"info","event":"connect","session":"1A",...}
#include "log/log.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

#include "smtp/address.hpp"

namespace postern::log {
namespace {

std::atomic<format> g_format{format::text};

const char* level_name(level lv) {
    switch (lv) {
        case level::info: return "info";
        case level::warning: return "warning";
        case level::error: return "error";
    }
    return "info";
}

std::string timestamp() {
    auto now = std::chrono::system_clock::now();
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - secs).count();
    std::time_t t = std::chrono::system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:03}Z", buf, ms);
}

// JSON string content (RFC 8259 7), always valid UTF-8 (8.1) whatever `s` holds: a next hop's
// reply or an address may carry any octets. Malformed UTF-8 becomes U+FFFD; the controls,
// line separators and bidirectional formatting characters (smtp::is_invisible_control) are
// escaped, so that no reader takes a value for a line end or sees it reordered.
void json_escape(std::string& out, std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            char32_t cp = 0;
            const std::size_t n = smtp::utf8_sequence(s, i, &cp);
            if (n == 0) {
                out += "\\ufffd";
                ++i;
            } else {
                if (smtp::is_invisible_control(cp)) out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
                else out.append(s.substr(i, n));
                i += n;
            }
            continue;
        }
        ++i;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) out += fmt::format("\\u{:04x}", c);
                else out += static_cast<char>(c);
        }
    }
}

// Text values are quoted (and escaped as in JSON) when they contain anything but printable
// ASCII other than quotes: spaces, controls, and every non-ASCII octet, so that no Unicode
// space (U+00A0) or line end (U+0085, U+2028) inside a value can pass for a field separator
// or a new line.
void text_value(std::string& out, std::string_view s) {
    bool plain = !s.empty();
    for (unsigned char c : s)
        if (c <= ' ' || c == '"' || c == '\\' || c >= 0x7f) { plain = false; break; }
    if (plain) { out += s; return; }
    out += '"';
    json_escape(out, s);
    out += '"';
}

void write_line(const std::string& line) {
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0) return;  // nowhere to report a failing log
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

std::string num(double v) { return fmt::format("{:.3f}", v); }

}  // namespace

void set_format(format f) { g_format.store(f); }

namespace {

// One line: the event, then `head` fields, then `fields`.
std::string format_fields(format f, level lv, std::string_view event, std::initializer_list<field> head,
                          std::initializer_list<field> fields) {
    std::string out;
    out.reserve(160);
    if (f == format::json) {
        out += "{\"ts\":\"";
        out += timestamp();
        out += "\",\"level\":\"";
        out += level_name(lv);
        out += "\",\"event\":\"";
        json_escape(out, event);
        out += '"';
        for (auto list : {head, fields})
            for (const auto& fl : list) {
                out += ",\"";
                json_escape(out, fl.key);
                if (fl.number && !fl.value.empty()) {  // to_string / num(): digits and a point only
                    out += "\":";
                    out += fl.value;
                    continue;
                }
                out += "\":\"";
                json_escape(out, fl.value);
                out += '"';
            }
        out += "}\n";
    } else {
        out += timestamp();
        out += ' ';
        out += level_name(lv);
        out += ' ';
        out += event;
        for (auto list : {head, fields})
            for (const auto& fl : list) {
                out += ' ';
                out += fl.key;
                out += '=';
                text_value(out, fl.value);
            }
        out += '\n';
    }
    return out;
}

std::string or_dash(std::string_view s) { return s.empty() ? std::string("-") : std::string(s); }

// Every session line: session, client, profile, tls first, then the event's own fields.
void emit_session(level lv, std::string_view event, const session_tags& t, std::initializer_list<field> fields) {
    write_line(format_fields(g_format.load(std::memory_order_relaxed), lv, event,
                             {{"session", std::string(t.session)}, {"client", std::string(t.client)},
                              {"profile", or_dash(t.profile)}, {"tls", or_dash(t.tls)}},
                             fields));
}

}  // namespace

std::string format_line(format f, level lv, std::string_view event, std::initializer_list<field> fields) {
    return format_fields(f, lv, event, {}, fields);
}

void emit(level lv, std::string_view event, std::initializer_list<field> fields) {
    write_line(format_line(g_format.load(std::memory_order_relaxed), lv, event, fields));
}

void started(std::string_view version, std::string_view config_path, std::string_view listen) {
    emit(level::info, "start", {{"version", std::string(version)}, {"config", std::string(config_path)},
                                {"listen", std::string(listen)}});
}
void stopping(std::string_view why) { emit(level::info, "stop", {{"reason", std::string(why)}}); }
void config_reloaded(std::string_view path) { emit(level::info, "reload", {{"config", std::string(path)}}); }
void config_reload_failed(std::string_view path, std::string_view error) {
    emit(level::error, "reload_failed", {{"config", std::string(path)}, {"error", std::string(error)},
                                         {"action", "keeping the previous configuration"}});
}
void connection_refused(std::string_view client, std::string_view reason) {
    emit(level::warning, "refuse", {{"client", std::string(client)}, {"reason", std::string(reason)}});
}

void connection_opened(const session_tags& t, std::string_view local, std::string_view client_name,
                       std::string_view tls_policy) {
    emit_session(level::info, "connect", t,
                 {{"local", std::string(local)}, {"client_name", or_dash(client_name)},
                  {"tls_policy", std::string(tls_policy)}});
}
void connection_closed(const session_tags& t, std::string_view reason, unsigned messages, unsigned errors) {
    emit_session(level::info, "disconnect", t,
                 {{"reason", std::string(reason)}, {"messages", std::to_string(messages), true},
                  {"errors", std::to_string(errors), true}});
}
void tls_established(const session_tags& t, std::string_view version, std::string_view cipher, int bits) {
    emit_session(level::info, "tls", t,
                 {{"version", std::string(version)}, {"cipher", std::string(cipher)}, {"bits", std::to_string(bits), true}});
}
void tls_failed(const session_tags& t, std::string_view reason) {
    emit_session(level::warning, "tls_failed", t, {{"reason", std::string(reason)}});
}
void tls_policy_checked(const session_tags& t, std::string_view level_name, bool ok, std::string_view reason) {
    emit_session(ok ? level::info : level::warning, "tls_policy", t,
                 {{"level", std::string(level_name)}, {"verdict", ok ? "ok" : "refused"},
                  {"reason", std::string(reason)}});
}
void message_queued(const session_tags& t, std::string_view id, std::string_view sender, std::size_t recipients,
                    std::size_t size, std::string_view proto, std::string_view cipher, bool held) {
    emit_session(level::info, "queued", t,
                 {{"id", std::string(id)}, {"from", fmt::format("<{}>", sender)},
                  {"nrcpt", std::to_string(recipients), true}, {"size", std::to_string(size), true}, {"proto", or_dash(proto)},
                  {"cipher", or_dash(cipher)}, {"held", held ? "yes" : "no"}});
}
void message_rejected(const session_tags& t, std::string_view reply) {
    emit_session(level::info, "reject", t, {{"reply", std::string(reply)}});
}
void delivery(const delivery_attempt& a) {
    emit(a.result == "sent" ? level::info : level::warning, "delivery",
         {{"id", std::string(a.id)}, {"to", fmt::format("<{}>", a.recipient)}, {"relay", std::string(a.relay)},
          {"profile", or_dash(a.profile)}, {"tls", std::string(a.tls)}, {"proto", or_dash(a.tls_version)},
          {"cipher", or_dash(a.tls_cipher)}, {"result", std::string(a.result)},
          {"dsn", std::string(a.dsn)}, {"delay", num(a.delay_s), true}, {"attempt", std::to_string(a.attempt), true},
          {"reason", std::string(a.reason)}});
}
void spool_error(std::string_view id, std::string_view what) {
    emit(level::error, "spool_error", {{"id", std::string(id)}, {"error", std::string(what)}});
}
void warning(std::string_view event, std::string_view message) {
    emit(level::warning, event, {{"message", std::string(message)}});
}
void error(std::string_view event, std::string_view message) {
    emit(level::error, event, {{"message", std::string(message)}});
}

}  // namespace postern::log
