// tls/client.cpp - client contexts and peer certificate checks (RFC 3207, RFC 6125, RFC 9325).
#include "tls/client.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>

#include <fmt/format.h>

#include "tls/context.hpp"
#include "tls/verify.hpp"

namespace postern::tls {
namespace {

// Record the verification result without failing the handshake: opportunistic TLS never
// refuses a certificate (SPEC §1.1); check_peer() reads the stored result afterwards.
int accept_any(int, X509_STORE_CTX*) { return 1; }

bool is_ip_literal(const std::string& s) {
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

const char* to_string(peer_trust t) {
    switch (t) {
        case peer_trust::untrusted: return "untrusted";
        case peer_trust::trusted: return "trusted";
        case peer_trust::verified: return "verified";
    }
    return "untrusted";
}

result<void> configure_client(SSL_CTX* ctx, const std::string& ca_file) {
    ERR_clear_error();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);  // RFC 9325 3.1.1
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL") != 1)
        return error{fmt::format("cipher list: {}", last_error())};
    if (ca_file.empty()) {
        if (!load_system_trust(SSL_CTX_get_cert_store(ctx)))
            return error{fmt::format("system trust store: {}", last_error())};
    } else if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
        return error{fmt::format("cannot load CA file {}: {}", ca_file, last_error())};
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any);
    return {};
}

void request_client_certificate(SSL* ssl) {
    SSL_set_verify(ssl, SSL_VERIFY_PEER, accept_any);
    // Always a full handshake here. A resumed session keeps the client's leaf certificate but
    // not the intermediates it sent, so a chain through an intermediate CA could not be checked
    // again; and a ticket issued where no certificate was asked for holds no certificate. So no
    // ticket is issued (TLS 1.3: none sent; TLS 1.2: none offered) nor accepted on this
    // connection, and its session-id context differs from the one every other connection
    // shares (configure_server), which no ticket from elsewhere matches.
    SSL_set_options(ssl, SSL_OP_NO_TICKET);
    SSL_set_num_tickets(ssl, 0);
    static const unsigned char sid_ctx[] = "postern-smtpd-client-certificate";
    SSL_set_session_id_context(ssl, sid_ctx, sizeof sid_ctx - 1);
}

void prepare_client(SSL* ssl, const std::string& server_name) {
    if (!server_name.empty() && !is_ip_literal(server_name))
        SSL_set_tlsext_host_name(ssl, server_name.c_str());
}

peer_check check_peer(SSL* ssl, const std::vector<std::string>& names) {
    peer_check out;
    X509* leaf = SSL_get1_peer_certificate(ssl);
    if (!leaf) {
        out.detail = "no peer certificate";
        return out;
    }
    const long vr = SSL_get_verify_result(ssl);
    if (vr != X509_V_OK) {
        out.detail = fmt::format("certificate verify failed: {}", X509_verify_cert_error_string(vr));
        X509_free(leaf);
        return out;
    }
    out.trust = peer_trust::trusted;
    // The same name rules as tls::evaluate (certificate_names): an IP reference against the
    // iPAddress SANs only; a DNS name against the SAN dNSNames (RFC 6125 6.4), the CN only
    // when there is no SAN extension at all; a "*.suffix" reference as a profile means it.
    for (const auto& n : names) {
        if (certificate_names(leaf, n)) {
            out.trust = peer_trust::verified;
            out.detail = fmt::format("matched {}", n);
            break;
        }
    }
    if (out.trust == peer_trust::trusted) {
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        out.detail = fmt::format("certificate does not name {}", list);
    }
    X509_free(leaf);
    return out;
}

}  // namespace postern::tls
