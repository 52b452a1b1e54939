// config/public_suffix.hpp - whether a domain is a public suffix ("com", "co.uk", "github.io"):
// a name under which anyone can register a name of their own; and whether one lies below it
// ("amazonaws.com" holds "*.compute-1.amazonaws.com", whose names every cloud customer gets).
// The config check uses both to refuse relay = "any" for a host wildcard such as "*.co.uk" or
// "*.amazonaws.com" (relay by name follows forward-confirmed reverse DNS, which anyone can set
// up under a public suffix). Backed by libpsl (the Public Suffix List of Debian's
// `publicsuffix` package when it is newer than libpsl's built-in copy) and, for the rules below
// a name, which libpsl cannot list, by that package's list file.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace postern::config {

// `domain`: lower-case A-labels without a trailing dot. True for the list's ICANN and private
// entries and for a single label the list does not know (the implicit "*" rule: "test").
bool is_public_suffix(std::string_view domain);

// A rule of the list strictly below `domain` (same form), as the list writes it in A-labels
// ("*.compute-1.amazonaws.com" for "amazonaws.com"), or nothing. Reads `list_file` once per
// path (the default: Debian's copy); nothing when that file cannot be read.
inline constexpr std::string_view default_suffix_list = "/usr/share/publicsuffix/public_suffix_list.dat";
std::optional<std::string> public_suffix_under(std::string_view domain,
                                               std::string_view list_file = default_suffix_list);

}  // namespace postern::config
