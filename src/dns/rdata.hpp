// dns/rdata.hpp - decode the RDATA of MX, A and AAAA records (RFC 1035 3.3.9, 3.4.1; RFC 3596).
// Pure functions on bytes: libunbound hands each record's RDATA uncompressed, without the
// RDLENGTH prefix. Anything malformed is refused (nullopt), never guessed at.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "dns/answers.hpp"

namespace postern::dns {

// A domain name in wire format starting at `pos`; on success `pos` is just past it. Returns
// the name lower-cased, without the trailing dot ("" for the root). Refused: compression
// pointers and extended label types (RDATA from libunbound is uncompressed), truncation,
// names over 255 octets, labels with '.', '\', space, control or non-ASCII octets.
std::optional<std::string> read_wire_name(std::string_view wire, std::size_t& pos);

// MX RDATA: a 16-bit preference, then the exchange name filling the rest exactly.
std::optional<mx_record> parse_mx_rdata(std::string_view rdata);

// A (4 octets) or AAAA (16 octets) RDATA as an IP literal ("192.0.2.1", "2001:db8::1");
// `expected_size` is 4 or 16 and must match.
std::optional<std::string> parse_address_rdata(std::string_view rdata, std::size_t expected_size);

// The reverse-lookup name of an IP literal (RFC 1035 3.5, RFC 3596 2.5): "192.0.2.7" ->
// "7.2.0.192.in-addr.arpa"; IPv6 as 32 nibbles under ip6.arpa; an IPv4-mapped IPv6 address
// ("::ffff:192.0.2.7") as its IPv4 address. nullopt when `ip` is not an IP literal.
std::optional<std::string> reverse_name(std::string_view ip);

// Whether two IP literals name the same address ("::ffff:127.0.0.1" == "127.0.0.1",
// "2001:db8::1" == "2001:DB8:0::1"). False when either does not parse.
bool same_address(std::string_view a, std::string_view b);

}  // namespace postern::dns
