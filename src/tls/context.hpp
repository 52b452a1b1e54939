// tls/context.hpp - OpenSSL server contexts and the facts of an established session.
// No Asio here: server/ wraps the SSL_CTX configured by these functions.
#pragma once
#include <openssl/ssl.h>

#include <string>

#include "smtp/server_session.hpp"
#include "util/result.hpp"

namespace postern::tls {

// Configure `ctx` for inbound STARTTLS: certificate chain and key (checked to match),
// TLS 1.2 minimum, forward-secret AEAD ciphers only for TLS 1.2, no renegotiation,
// resumption by session tickets only (one per handshake; no server-side session cache), except
// on connections that ask for a client certificate (tls::request_client_certificate).
result<void> configure_server(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file);

// What to tell the admin about the dates of ctx's certificate (loaded from cert_file): expired,
// not yet valid, or expiring within 30 days; "" when none of these. Served anyway.
std::string certificate_date_warning(SSL_CTX* ctx, const std::string& cert_file);

// Version, cipher and strength of an established session (for logs and the Received header).
smtp::tls_facts session_facts(const SSL* ssl);

// The system trust store into `store`: the default CA file and hashed CA directory
// (SSL_CERT_FILE / SSL_CERT_DIR when set), looked up by subject hash. Not
// X509_STORE_set_default_paths: in OpenSSL 3.0 that also adds an OSSL_STORE lookup that
// lists the whole certificate directory (getdents64 over ~300 entries) on every lookup
// that misses, i.e. on every handshake with a certificate not issued by a system CA
// (issue 6: ~4% of the server's CPU per inbound STARTTLS). false when neither loads.
bool load_system_trust(X509_STORE* store);

// The OpenSSL error queue as one line (and clears it).
std::string last_error();

}  // namespace postern::tls
