// tls/verify.hpp - does an established TLS session meet the connection profile's requirements?
// The one check of a session against profile::resolved_tls_policy (SPEC §1.2-1.3): protocol
// version, cipher strength, certificate chain, names (RFC 6125 6.4), pins; outbound (we are
// the client) and inbound (we are the server, the peer's client certificate) alike.
// profile/policy.cpp decides the level; the sessions only act on the verdict (defer with 4.7.5,
// or refuse with 554 5.7.0). No Asio here. RFC 3207, RFC 5280 6, RFC 6125, RFC 7672.
#pragma once
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>
#include <string_view>
#include <vector>

#include "profile/policy.hpp"
#include "tls/client.hpp"

namespace postern::tls {

struct tls_verdict {
    bool ok = false;
    std::string dsn;     // "4.7.5" when !ok, "" when ok
    // The first unmet requirement when !ok, e.g. "certificate verification failed: self-signed
    // certificate", "certificate name mismatch: expected mx.partner.test or partner.test",
    // "TLS version TLSv1.2 below the required 1.3", "cipher strength 112 bits below the
    // required 128", "certificate fingerprint does not match any pin", "no client certificate
    // presented", "DANE is not implemented yet". "" when ok.
    std::string reason;
    // What the certificate check found, whatever the level (for the one log line per session):
    // "matched mx.partner.test", "pin sha256:...", "certificate verification failed: ...".
    std::string detail;
    // untrusted = no certificate or the chain fails; trusted = chain ok; verified = chain ok and
    // a name in policy.names matches, or a pin matches. Computed at every level, enforced only
    // by the level.
    peer_trust trust = peer_trust::untrusted;
    std::string version;  // "TLSv1.3"
    std::string cipher;   // "TLS_AES_256_GCM_SHA384"
    int bits = 0;         // symmetric strength of the negotiated cipher
};

// Loads `ca_file` (a profile's) into the trust-store cache that evaluate() verifies against.
// Called at start-up and at a reload, before privileges are dropped: the sessions then reuse
// this store (thread-safe, shared by reference count) while the file keeps its inode, size and
// mtime, so a CA file only root can read still serves after the drop to server.user. A file
// changed since is read again, by the user the server then runs as.
result<void> load_trust_store(const std::string& ca_file);

// Evaluate an ESTABLISHED session (client or server side) against `p`. Rules:
//  - none, may: nothing is enforced (ok); the facts and the trust are still reported.
//  - requires_tls: SSL_version >= p.min_version and cipher bits >= p.min_cipher_bits.
//  - requires_peer_certificate: the peer presented a certificate (inbound: the client's).
//  - requires_chain (ca, ca_name): the chain verifies and is in date. Against p.ca_file when
//    set; otherwise, as a client, OpenSSL's handshake-time result (the client context uses
//    tls.ca_file or the system store), and as a server against the system store (the server
//    context is shared by every profile, so its handshake-time result means nothing for this
//    policy). Outbound (a server certificate) with the TLS server purpose whichever the store
//    ("ssl_server", as OpenSSL's handshake): a leaf whose EKU lacks serverAuth, or an
//    intermediate restricted to other uses, is refused. Inbound (a client certificate)
//    purpose-independent: no clientAuth (or serverAuth) EKU is required.
//  - requires_name_match (ca_name): the leaf carries one of p.names (see certificate_names).
//  - uses_pins (fingerprint): the leaf certificate's SHA-256 ("sha256:HEX") or its public
//    key's ("spki-sha256:HEX") equals one of p.fingerprints; the chain is not checked.
//  - dane: not ok, "DANE is not implemented yet" (never silently weaker).
tls_verdict evaluate(SSL* ssl, const profile::resolved_tls_policy& p, bool is_server_side);

// The trust of an established session, already judged `judged` for some policy, for the names
// of `p` instead: a parked session reused for another recipient domain, or one transaction
// carrying several (the log must say what a fresh connection for that domain would). The chain
// and a pin do not depend on the names: untrusted stays untrusted, and at fingerprint the pin's
// verdict stays; a trusted chain is verified when the leaf carries one of p.names.
peer_trust trust_for_names(SSL* ssl, peer_trust judged, const profile::resolved_tls_policy& p);

// Does `cert` carry the reference identity `reference` (a profile's peer name, the MX host,
// the recipient domain)?
//  - An IP address ("10.0.0.5", "2001:db8::5", or the literal "[10.0.0.5]" / "[IPv6:...]"):
//    an iPAddress SAN equal to it (RFC 5280 4.2.1.6); a dNSName or CN "10.0.0.5" never counts.
//  - A DNS name: RFC 6125 6.4 DNS-ID matching, case-insensitive, a trailing dot ignored. The
//    certificate's identifiers are its SAN dNSNames; its subject CNs only when it has no SAN
//    extension at all (SPEC §1.3: a SAN of iPAddress entries only leaves no DNS identifier). A
//    certificate wildcard counts only as the complete leftmost label and matches exactly one
//    label ("*.test" never matches "a.b.test"; "f*.x.test" never matches). A reference
//    "*.partner.test" means "any single-label host under partner.test": it matches an
//    identifier "mx.partner.test" or "*.partner.test", not "a.mx.partner.test".
//  - Anything else (a leading ".", an all-digit last label, another wildcard form) never matches.
bool certificate_names(X509* cert, std::string_view reference);

// Lower-case hex SHA-256 of the DER certificate, and of its DER SubjectPublicKeyInfo (the
// forms pinned as "sha256:HEX" and "spki-sha256:HEX"); "" for a null certificate.
std::string fingerprint_sha256(X509* cert);
std::string spki_sha256(X509* cert);

}  // namespace postern::tls
