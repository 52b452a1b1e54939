// queue/envelope.cpp - format and parse the queue file header (format documented in envelope.hpp);
// the arrival time to the millisecond.
#include "queue/envelope.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace postern::queue {
namespace {

constexpr std::string_view magic = "POSTERN-QUEUE 1";

bool clean(std::string_view v) { return v.find_first_of("\r\n") == std::string_view::npos; }

template <class T>
bool to_int(std::string_view s, T& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

}  // namespace

std::string format_header(const envelope& env) {
    std::string h;
    h.reserve(256 + env.recipients.size() * 40);
    h += magic;
    h += '\n';
    h += fmt::format("id {}\narrived {}\nsender {}\n", env.id, env.arrived, env.sender);
    for (const auto& r : env.recipients) {
        h += "rcpt ";
        h += r;
        h += '\n';
    }
    h += fmt::format("body {}\nsmtputf8 {}\nclient {}\nhelo {}\n", env.eight_bit ? "8BITMIME" : "7BIT",
                     env.smtputf8 ? 1 : 0, env.client_ip, env.helo);
    if (!env.tls.empty()) h += fmt::format("tls {}\n", env.tls);
    h += fmt::format("size {}\n\n", env.size);
    return h;
}

result<envelope> parse_header(std::string_view data, std::size_t& header_len) {
    envelope env;
    std::size_t pos = 0;
    bool first = true, have_id = false, have_size = false, have_arrived = false;
    for (;;) {
        std::size_t nl = data.find('\n', pos);
        if (nl == std::string_view::npos) return error{"truncated header"};
        std::string_view line = data.substr(pos, nl - pos);
        pos = nl + 1;
        if (first) {
            if (line != magic) return error{"bad magic (not a Postern queue file, or another version)"};
            first = false;
            continue;
        }
        if (line.empty()) break;
        if (!clean(line)) return error{"CR in header line"};
        std::size_t sp = line.find(' ');
        std::string_view key = line.substr(0, sp);
        std::string_view val = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
        if (key == "id") {
            if (val.empty()) return error{"empty id"};
            env.id = val;
            have_id = true;
        } else if (key == "arrived") {
            if (!to_int(val, env.arrived)) return error{"bad arrived"};
            have_arrived = true;
        } else if (key == "sender") {
            env.sender = val;
        } else if (key == "rcpt") {
            if (val.empty()) return error{"empty rcpt"};
            env.recipients.emplace_back(val);
        } else if (key == "body") {
            if (val == "8BITMIME") env.eight_bit = true;
            else if (val != "7BIT") return error{"bad body"};
        } else if (key == "smtputf8") {
            if (val != "0" && val != "1") return error{"bad smtputf8"};
            env.smtputf8 = val == "1";
        } else if (key == "client") {
            env.client_ip = val;
        } else if (key == "helo") {
            env.helo = val;
        } else if (key == "tls") {
            env.tls = val;
        } else if (key == "size") {
            if (!to_int(val, env.size)) return error{"bad size"};
            have_size = true;
        } else {
            return error{fmt::format("unknown record '{}'", key)};
        }
    }
    if (!have_id || !have_size || !have_arrived) return error{"missing id, arrived or size record"};
    if (env.recipients.empty()) return error{"no recipients"};
    header_len = pos;
    return env;
}

std::int64_t arrival_ms(const envelope& env) {
    // A damaged header may hold any int64 here: kept clear of overflow (year 9999 and before 1970
    // are no arrival times either).
    constexpr std::int64_t latest = 253402300799;
    const std::int64_t whole = std::clamp<std::int64_t>(env.arrived, 0, latest) * 1000;
    if (env.id.size() < 13) return whole;
    std::uint64_t us = 0;
    for (std::size_t i = 0; i < 13; ++i) {
        const char c = env.id[i];
        const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return whole;
        us = us * 16 + static_cast<std::uint64_t>(d);
    }
    const auto ms = static_cast<std::int64_t>(us / 1000);
    return ms >= whole && ms < whole + 2000 ? ms : whole;
}

double delay_seconds(const envelope& env, std::int64_t now_ms) {
    return static_cast<double>(std::max<std::int64_t>(0, now_ms - arrival_ms(env))) / 1000.0;
}

}  // namespace postern::queue
