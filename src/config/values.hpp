// config/values.hpp - value parsers and checks shared by the loader (internal to src/config)
// Pure functions: no toml++, no I/O. The public ones (parse_duration, parse_host_port) are
// declared in config.hpp; these are the helpers behind them, exposed here for the tests.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace postern::config::detail {

// ASCII lower-case copy.
std::string to_lower(std::string_view text);
bool iequals(std::string_view a, std::string_view b);

bool is_ipv4_literal(std::string_view text);  // dotted quad, as inet_pton(AF_INET) accepts
bool is_ipv6_literal(std::string_view text);  // without brackets
bool is_ip_literal(std::string_view text);

// A host name in LDH form (RFC 1035 2.3.1, RFC 1123 2.1): labels of 1..63 letters, digits and
// hyphens, not starting or ending with a hyphen, at most 253 characters, no trailing dot.
// A name whose last label is all digits is rejected, so "1.2.3.4" is never a name (RFC 3696 2).
// Non-ASCII (U-labels) are rejected: the loader converts them first (to_a_labels).
bool is_valid_domain(std::string_view text);

// A name from the file in the form every matcher compares: U-labels become A-labels
// ("b\u00fccher.test" -> "xn--bcher-kva.test", "*.b\u00fccher.test" -> "*.xn--bcher-kva.test";
// smtp::domain_to_ascii, RFC 5890), so the file may write either. ASCII text is returned as
// written, for the usual checks to judge. Error (libidn2's reason): non-ASCII text that has
// no A-label form.
result<std::string> to_a_labels(std::string_view text);

// "50M" -> 52428800. A bare number is bytes; units (case-insensitive) B, K, KiB, M, MiB, G,
// GiB are all powers of 1024. Errors: empty, bad unit, overflow.
result<std::uint64_t> parse_size(std::string_view text);

// 300 s -> "5m": the largest of d, h, m, s that divides the value exactly.
std::string format_duration(seconds value);
// 52428800 -> "50MiB": the largest of GiB, MiB, KiB that divides exactly, else bytes.
std::string format_size(std::uint64_t bytes);

}  // namespace postern::config::detail
