// tests/unit/tls/test_certs.hpp - certificates made by the test with OpenSSL's API (a CA,
// leaves with SAN dNSName / iPAddress / CN only / wildcards / any EKU / expired /
// self-signed), written to temporary PEM files where a path is needed, and a TLS client/server
// pair that handshakes in memory over a BIO pair (no sockets).
#pragma once
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace postern::tls::test {

struct x509_free {
    void operator()(X509* x) const { X509_free(x); }
};
struct pkey_free {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// A certificate and its private key (shared: copies are cheap and safe).
struct cert_and_key {
    std::shared_ptr<X509> cert;
    std::shared_ptr<EVP_PKEY> key;
    X509* x509() const { return cert.get(); }
};

struct cert_spec {
    std::string cn;                  // subject CN ("" = none)
    std::vector<std::string> dns;    // SAN dNSNames (empty, and no ips = no SAN extension)
    std::vector<std::string> ips;    // SAN iPAddresses, "10.0.0.5" or "2001:db8::5"
    std::string eku;                 // extendedKeyUsage, e.g. "serverAuth" ("" = none)
    long not_before_days = -1;       // relative to now
    long not_after_days = 30;
    bool ca = false;
    std::shared_ptr<EVP_PKEY> key;  // reuse this key (a renewed certificate); null = a new one
};

inline void fail_openssl(const char* what) {
    char buf[256] = "";
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    ERR_clear_error();
    throw std::runtime_error(std::string(what) + ": " + buf);
}

inline std::shared_ptr<EVP_PKEY> make_key() {
    EVP_PKEY* k = EVP_EC_gen("P-256");
    if (!k) fail_openssl("EVP_EC_gen");
    return {k, pkey_free{}};
}

inline void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext) fail_openssl("X509V3_EXT_conf_nid");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

// Issue a certificate for `spec`, signed by `issuer` (nullptr: self-signed).
inline cert_and_key make_cert(const cert_spec& spec, const cert_and_key* issuer = nullptr) {
    cert_and_key out;
    out.key = spec.key ? spec.key : make_key();
    X509* x = X509_new();
    out.cert.reset(x, x509_free{});
    X509_set_version(x, 2);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), spec.not_before_days * 86400L);
    X509_gmtime_adj(X509_getm_notAfter(x), spec.not_after_days * 86400L);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Postern tests"), -1,
                               -1, 0);
    if (!spec.cn.empty())
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(spec.cn.c_str()),
                                   -1, -1, 0);
    X509* signer = issuer ? issuer->x509() : x;
    X509_set_issuer_name(x, X509_get_subject_name(signer));
    X509_set_pubkey(x, out.key.get());
    if (spec.ca) {
        add_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, signer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, signer, NID_key_usage, "critical,digitalSignature");
    }
    add_ext(x, signer, NID_subject_key_identifier, "hash");
    if (issuer) add_ext(x, signer, NID_authority_key_identifier, "keyid:always");
    if (!spec.dns.empty() || !spec.ips.empty()) {
        std::string san;
        for (const auto& d : spec.dns) san += (san.empty() ? "DNS:" : ",DNS:") + d;
        for (const auto& a : spec.ips) san += (san.empty() ? "IP:" : ",IP:") + a;
        add_ext(x, signer, NID_subject_alt_name, san);
    }
    if (!spec.eku.empty()) add_ext(x, signer, NID_ext_key_usage, spec.eku);
    EVP_PKEY* signing_key = issuer ? issuer->key.get() : out.key.get();
    if (X509_sign(x, signing_key, EVP_sha256()) <= 0) fail_openssl("X509_sign");
    return out;
}

inline cert_and_key make_ca(const std::string& cn) {
    cert_spec s;
    s.cn = cn;
    s.ca = true;
    s.not_after_days = 365;
    return make_cert(s);
}

inline std::string to_pem(X509* x) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string out(data, static_cast<size_t>(n));
    BIO_free(b);
    return out;
}

inline std::string key_pem(EVP_PKEY* k) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string out(data, static_cast<size_t>(n));
    BIO_free(b);
    return out;
}

inline std::string write_file(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
    return path;
}

// ---- an in-memory handshake ------------------------------------------------------------

struct ctx_free {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct ssl_free {
    void operator()(SSL* s) const { SSL_free(s); }
};
using ctx_ptr = std::unique_ptr<SSL_CTX, ctx_free>;
using ssl_ptr = std::unique_ptr<SSL, ssl_free>;

inline int accept_any_cert(int, X509_STORE_CTX*) { return 1; }

inline void use_cert(SSL_CTX* ctx, const cert_and_key& ck, const std::vector<cert_and_key>& chain = {}) {
    if (SSL_CTX_use_certificate(ctx, ck.x509()) != 1) fail_openssl("SSL_CTX_use_certificate");
    if (SSL_CTX_use_PrivateKey(ctx, ck.key.get()) != 1) fail_openssl("SSL_CTX_use_PrivateKey");
    for (const auto& c : chain)
        if (SSL_CTX_add1_chain_cert(ctx, c.x509()) != 1) fail_openssl("SSL_CTX_add1_chain_cert");
}

// A connected client/server pair. Both SSL objects share one BIO pair; handshake() pumps
// them in turn until both have finished (or one fails).
struct tls_pair {
    ctx_ptr client_ctx{SSL_CTX_new(TLS_client_method())};
    ctx_ptr server_ctx{SSL_CTX_new(TLS_server_method())};
    ssl_ptr client, server;
    std::string error;

    bool handshake() {
        client.reset(SSL_new(client_ctx.get()));
        server.reset(SSL_new(server_ctx.get()));
        BIO *cb = nullptr, *sb = nullptr;
        if (BIO_new_bio_pair(&cb, 0, &sb, 0) != 1) fail_openssl("BIO_new_bio_pair");
        SSL_set_bio(client.get(), cb, cb);
        SSL_set_bio(server.get(), sb, sb);
        SSL_set_connect_state(client.get());
        SSL_set_accept_state(server.get());
        bool client_done = false, server_done = false;
        for (int round = 0; round < 100 && !(client_done && server_done); ++round) {
            for (auto [ssl, done, who] : {std::tuple{client.get(), &client_done, "client"},
                                          std::tuple{server.get(), &server_done, "server"}}) {
                if (*done) continue;
                const int r = SSL_do_handshake(ssl);
                if (r == 1) {
                    *done = true;
                    continue;
                }
                const int e = SSL_get_error(ssl, r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                    char buf[256] = "";
                    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
                    ERR_clear_error();
                    error = std::string(who) + ": " + buf;
                    return false;
                }
            }
        }
        if (!(client_done && server_done)) error = "handshake did not finish";
        return client_done && server_done;
    }
};

}  // namespace postern::tls::test
