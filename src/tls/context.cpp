// tls/context.cpp - server-side SSL_CTX set-up and session facts (RFC 3207; RFC 9325 defaults).
#include "tls/context.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <ctime>

#include <fmt/format.h>


namespace postern::tls {

std::string last_error() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown TLS error" : out;
}

namespace {

std::string when(const ASN1_TIME* t) {
    std::tm tm{};
    if (ASN1_TIME_to_tm(t, &tm) != 1) return "?";
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace

// Served anyway (opportunistic peers mostly do not check), but said at start-up, on a reload
// and by check-config: an expired or not yet valid certificate, or one that expires within 30 days.
std::string certificate_date_warning(SSL_CTX* ctx, const std::string& cert_file) {
    X509* cert = SSL_CTX_get0_certificate(ctx);
    if (!cert) return {};
    const ASN1_TIME* not_after = X509_get0_notAfter(cert);
    const ASN1_TIME* not_before = X509_get0_notBefore(cert);
    constexpr std::string_view refused = ": clients that check certificates refuse it";
    std::time_t soon = std::time(nullptr) + 30 * 86400;
    if (X509_cmp_current_time(not_after) <= 0)
        return fmt::format("certificate {} expired on {}{}", cert_file, when(not_after), refused);
    if (X509_cmp_current_time(not_before) >= 0)
        return fmt::format("certificate {} is not valid before {}{}", cert_file, when(not_before), refused);
    if (X509_cmp_time(not_after, &soon) <= 0)
        return fmt::format("certificate {} expires on {}, in less than 30 days", cert_file, when(not_after));
    return {};
}

result<void> configure_server(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file) {
    ERR_clear_error();
    // RFC 9325 3.1.1: TLS 1.2 at least.
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    // TLS 1.2: forward secrecy and AEAD only (RFC 9325 4.2). TLS 1.3 suites are all strong.
    if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL") != 1)
        return error{fmt::format("cipher list: {}", last_error())};
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
        return error{fmt::format("cannot load certificate {}: {}", cert_file, last_error())};
    // An encrypted key is refused, never prompted for: OpenSSL's default would read a passphrase
    // from the terminal, blocking start-up or, on SIGHUP, the main loop.
    SSL_CTX_set_default_passwd_cb(ctx, [](char*, int, int, void*) { return 0; });
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        // OpenSSL 3 checks the key against the certificate as it loads it: say that, not
        // "cannot load" with a hint about encrypted keys.
        const unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            return error{fmt::format("private key {} does not match certificate {}", key_file, cert_file)};
        }
        return error{fmt::format("cannot load private key {} (an encrypted key is not supported): {}", key_file,
                                 last_error())};
    }
    if (SSL_CTX_check_private_key(ctx) != 1)
        return error{fmt::format("private key {} does not match certificate {}", key_file, cert_file)};
    // Send exactly the chain in cert_file: no chain building from the trust store at each
    // handshake (OpenSSL's auto-chain looks the issuer up in the store every time).
    SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
    // Trust store for client certificates (profiles with inbound verify = ca/ca+name and no
    // ca_file of their own): the system store.
    load_system_trust(SSL_CTX_get_cert_store(ctx));
    ERR_clear_error();
    static const unsigned char sid_ctx[] = "postern-smtpd";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    // Resumption by session tickets only (TLS 1.3 and 1.2): the server keeps no per-session
    // state. OpenSSL's internal cache would store every session under a lock shared by the
    // session threads and walk all of them every 255 handshakes to expire old ones.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
    // TLS 1.3: one session ticket per handshake (OpenSSL sends two by default); a client
    // resumes with one, and each ticket costs an encryption and a record per connection.
    // Connections that ask for a client certificate issue none and resume none
    // (request_client_certificate).
    SSL_CTX_set_num_tickets(ctx, 1);
    return {};
}

bool load_system_trust(X509_STORE* store) {
    const char* file = std::getenv(X509_get_default_cert_file_env());
    const char* dir = std::getenv(X509_get_default_cert_dir_env());
    if (!file) file = X509_get_default_cert_file();
    if (!dir) dir = X509_get_default_cert_dir();
    const bool f = X509_STORE_load_file(store, file) == 1;
    const bool d = X509_STORE_load_path(store, dir) == 1;
    ERR_clear_error();  // a missing default file is normal (Debian ships the directory)
    return f || d;
}

smtp::tls_facts session_facts(const SSL* ssl) {
    smtp::tls_facts f;
    f.version = SSL_get_version(ssl);
    if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) {
        f.cipher = SSL_CIPHER_get_name(c);
        f.bits = SSL_CIPHER_get_bits(c, &f.alg_bits);
    }
    return f;
}

}  // namespace postern::tls
