// control/control.cpp - the queue control protocol: request lines, JSON and table views, and
// the dispatcher that runs one request against a queue_control (SPEC §4 `postern queue ...`),
// and the response framing both ends use.
// Pure: no sockets, no files. Every string that reaches a terminal or a JSON consumer comes
// from the network at some point (addresses, remote replies), so both renderings escape it.
#include "control/control.hpp"

#include "smtp/address.hpp"

#include <sys/un.h>

#include <algorithm>
#include <charconv>
#include <exception>

#include <fmt/format.h>

namespace postern::control {
namespace {

// RFC 8259 §7: quote, backslash and U+0000..U+001F must be escaped; DEL, the C1 controls, the
// line separators and the bidirectional formatting characters (smtp::is_invisible_control)
// are escaped too so the output is plain to read. Other valid UTF-8 is kept as is; a byte that is not part of valid UTF-8
// becomes U+FFFD, so the document is always valid JSON (a remote reply can carry any byte).
void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    for (std::size_t i = 0; i < s.size();) {
        const char c = s[i];
        switch (c) {
            case '"': out += "\\\""; ++i; continue;
            case '\\': out += "\\\\"; ++i; continue;
            case '\b': out += "\\b"; ++i; continue;
            case '\f': out += "\\f"; ++i; continue;
            case '\n': out += "\\n"; ++i; continue;
            case '\r': out += "\\r"; ++i; continue;
            case '\t': out += "\\t"; ++i; continue;
            default: break;
        }
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7F) {
            out += fmt::format("\\u{:04x}", u);
            ++i;
            continue;
        }
        if (u < 0x80) {
            out += c;
            ++i;
            continue;
        }
        char32_t cp = 0;
        const std::size_t n = smtp::utf8_sequence(s, i, &cp);
        if (n == 0) {
            out += "\\ufffd";
            ++i;
            continue;
        }
        if (smtp::is_invisible_control(cp)) out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
        else out.append(s.data() + i, n);
        i += n;
    }
    out += '"';
}

// For the table: a terminal must never receive control characters from a remote reply (escape
// sequences) nor characters that reorder or hide the text (smtp::is_invisible_control): they
// and bytes that are not valid UTF-8 are shown as \xNN, and a backslash as \\, so the
// rendering is unambiguous.
std::string printable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp = static_cast<unsigned char>(s[i]);
        std::size_t n = 1;
        if (cp >= 0x80) n = smtp::utf8_sequence(s, i, &cp);
        if (n == 0) {  // not UTF-8: one byte at a time
            out += fmt::format("\\x{:02X}", static_cast<unsigned char>(s[i]));
            ++i;
        } else if (smtp::is_invisible_control(cp)) {
            for (std::size_t j = 0; j < n; ++j) out += fmt::format("\\x{:02X}", static_cast<unsigned char>(s[i + j]));
            i += n;
        } else if (cp == '\\') {
            out += "\\\\";
            ++i;
        } else {
            out.append(s.data() + i, n);
            i += n;
        }
    }
    return out;
}

// --- time --------------------------------------------------------------------------------

// Days since 1970-01-01 -> proleptic Gregorian y/m/d (H. Hinnant's civil_from_days): pure, no
// time zone database, no locale, valid for every int64 the spool can hold.
void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = static_cast<std::int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) ++y;
}

std::string iso_time(std::int64_t t) {
    // Keep clear of overflow in the day arithmetic; no real spool holds such a time.
    constexpr std::int64_t limit = std::int64_t{1} << 50;
    if (t > limit || t < -limit) return std::to_string(t);
    std::int64_t days = t / 86400, secs = t % 86400;
    if (secs < 0) secs += 86400, --days;
    std::int64_t y = 0;
    unsigned m = 0, d = 0;
    civil_from_days(days, y, m, d);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", y, m, d, secs / 3600, secs / 60 % 60, secs % 60);
}

// --- requests ----------------------------------------------------------------------------

std::string_view verb_name(verb v) {
    switch (v) {
        case verb::list: return "list";
        case verb::show: return "show";
        case verb::retry: return "retry";
        case verb::del: return "delete";
        case verb::hold: return "hold";
        case verb::release: return "release";
    }
    return "list";
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }

// Queue ids are upper-case hex (queue::spool::new_id); lower case is accepted from a human
// and normalised. Anything else (a path, "..") is refused here, before any file name is built.
result<std::string> parse_id(std::string_view word) {
    if (word.empty() || word.size() > 64) return error{fmt::format("invalid queue id '{}'", printable(word))};
    std::string id(word);
    for (char& c : id) {
        if (!is_hex(c)) return error{fmt::format("invalid queue id '{}'", printable(word))};
        if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
    }
    return id;
}

result<bool> parse_format(std::string_view word) {
    if (word == "json") return true;
    if (word == "table") return false;
    return error{fmt::format("unknown output format '{}' (json or table)", printable(word))};
}

// An error message travels on one line ("ERR message\n").
std::string one_line(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c == '\r' || c == '\n') c = ' ';
    return out;
}

std::string ok(std::string_view payload) { return ok_response(payload); }
std::string err(std::string_view message) { return err_response(message); }

std::string plural(unsigned n, std::string_view word) {
    return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

void append_message_json(std::string& out, const message_view& m) {
    out += "{\"id\":";
    append_json_string(out, m.id);
    out += ",\"sender\":";
    append_json_string(out, m.sender);
    out += fmt::format(",\"size\":{},\"arrived\":", m.size);
    append_json_string(out, iso_time(m.arrived));
    out += m.held ? ",\"held\":true" : ",\"held\":false";
    out += ",\"recipients\":[";
    for (std::size_t i = 0; i < m.recipients.size(); ++i) {
        const recipient_view& r = m.recipients[i];
        if (i) out += ',';
        out += "{\"address\":";
        append_json_string(out, r.address);
        out += ",\"status\":";
        append_json_string(out, r.status);
        out += fmt::format(",\"attempts\":{},\"next_attempt\":", r.attempts);
        append_json_string(out, r.next_attempt == 0 ? std::string() : iso_time(r.next_attempt));
        out += ",\"last_reply\":";
        append_json_string(out, r.last_reply);
        out += '}';
    }
    out += "]}";
}

}  // namespace

// --- requests ----------------------------------------------------------------------------

std::string socket_path(const std::string& spool_dir) { return spool_dir + "/control.sock"; }

std::optional<std::string> socket_path_problem(const std::string& spool_dir) {
    const std::string path = socket_path(spool_dir);
    constexpr std::size_t most = sizeof(sockaddr_un{}.sun_path) - 1;
    if (path.size() <= most) return std::nullopt;
    return fmt::format("the control socket {} would be {} bytes long, over the {} a UNIX socket's path can "
                       "have: choose a shorter spool directory",
                       path, path.size(), most);
}

result<request> parse_request(std::string_view line) {
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // Single spaces between words; anything else is a client bug worth reporting.
    std::vector<std::string_view> words;
    for (std::size_t pos = 0; pos <= line.size();) {
        std::size_t sp = line.find(' ', pos);
        if (sp == std::string_view::npos) sp = line.size();
        words.push_back(line.substr(pos, sp - pos));
        pos = sp + 1;
    }
    for (auto w : words) {
        if (w.empty()) return error{line.empty() ? "empty request" : "malformed request (extra spaces)"};
        for (char c : w)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) return error{"control character in request"};
    }
    request r;
    const std::string_view v = words[0];
    const auto want = [&](std::size_t n, std::string_view usage) -> result<void> {
        if (words.size() != n) return error{fmt::format("usage: {}", usage)};
        return {};
    };
    if (v == "list") {
        r.what = verb::list;
        if (auto u = want(2, "list json|table"); !u) return error{u.error_message()};
        auto f = parse_format(words[1]);
        if (!f) return error{f.error_message()};
        r.json = *f;
        return r;
    }
    if (v == "show") {
        r.what = verb::show;
        if (auto u = want(3, "show ID json|table"); !u) return error{u.error_message()};
        auto id = parse_id(words[1]);
        if (!id) return error{id.error_message()};
        auto f = parse_format(words[2]);
        if (!f) return error{f.error_message()};
        r.id = std::move(*id);
        r.json = *f;
        return r;
    }
    if (v == "retry") {
        r.what = verb::retry;
        if (auto u = want(2, "retry ID|--all"); !u) return error{u.error_message()};
        if (words[1] == "--all") {
            r.all = true;
            return r;
        }
        auto id = parse_id(words[1]);
        if (!id) return error{id.error_message()};
        r.id = std::move(*id);
        return r;
    }
    if (v == "delete" || v == "hold" || v == "release") {
        r.what = v == "delete" ? verb::del : v == "hold" ? verb::hold : verb::release;
        if (auto u = want(2, fmt::format("{} ID", v)); !u) return error{u.error_message()};
        auto id = parse_id(words[1]);
        if (!id) return error{id.error_message()};
        r.id = std::move(*id);
        return r;
    }
    return error{fmt::format("unknown request '{}'", printable(v.substr(0, 32)))};
}

std::string format_request(const request& r) {
    switch (r.what) {
        case verb::list: return fmt::format("list {}\n", r.json ? "json" : "table");
        case verb::show: return fmt::format("show {} {}\n", r.id, r.json ? "json" : "table");
        case verb::retry: return fmt::format("retry {}\n", r.all ? std::string("--all") : r.id);
        case verb::del:
        case verb::hold:
        case verb::release: return fmt::format("{} {}\n", verb_name(r.what), r.id);
    }
    return "list table\n";
}

// --- views -------------------------------------------------------------------------------

std::string format_time(std::int64_t unix_time) { return iso_time(unix_time); }

std::string json_string(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

std::string to_json(const std::vector<message_view>& msgs) {
    std::string out = "[";
    for (std::size_t i = 0; i < msgs.size(); ++i) {
        if (i) out += ',';
        append_message_json(out, msgs[i]);
    }
    out += ']';
    return out;
}

std::string to_json(const message_view& m) {
    std::string out;
    append_message_json(out, m);
    return out;
}

std::string to_table(const message_view& m) {
    // Like postqueue -p: "!" after the id marks a held message; the null sender shows as <>.
    std::string out = fmt::format("{:<18} {:>9}  {}  {}\n", m.id + (m.held ? "!" : ""), m.size, iso_time(m.arrived),
                                  m.sender.empty() ? std::string("<>") : printable(m.sender));
    for (const recipient_view& r : m.recipients) {
        out += fmt::format("    {:<8} attempts={} next={} {}", printable(r.status), r.attempts,
                           r.next_attempt == 0 ? std::string("-") : iso_time(r.next_attempt), printable(r.address));
        if (!r.last_reply.empty()) out += fmt::format(" ({})", printable(r.last_reply));
        out += '\n';
    }
    return out;
}

std::string to_table(const std::vector<message_view>& msgs) {
    std::string out;
    if (!msgs.empty()) out += fmt::format("{:<18} {:>9}  {:<20}  {}\n", "ID", "SIZE", "ARRIVED", "SENDER");
    for (const message_view& m : msgs) out += to_table(m);
    out += fmt::format("-- {}\n", plural(static_cast<unsigned>(msgs.size()), "message"));
    return out;
}

// --- dispatch ----------------------------------------------------------------------------

std::string handle(queue_control& q, std::string_view line) {
    auto req = parse_request(line);
    if (!req) return err(req.error_message());
    const request& r = *req;
    // The server must survive whatever the queue manager throws (bad_alloc, filesystem errors):
    // the client gets the reason, the daemon keeps running.
    try {
        switch (r.what) {
            case verb::list: {
                auto msgs = q.list();
                return ok(r.json ? to_json(msgs) + "\n" : to_table(msgs));
            }
            case verb::show: {
                auto m = q.show(r.id);
                if (!m) return err(m.error_message());
                return ok(r.json ? to_json(*m) + "\n" : to_table(*m));
            }
            case verb::retry: {
                auto n = q.retry(r.id, r.all);
                if (!n) return err(n.error_message());
                if (r.all) return ok(fmt::format("{} scheduled for immediate delivery\n", plural(*n, "message")));
                return ok(fmt::format("{}: scheduled for immediate delivery\n", r.id));
            }
            case verb::del: {
                auto d = q.remove(r.id);
                if (!d) return err(d.error_message());
                return ok(fmt::format("{}: deleted\n", r.id));
            }
            case verb::hold: {
                auto d = q.hold(r.id);
                if (!d) return err(d.error_message());
                return ok(fmt::format("{}: placed on hold\n", r.id));
            }
            case verb::release: {
                auto d = q.release(r.id);
                if (!d) return err(d.error_message());
                return ok(fmt::format("{}: released from hold\n", r.id));
            }
        }
    } catch (const std::exception& e) {
        return err(fmt::format("internal error: {}", e.what()));
    }
    return err("internal error: unhandled request");
}

// --- response framing --------------------------------------------------------------------

std::string ok_response(std::string_view payload) { return fmt::format("OK {}\n{}", payload.size(), payload); }

std::string err_response(std::string_view message) { return fmt::format("ERR {}\n", one_line(message)); }

result<response> parse_response(std::string_view bytes) {
    constexpr std::string_view ok_word = "OK ", err_word = "ERR ";
    const auto cut_short = [] { return error{"the server's answer was cut short (it may have stopped)"}; };
    const auto unexpected = [&] {
        const std::string_view first = bytes.substr(0, std::min<std::size_t>(bytes.find('\n'), 80));
        return error{fmt::format("unexpected answer from the server: {}", printable(first))};
    };
    if (bytes.empty()) return error{"the server closed the connection without answering"};
    const std::size_t nl = bytes.find('\n');
    if (bytes.starts_with(err_word)) {
        if (nl == std::string_view::npos) return cut_short();
        if (nl + 1 != bytes.size()) return unexpected();
        return response{false, std::string(bytes.substr(err_word.size(), nl - err_word.size()))};
    }
    if (bytes.starts_with("OK\n"))  // a server from before the answers stated their length
        return error{"the server answers in an older form: it is another version of postern (restart it after an "
                     "upgrade)"};
    if (!bytes.starts_with(ok_word)) {
        // "O", "ER": the beginning of an answer that stopped there.
        if (ok_word.starts_with(bytes) || err_word.starts_with(bytes)) return cut_short();
        return unexpected();
    }
    if (nl == std::string_view::npos) return cut_short();
    const std::string_view digits = bytes.substr(ok_word.size(), nl - ok_word.size());
    std::uint64_t announced = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), announced);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) return unexpected();
    const std::string_view payload = bytes.substr(nl + 1);
    if (payload.size() < announced)
        return error{fmt::format("the server's answer was cut short ({} of {} bytes; it may have stopped)",
                                 payload.size(), announced)};
    if (payload.size() > announced) return unexpected();
    return response{true, std::string(payload)};
}

}  // namespace postern::control
