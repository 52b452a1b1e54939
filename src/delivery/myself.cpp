// delivery/myself.cpp - the "MX host is myself" check of RFC 5321 5.1 (see myself.hpp).
#include "delivery/myself.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <optional>

namespace postern::delivery {
namespace {

std::string canonical_name(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

// An address as 16 bytes (IPv4 as ::ffff:a.b.c.d), so textual forms compare equal.
std::optional<in6_addr> parse_ip(std::string_view s) {
    const std::string str(s);
    in6_addr a6{};
    if (::inet_pton(AF_INET6, str.c_str(), &a6) == 1) return a6;
    in_addr a4{};
    if (::inet_pton(AF_INET, str.c_str(), &a4) != 1) return std::nullopt;
    in6_addr m{};
    m.s6_addr[10] = m.s6_addr[11] = 0xff;
    std::memcpy(&m.s6_addr[12], &a4, 4);
    return m;
}

bool same(const in6_addr& a, const in6_addr& b) { return std::memcmp(&a, &b, sizeof a) == 0; }
bool is_v4_any(const in6_addr& a) { return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 0 && a.s6_addr[13] == 0 &&
                                           a.s6_addr[14] == 0 && a.s6_addr[15] == 0; }
bool is_wildcard(const in6_addr& a) { return IN6_IS_ADDR_UNSPECIFIED(&a) || is_v4_any(a); }
bool is_v4_loopback(const in6_addr& a) { return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127; }

}  // namespace

self_identity identity_of(const config::config& cfg) {
    return self_identity{canonical_name(cfg.hostname), cfg.server.listen, {}};
}

bool is_my_name(const self_identity& me, std::string_view host) {
    return !me.hostname.empty() && canonical_name(host) == canonical_name(me.hostname);
}

bool listens_on_port(const self_identity& me, std::uint16_t port) {
    return std::any_of(me.listen.begin(), me.listen.end(), [&](const config::host_port& l) { return l.port == port; });
}

bool listens_on_wildcard(const self_identity& me, std::uint16_t port) {
    return std::any_of(me.listen.begin(), me.listen.end(), [&](const config::host_port& l) {
        const auto a = parse_ip(l.host);
        return l.port == port && a && is_wildcard(*a);
    });
}

bool is_my_address(const self_identity& me, std::string_view ip, std::uint16_t port) {
    auto a = parse_ip(ip);
    if (!a) return false;
    // A connection to the unspecified address reaches this host's loopback (Linux: 0.0.0.0 is
    // 127.0.0.1, :: is ::1): an MX host resolving to it is as much us as one at 127.0.0.1
    // (found by review: an MX at 0.0.0.0 looped until the hop limit).
    if (is_v4_any(*a)) {
        a->s6_addr[12] = 127;
        a->s6_addr[15] = 1;
    } else if (IN6_IS_ADDR_UNSPECIFIED(&*a)) {
        a->s6_addr[15] = 1;
    }
    for (const auto& l : me.listen) {
        if (l.port != port) continue;
        const auto la = parse_ip(l.host);
        if (!la) continue;
        if (same(*la, *a)) return true;
        if (!is_wildcard(*la)) continue;
        // A wildcard listener takes every local address; 0.0.0.0 all of 127.0.0.0/8 too.
        if (is_v4_any(*la) && is_v4_loopback(*a)) return true;
        if (IN6_IS_ADDR_UNSPECIFIED(&*la) && IN6_IS_ADDR_LOOPBACK(&*a)) return true;
        if (is_v4_any(*la) && !IN6_IS_ADDR_V4MAPPED(&*a)) continue;  // 0.0.0.0: IPv4 only
        // [::] is bound IPv6-only (runtime/daemon.cpp sets v6_only): it never receives a
        // connection to an IPv4 address, mapped or not.
        if (!is_v4_any(*la) && IN6_IS_ADDR_V4MAPPED(&*a)) continue;
        for (const auto& local : me.local_addresses)
            if (const auto x = parse_ip(local); x && same(*x, *a)) return true;
    }
    return false;
}

bool discard_self_and_worse(std::vector<target_host>& hosts, const std::function<bool(const target_host&)>& is_self) {
    const auto me = std::find_if(hosts.begin(), hosts.end(), is_self);
    if (me == hosts.end()) return false;
    const std::uint16_t mine = me->preference;
    std::erase_if(hosts, [&](const target_host& h) { return h.preference >= mine; });
    return true;
}

}  // namespace postern::delivery
