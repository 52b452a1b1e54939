// cli/init.hpp - `postern init DIR`: a working default installation (SPEC §4).
#pragma once
#include <string>

namespace postern::cli {

// Writes DIR/postern.toml (refuses to overwrite), DIR/var/tls/{cert,key}.pem (self-signed,
// made with OpenSSL's API; an existing pair is kept, and one of the two without the other is
// refused: neither is ever overwritten), DIR/var/spool and DIR/var/mail/localhost. Returns an
// exit status (1 for every refusal).
int init(const std::string& dir);

}  // namespace postern::cli
