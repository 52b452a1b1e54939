// runtime/daemon.hpp - `postern serve`: load the config, open the spool, bind the listeners,
// run the event loop; SIGHUP reloads (a bad file keeps the old config), SIGTERM drains.
#pragma once
#include <optional>
#include <string>

#include "config/config.hpp"

namespace postern::runtime {

// Why the TLS files of a configuration cannot be used, as serve finds out when it loads them.
struct tls_problem {
    std::string key;      // the key that names the file at fault: "tls.cert_file", "tls.key_file",
                          // "tls.ca_file"; "" when no one file is (OpenSSL refused a setting)
    std::string message;  // names the file, e.g. "private key K does not match certificate C"
};

// Builds, and throws away, the TLS contexts serve builds for `cfg` at start-up and on every
// SIGHUP: the certificate chain and key (loaded, checked to match) and the outbound trust store.
// What `check-config` runs, so that it refuses exactly what serve would refuse.
std::optional<tls_problem> check_tls(const config::config& cfg);

// Returns the process exit status: 0 after a clean stop, 2 for a bad config, 1 otherwise.
int serve(const std::string& config_path);

}  // namespace postern::runtime
