// tls/client.hpp - outbound TLS: client SSL_CTX set-up and the certificate check of an
// established session (SPEC §1.1: the result is logged as untrusted / trusted / verified;
// enforcing it is the policy's job, issue 4). No Asio here.
#pragma once
#include <openssl/ssl.h>

#include <string>
#include <vector>

#include "util/result.hpp"

namespace postern::tls {

// TLS 1.2 minimum, system trust store or `ca_file`, peer verification recorded but not
// enforced (the handshake never fails for certificate reasons; see peer_check).
result<void> configure_client(SSL_CTX* ctx, const std::string& ca_file);

// Server side, before the handshake: ask the client for a certificate, recording (not
// enforcing) the verification result; tls::evaluate decides after the handshake. Such a
// connection never resumes a session (no ticket issued or accepted, a session-id context of
// its own): the check needs the chain the client sends in a full handshake.
void request_client_certificate(SSL* ssl);

// Before the handshake: SNI (RFC 6066 3) for a host name (not for an IP literal).
void prepare_client(SSL* ssl, const std::string& server_name);

enum class peer_trust { untrusted, trusted, verified };
const char* to_string(peer_trust t);

struct peer_check {
    peer_trust trust = peer_trust::untrusted;
    std::string detail;  // "certificate verify failed: self-signed certificate", "name mismatch: ..."
};

// After the handshake: chain verification (OpenSSL's result: the client context's store,
// purpose ssl_server) and name matching of the leaf against `names` by tls::certificate_names
// (an IP address against iPAddress SANs only; a DNS name as RFC 6125 6.4 DNS-ID, wildcard only
// as the whole leftmost label, CN only when there is no SAN extension at all).
// untrusted = chain fails; trusted = chain ok, no name matches; verified = chain ok and a
// name matches.
peer_check check_peer(SSL* ssl, const std::vector<std::string>& names);

}  // namespace postern::tls
