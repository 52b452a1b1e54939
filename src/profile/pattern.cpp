// profile/pattern.cpp - parse and match profile entries: addresses, CIDR blocks, wildcards
// Pure: inet_pton/inet_ntop only convert text. Names are checked with the loader's LDH rule
// (config::detail::is_valid_domain) so a profile accepts exactly the names the rest of the
// configuration does.
#include "profile/pattern.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <limits>

#include "config/values.hpp"

namespace postern::profile {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "0".."255" without leading zeros, as inet_pton(AF_INET) accepts an octet.
std::optional<std::uint8_t> parse_octet(std::string_view s) {
    if (s.empty() || s.size() > 3 || !std::all_of(s.begin(), s.end(), is_digit)) return std::nullopt;
    if (s.size() > 1 && s.front() == '0') return std::nullopt;
    unsigned v = 0;
    for (char c : s) v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > 255) return std::nullopt;
    return static_cast<std::uint8_t>(v);
}

// "0".."max" without leading zeros.
std::optional<unsigned> parse_prefix_len(std::string_view s, unsigned max) {
    if (s.empty() || s.size() > 3 || !std::all_of(s.begin(), s.end(), is_digit)) return std::nullopt;
    if (s.size() > 1 && s.front() == '0') return std::nullopt;
    unsigned v = 0;
    for (char c : s) v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > max) return std::nullopt;
    return v;
}

// ::ffff:a.b.c.d (RFC 4291 2.5.5.2)
bool is_v4_mapped(const ip_address& a) {
    if (!a.v6) return false;
    for (int i = 0; i < 10; ++i)
        if (a.bytes[i] != 0) return false;
    return a.bytes[10] == 0xff && a.bytes[11] == 0xff;
}

ip_address unmap(const ip_address& a) {
    ip_address v4;
    std::copy(a.bytes.begin() + 12, a.bytes.end(), v4.bytes.begin());
    return v4;
}

// Zero the bits after the first `len`.
ip_address masked(ip_address a, unsigned len) {
    for (unsigned i = 0; i < 16; ++i) {
        const unsigned lo = i * 8;
        if (lo >= len) a.bytes[i] = 0;
        else if (lo + 8 > len) a.bytes[i] &= static_cast<std::uint8_t>(0xff00u >> (len - lo));
    }
    return a;
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

result<pattern> name_pattern(std::string_view text, std::string_view what) {
    pattern p;
    if (text.size() > 2 && text.substr(0, 2) == "*.") {
        const std::string_view rest = text.substr(2);
        if (!config::detail::is_valid_domain(rest))
            return error{quoted(text) + " is not a valid " + std::string(what)};
        p.kind = pattern_kind::wildcard_name;
        p.suffix = config::detail::to_lower(rest);
        p.text = "*." + p.suffix;
    } else {
        if (text.find('*') != std::string_view::npos)
            return error{quoted(text) + ": a wildcard is allowed only as the whole leftmost label, as in *." +
                         "partner.test"};
        if (!config::detail::is_valid_domain(text)) return error{quoted(text) + " is not a valid " + std::string(what)};
        p.kind = pattern_kind::name;
        p.suffix = config::detail::to_lower(text);
        p.text = p.suffix;
    }
    p.key = p.text;
    return p;
}

}  // namespace

std::optional<ip_address> parse_ip(std::string_view text) {
    if (const auto pct = text.find('%'); pct != std::string_view::npos) text = text.substr(0, pct);
    // inet_pton reads a C string: "10.0.0.1\0junk" (a TOML "\u0000") would be judged, and
    // accepted, by what precedes the NUL (config::detail::is_ipv4_literal guards the same).
    if (text.empty() || text.size() > 45 || text.find('\0') != std::string_view::npos) return std::nullopt;
    const std::string s(text);
    ip_address a;
    if (s.find(':') == std::string::npos) {
        if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
        return a;
    }
    a.v6 = true;
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
    if (is_v4_mapped(a)) return unmap(a);
    return a;
}

std::string to_string(const ip_address& a) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (!inet_ntop(a.v6 ? AF_INET6 : AF_INET, a.bytes.data(), buf, sizeof buf)) return "?";
    return buf;
}

bool prefix_contains(const ip_address& network, unsigned prefix_len, const ip_address& a) {
    if (network.v6 != a.v6 || prefix_len > a.bits()) return false;
    return masked(a, prefix_len) == masked(network, prefix_len);
}

result<pattern> parse_host_pattern(std::string_view text) {
    if (text.empty()) return error{"empty entry"};
    if (text.find('\0') != std::string_view::npos) return error{quoted(text) + " contains a NUL character"};
    if (text == "*") return pattern{pattern_kind::any, "*", "*", {}, 0, {}};
    if (text.find('%') != std::string_view::npos) return error{quoted(text) + ": an address with a zone is not allowed"};

    // Trailing-wildcard IPv4: "10.*", "10.1.*", "10.1.2.*".
    if (text.size() > 2 && text.substr(text.size() - 2) == ".*" && is_digit(text.front())) {
        const std::string_view head = text.substr(0, text.size() - 2);
        ip_address a;
        unsigned octets = 0;
        bool ok = true;
        std::size_t start = 0;
        while (ok) {
            const std::size_t dot = head.find('.', start);
            const auto octet = parse_octet(head.substr(start, dot == std::string_view::npos ? dot : dot - start));
            if (!octet || octets == 3) ok = false;
            else a.bytes[octets++] = *octet;
            if (dot == std::string_view::npos) break;
            start = dot + 1;
        }
        if (!ok)
            return error{quoted(text) + " is not a wildcard IPv4 address: write 1 to 3 whole octets and one " +
                         "trailing '*', as in 10.1.*"};
        pattern p;
        p.kind = pattern_kind::prefix;
        p.text = std::string(text);
        p.address = a;
        p.prefix_len = octets * 8;
        p.key = to_string(a) + "/" + std::to_string(p.prefix_len);
        return p;
    }

    // CIDR block.
    if (const auto slash = text.find('/'); slash != std::string_view::npos) {
        auto a = parse_ip(text.substr(0, slash));
        const bool mapped = a && !a->v6 && text.substr(0, slash).find(':') != std::string_view::npos;
        if (!a) return error{quoted(text) + " is not a CIDR block: " + quoted(text.substr(0, slash)) + " is not an IP address"};
        const unsigned max = (a->v6 || mapped) ? 128 : 32;
        auto len = parse_prefix_len(text.substr(slash + 1), max);
        if (!len)
            return error{quoted(text) + " is not a CIDR block: the prefix length must be 0 to " + std::to_string(max)};
        if (mapped) {
            if (*len < 96)
                return error{quoted(text) + ": an IPv4-mapped block needs a prefix length of 96 or more " +
                             "(better: write the IPv4 block)"};
            *len -= 96;
        }
        if (masked(*a, *len) != *a)
            return error{quoted(text) + " has host bits set: write " + to_string(masked(*a, *len)) + "/" +
                         std::to_string(*len)};
        pattern p;
        p.kind = pattern_kind::prefix;
        p.address = *a;
        p.prefix_len = *len;
        p.text = to_string(*a) + "/" + std::to_string(*len);
        p.key = *len == a->bits() ? to_string(*a) : p.text;
        return p;
    }

    if (auto a = parse_ip(text)) {
        pattern p;
        p.kind = pattern_kind::address;
        p.address = *a;
        p.prefix_len = a->bits();
        p.text = p.key = to_string(*a);
        return p;
    }
    // Looks numeric but is no address (or a zone was given): say so rather than "bad name".
    if (text.find(':') != std::string_view::npos ||
        (is_digit(text.back()) && std::all_of(text.begin(), text.end(), [](char c) { return is_digit(c) || c == '.'; })))
        return error{quoted(text) + " is not a valid IP address"};
    if (text.find('*') != std::string_view::npos && !(text.size() > 2 && text.substr(0, 2) == "*."))
        return error{quoted(text) + ": '*' is allowed alone, as the whole leftmost label of a name (*.partner.test), " +
                     "or as the last octet of an IPv4 prefix (10.1.*)"};
    return name_pattern(text, "host name");
}

result<pattern> parse_domain_pattern(std::string_view text) {
    if (text.empty()) return error{"empty entry"};
    if (text.find('\0') != std::string_view::npos) return error{quoted(text) + " contains a NUL character"};
    if (text == "*") return error{"'*' is not a domain: a profile for every peer takes hosts = [\"*\"]"};
    return name_pattern(text, "domain name");
}

std::string normalise_name(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    return config::detail::to_lower(name);
}

bool wildcard_matches(std::string_view suffix, std::string_view name) {
    // At least one label in front: "x.partner.test", never ".partner.test" or "partner.test".
    return name.size() >= suffix.size() + 2 && name.substr(name.size() - suffix.size()) == suffix &&
           name[name.size() - suffix.size() - 1] == '.';
}

std::size_t name_match_rank(const pattern& p, std::string_view name) {
    if (p.kind == pattern_kind::name) return p.suffix == name ? std::numeric_limits<std::size_t>::max() : 0;
    if (p.kind == pattern_kind::wildcard_name) return wildcard_matches(p.suffix, name) ? p.suffix.size() + 1 : 0;
    return 0;
}

}  // namespace postern::profile
