// profile/pattern.hpp - parse and match the entries of a [[profile]]: hosts and domain lists
// Pure functions, no I/O. The config loader uses parse_* to validate and normalise what the
// file says (and to find the same entry written twice); profile/match.cpp uses the parsed
// patterns to select a profile. SPEC §1.4.
//
// Host entries (`hosts`):
//   "192.0.2.7", "2001:db8::7"        an address (exact match)
//   "192.0.2.0/24", "2001:db8::/32"   a CIDR block; host bits must be zero
//   "10.1.*", "10.*", "10.1.2.*"      a trailing-wildcard IPv4: whole octets, one '*' at the end;
//                                     the same as 10.1.0.0/16, 10.0.0.0/8, 10.1.2.0/24
//   "mx.partner.test"                 a host name (exact match, case-insensitive)
//   "*.partner.test"                  a wildcard host name: one or more labels in front of
//                                     partner.test (a.partner.test, a.b.partner.test), never
//                                     partner.test itself. Like Postfix's ".partner.test"; the
//                                     one-label rule of RFC 6125 is for certificates, not this.
//   "*"                               what no other profile matches
// IPv4-mapped IPv6 ("::ffff:192.0.2.7", "::ffff:192.0.2.0/120") is the IPv4 address or block
// it maps, both in entries and in the facts matched against them, so a dual-stack listener
// that reports "::ffff:192.0.2.7" matches "192.0.2.7".
// Domain entries (`sender_domains`, `recipient_domains`): "partner.test" or "*.partner.test",
// with the same wildcard rule as host names.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace postern::profile {

// An IPv4 or IPv6 address in network byte order (IPv4 in the first 4 bytes).
struct ip_address {
    bool v6 = false;
    std::array<std::uint8_t, 16> bytes{};
    unsigned bits() const { return v6 ? 128 : 32; }
    friend bool operator==(const ip_address&, const ip_address&) = default;
};

// "192.0.2.7", "2001:DB8::7", "::ffff:192.0.2.7" (-> IPv4). No brackets, no port. A zone
// ("fe80::1%eth0") is ignored. nullopt when not an address (text with a NUL never is one).
std::optional<ip_address> parse_ip(std::string_view text);
// Canonical text: dotted quad, or RFC 5952 (lower-case, "::" for the longest zero run).
std::string to_string(const ip_address& a);
// Whether the first `prefix_len` bits of `a` and `network` agree (same family only).
bool prefix_contains(const ip_address& network, unsigned prefix_len, const ip_address& a);

enum class pattern_kind {
    any,            // "*"
    address,        // exact IP
    prefix,         // CIDR block or trailing-wildcard IPv4
    name,           // exact name
    wildcard_name,  // "*.suffix"
};

struct pattern {
    pattern_kind kind = pattern_kind::any;
    std::string text;  // normalised as written: lower-case names, canonical IP text ("10.1.*" stays)
    std::string key;   // identical keys <=> the same set of peers: "10.1.*" and "10.1.0.0/16"
                       // share "10.1.0.0/16"; "192.0.2.7/32" and "192.0.2.7" share "192.0.2.7"
    ip_address address;       // address, prefix
    unsigned prefix_len = 0;  // prefix (address: the full length)
    std::string suffix;       // wildcard_name: "partner.test"; name: the name
};

// A `hosts` entry. Error text, e.g. "'10.1.2.300' is not an IP address, CIDR block, ...";
// an entry with a NUL anywhere is refused ("... contains a NUL character"), as in every kind.
result<pattern> parse_host_pattern(std::string_view text);
// A `sender_domains` / `recipient_domains` entry: kind name or wildcard_name (no NUL either).
result<pattern> parse_domain_pattern(std::string_view text);

// Lower-case, one trailing dot removed: the form facts are compared in.
std::string normalise_name(std::string_view name);
// `name` (normalised) is one or more labels followed by "." + `suffix`.
bool wildcard_matches(std::string_view suffix, std::string_view name);
// How well `p` (a name or wildcard_name pattern) matches the normalised `name`: 0 = not at
// all; an exact match beats every wildcard, and a longer wildcard suffix beats a shorter one.
std::size_t name_match_rank(const pattern& p, std::string_view name);

}  // namespace postern::profile
