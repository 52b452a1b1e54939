// cli/check_config.hpp - `postern check-config`: validate the configuration as serve would.
#pragma once
#include <string>

namespace postern::cli {

// Loads `path` (config::load: every key, and that the files it names can be read), then loads
// the TLS certificate, key and trust stores (tls.ca_file, each profile's ca_file) exactly as
// serve does (runtime::check_tls), so that a file serve would refuse - no certificate in it, a
// key of another certificate - is refused here too. Errors on stderr, every one found, one per
// line in line order, as "FILE:LINE: message" (for a TLS file, the line of the key that names
// it; "FILE: tls: message" when there is none), exit 2; warnings on stderr, then "FILE: OK" on
// stdout, exit 0.
int check_config(const std::string& path);

}  // namespace postern::cli
