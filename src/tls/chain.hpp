// tls/chain.hpp - a readable summary of the certificate chain a peer presented, for
// `postern tls-policy --probe` (like posttls-finger's chain listing). Reports only: nothing
// here judges a certificate; tls/verify.cpp does. No Asio here.
#pragma once
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

namespace postern::tls {

struct certificate_summary {
    int depth = 0;                       // 0 = the leaf, as sent by the peer
    std::string subject, issuer;         // RFC 2253 one-line form, "CN=mx.partner.test,O=Partner"
    std::string not_before, not_after;   // "2026-11-28T12:00:00Z" (UTC)
    std::vector<std::string> dns_names;  // SAN dNSNames, as written in the certificate
    std::vector<std::string> ip_addresses;  // SAN iPAddresses, "192.0.2.1" / "2001:db8::1"
    std::string sha256;                  // lower-case hex of the DER certificate ("sha256:" pin)
    std::string spki_sha256;             // of its SubjectPublicKeyInfo ("spki-sha256:" pin)
};

certificate_summary summarize_certificate(X509* cert, int depth);

// The SAN dNSNames of `cert`, byte for byte (an embedded NUL kept: callers that match names
// must drop such entries, tls/verify.cpp does); empty when it has none.
std::vector<std::string> san_dns_names(X509* cert);

// The SAN iPAddresses of `cert` in text form (inet_ntop); an entry of another length than 4 or
// 16 bytes is shown as "?"; empty when it has none.
std::vector<std::string> san_ip_addresses(X509* cert);

// The chain the peer sent, leaf first. On the client side OpenSSL's peer chain holds the leaf
// and the intermediates; on the server side it lacks the leaf, which is then put first.
std::vector<certificate_summary> summarize_peer_chain(SSL* ssl);

}  // namespace postern::tls
