// config/values.cpp - parse durations, sizes and host:port strings; check names and addresses
// Pure functions, no toml++: the loader (load.cpp) calls these and adds "FILE:LINE: key: ".
#include "config/values.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <limits>

#include "smtp/address.hpp"

namespace postern::config {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Leading decimal digits of `text` as an unsigned value. Returns the number of digits consumed
// (0 = none) and sets `overflow` when the value does not fit in 64 bits.
std::size_t parse_digits(std::string_view text, std::uint64_t& value, bool& overflow) {
    value = 0;
    overflow = false;
    std::size_t i = 0;
    for (; i < text.size() && is_digit(text[i]); ++i) {
        const auto d = static_cast<std::uint64_t>(text[i] - '0');
        if (value > (std::numeric_limits<std::uint64_t>::max() - d) / 10) overflow = true;
        if (!overflow) value = value * 10 + d;
    }
    return i;
}

}  // namespace

namespace detail {

std::string to_lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = lower(c);
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

// inet_pton reads a C string: text with a NUL ("::1\0junk", which a TOML "\u0000" can write)
// would be judged by its first part only and then stored whole (found by fuzz/config).
bool is_ipv4_literal(std::string_view text) {
    if (text.empty() || text.size() > 15 || text.find('\0') != std::string_view::npos) return false;
    const std::string s(text);
    in_addr addr{};
    return inet_pton(AF_INET, s.c_str(), &addr) == 1;
}

bool is_ipv6_literal(std::string_view text) {
    if (text.empty() || text.size() > 45 || text.find('\0') != std::string_view::npos) return false;
    const std::string s(text);
    in6_addr addr{};
    return inet_pton(AF_INET6, s.c_str(), &addr) == 1;
}

bool is_ip_literal(std::string_view text) { return is_ipv4_literal(text) || is_ipv6_literal(text); }

bool is_valid_domain(std::string_view text) {
    if (text.empty() || text.size() > 253) return false;
    std::string_view last_label;
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = text.find('.', start);
        const std::string_view label =
            text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty() || label.size() > 63) return false;  // also rejects "a..b" and "a."
        if (label.front() == '-' || label.back() == '-') return false;
        for (char c : label) {
            const bool ok = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
            if (!ok) return false;
        }
        last_label = label;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    // RFC 3696 2: a top-level domain is never all-numeric; this keeps IPv4 literals out.
    return !std::all_of(last_label.begin(), last_label.end(), is_digit);
}

result<std::string> to_a_labels(std::string_view text) {
    bool ascii = true;
    for (const char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    if (ascii) return std::string(text);
    // A leftmost-label wildcard (profile entries, peer_names) is not part of the name.
    const bool wildcard = text.size() > 2 && text.substr(0, 2) == "*.";
    auto a = smtp::domain_to_ascii(wildcard ? text.substr(2) : text);
    if (!a) return error{a.error_message()};
    return wildcard ? "*." + *a : *a;
}

result<std::uint64_t> parse_size(std::string_view text) {
    const auto bad = [&](std::string_view why) {
        return error{"invalid size '" + std::string(text) + "': " + std::string(why)};
    };
    if (text.empty()) return error{"empty size"};
    std::uint64_t value = 0;
    bool overflow = false;
    const std::size_t n = parse_digits(text, value, overflow);
    if (n == 0) return bad("expected a number of bytes, optionally followed by K, M or G");
    const std::string unit = to_lower(text.substr(n));
    std::uint64_t multiplier = 0;
    if (unit.empty() || unit == "b") multiplier = 1;
    else if (unit == "k" || unit == "kib") multiplier = std::uint64_t{1} << 10;
    else if (unit == "m" || unit == "mib") multiplier = std::uint64_t{1} << 20;
    else if (unit == "g" || unit == "gib") multiplier = std::uint64_t{1} << 30;
    else return bad("unknown unit '" + std::string(text.substr(n)) + "' (use K, M, G, KiB, MiB or GiB)");
    if (overflow || value > std::numeric_limits<std::uint64_t>::max() / multiplier) return bad("too large");
    return value * multiplier;
}

std::string format_duration(seconds value) {
    const std::int64_t v = value.count();
    if (v == 0) return "0s";
    static constexpr struct {
        std::int64_t size;
        char unit;
    } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}};
    for (const auto& u : units)
        if (v % u.size == 0) return std::to_string(v / u.size) + u.unit;
    return std::to_string(v) + 's';
}

std::string format_size(std::uint64_t bytes) {
    static constexpr struct {
        std::uint64_t size;
        const char* unit;
    } units[] = {{std::uint64_t{1} << 30, "GiB"}, {std::uint64_t{1} << 20, "MiB"}, {std::uint64_t{1} << 10, "KiB"}};
    if (bytes != 0)
        for (const auto& u : units)
            if (bytes % u.size == 0) return std::to_string(bytes / u.size) + u.unit;
    return std::to_string(bytes) + " bytes";
}

}  // namespace detail

result<seconds> parse_duration(std::string_view text) {
    const auto bad = [&](std::string_view why) {
        return error{"invalid duration '" + std::string(text) + "': " + std::string(why)};
    };
    if (text.empty()) return error{"empty duration"};
    std::uint64_t value = 0;
    bool overflow = false;
    const std::size_t n = parse_digits(text, value, overflow);
    // Also catches "-1m", "+5m", " 5m" and a unit without a number ("m").
    if (n == 0) return bad("expected a number followed by s, m, h, d or w");
    const std::string_view unit = text.substr(n);
    std::int64_t multiplier = 0;
    if (unit.empty() || unit == "s") multiplier = 1;
    else if (unit == "m") multiplier = 60;
    else if (unit == "h") multiplier = 3600;
    else if (unit == "d") multiplier = 86400;
    else if (unit == "w") multiplier = 7 * 86400;
    else return bad("unknown unit '" + std::string(unit) + "' (use s, m, h, d or w)");
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (overflow || value > max / static_cast<std::uint64_t>(multiplier)) return bad("too large");
    return seconds{static_cast<std::int64_t>(value) * multiplier};
}

result<host_port> parse_host_port(std::string_view text, std::uint16_t default_port) {
    const auto bad = [&](std::string_view why) {
        return error{"invalid address '" + std::string(text) + "': " + std::string(why)};
    };
    if (text.empty()) return error{"empty address"};

    std::string_view host;
    std::string_view port_text;
    bool has_port = false;
    bool bracketed = false;
    if (text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos) return bad("missing ']'");
        host = text.substr(1, close - 1);
        bracketed = true;
        const std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return bad("expected ':' after ']'");
            has_port = true;
            port_text = rest.substr(1);
        }
    } else {
        const auto colons = std::count(text.begin(), text.end(), ':');
        if (colons == 0) {
            host = text;
        } else if (colons == 1) {
            const std::size_t colon = text.find(':');
            host = text.substr(0, colon);
            has_port = true;
            port_text = text.substr(colon + 1);
        } else if (default_port != 0 && detail::is_ipv6_literal(text)) {
            host = text;  // a bare IPv6 address, default port
        } else {
            return bad("write an IPv6 address in brackets, as in [::1]:25");
        }
    }

    host_port out;
    if (has_port) {
        if (port_text.empty()) return bad("missing port after ':'");
        std::uint64_t port = 0;
        bool overflow = false;
        if (parse_digits(port_text, port, overflow) != port_text.size()) return bad("invalid port");
        if (overflow || port < 1 || port > 65535) return bad("port must be between 1 and 65535");
        out.port = static_cast<std::uint16_t>(port);
    } else {
        if (default_port == 0) return bad("missing port");
        out.port = default_port;
    }

    if (host.empty()) return bad("missing host");
    if (bracketed) {
        if (!detail::is_ipv6_literal(host)) return bad("only IPv6 addresses go in brackets");
        out.host = std::string(host);
    } else if (detail::is_ip_literal(host)) {
        out.host = std::string(host);
    } else if (detail::is_valid_domain(host)) {
        out.host = detail::to_lower(host);
    } else {
        return bad("'" + std::string(host) + "' is neither an IP address nor a valid host name");
    }
    return out;
}

std::string host_port::to_string() const {
    const std::string p = std::to_string(port);
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + p;
    return host + ":" + p;
}

const domain_config* config::find_domain(std::string_view domain) const {
    for (const auto& d : domains)
        if (detail::iequals(d.name, domain)) return &d;
    return nullptr;
}

}  // namespace postern::config
