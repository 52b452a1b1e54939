// cli/init.hpp - `postern init DIR`: a working default installation (SPEC §4).
#pragma once
#include <string>

namespace postern::cli {

// Writes DIR/postern.toml (refuses to overwrite), DIR/var/tls/{cert,key}.pem (self-signed,
// made with OpenSSL's API), DIR/var/spool and DIR/var/mail/localhost. Returns an exit status.
int init(const std::string& dir);

}  // namespace postern::cli
