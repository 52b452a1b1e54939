// config/public_suffix.hpp - whether a domain is a public suffix ("com", "co.uk", "github.io"):
// a name under which anyone can register a name of their own. The config check uses it to refuse
// relay = "any" for a host wildcard such as "*.co.uk" (relay by name follows forward-confirmed
// reverse DNS, which anyone can set up under a public suffix). Backed by libpsl: the Public
// Suffix List of Debian's `publicsuffix` package when it is newer than libpsl's built-in copy.
#pragma once
#include <string_view>

namespace postern::config {

// `domain`: lower-case A-labels without a trailing dot. True for the list's ICANN and private
// entries and for a single label the list does not know (the implicit "*" rule: "test").
bool is_public_suffix(std::string_view domain);

}  // namespace postern::config
