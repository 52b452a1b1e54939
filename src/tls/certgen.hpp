// tls/certgen.hpp - make a self-signed certificate with OpenSSL's API (for `postern init`).
#pragma once
#include <string>

#include "util/result.hpp"

namespace postern::tls {

// ECDSA P-256 key and a self-signed X.509 v3 certificate for `hostname` (CN and SAN dNSName,
// plus "localhost" and 127.0.0.1 when hostname is localhost), valid for `days`. Both files are
// created new (O_EXCL): an existing file at either path is an error, never overwritten. The
// key is 0600, the certificate 0644; on failure neither file is left behind.
result<void> write_self_signed(const std::string& cert_path, const std::string& key_path,
                               const std::string& hostname, int days);

}  // namespace postern::tls
