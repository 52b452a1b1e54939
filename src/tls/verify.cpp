// tls/verify.cpp - check an established TLS session against the connection profile's policy
// The only place that judges a session (SPEC §1.2-1.3); profile/policy.cpp decides the level,
// the sessions enforce the verdict. RFC 3207 4.1, RFC 5280 6 (chain), RFC 6125 6.4 (names),
// RFC 7672 (DANE: not implemented, refused explicitly).
#include "tls/verify.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <map>
#include <memory>
#include <mutex>

#include "tls/chain.hpp"
#include "tls/context.hpp"

namespace postern::tls {
namespace {

using profile::tls_level;

struct store_free {
    void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
using store_ptr = std::unique_ptr<X509_STORE, store_free>;

struct store_ctx_free {
    void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};

int openssl_version(config::tls_version v) {
    switch (v) {
        case config::tls_version::v1_0: return TLS1_VERSION;
        case config::tls_version::v1_1: return TLS1_1_VERSION;
        case config::tls_version::v1_2: return TLS1_2_VERSION;
        case config::tls_version::v1_3: return TLS1_3_VERSION;
    }
    return TLS1_3_VERSION;  // unknown: the strictest
}

std::string to_hex(const unsigned char* p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (size_t i = 0; i < n; ++i) {
        out += digits[p[i] >> 4];
        out += digits[p[i] & 0x0f];
    }
    return out;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower(c);
    return out;
}

// ---- trust stores ----------------------------------------------------------------------
// A CA file is loaded once and reused while it is unchanged (same inode, size and mtime);
// "" is the system store. X509_STORE is reference-counted and safe to share between threads
// for verification.
struct cached_store {
    store_ptr store;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    timespec mtime{};
};

result<store_ptr> load_store(const std::string& ca_file) {
    ERR_clear_error();
    store_ptr store(X509_STORE_new());
    if (!store) return error{fmt::format("cannot create a trust store: {}", last_error())};
    if (ca_file.empty()) {
        if (!load_system_trust(store.get()))
            return error{fmt::format("cannot load the system trust store: {}", last_error())};
    } else if (X509_STORE_load_file(store.get(), ca_file.c_str()) != 1) {
        return error{fmt::format("cannot load CA file {}: {}", ca_file, last_error())};
    }
    return store;
}

result<store_ptr> trust_store(const std::string& ca_file) {
    static std::mutex mutex;
    static std::map<std::string, cached_store> cache;

    struct stat st {};
    const bool have_stat = !ca_file.empty() && ::stat(ca_file.c_str(), &st) == 0;
    if (!ca_file.empty() && !have_stat) return error{fmt::format("cannot load CA file {}: not found", ca_file)};

    std::lock_guard lock(mutex);
    auto it = cache.find(ca_file);
    if (it != cache.end()) {
        const cached_store& c = it->second;
        const bool same = ca_file.empty() ||
                          (c.dev == st.st_dev && c.ino == st.st_ino && c.size == st.st_size &&
                           c.mtime.tv_sec == st.st_mtim.tv_sec && c.mtime.tv_nsec == st.st_mtim.tv_nsec);
        if (same && X509_STORE_up_ref(c.store.get()) == 1) return store_ptr(c.store.get());
    }
    auto loaded = load_store(ca_file);
    if (!loaded) return loaded;
    cached_store c;
    if (X509_STORE_up_ref(loaded->get()) != 1) return loaded;  // usable, just not cached
    c.store.reset(loaded->get());
    if (have_stat) {
        c.dev = st.st_dev;
        c.ino = st.st_ino;
        c.size = st.st_size;
        c.mtime = st.st_mtim;
    }
    cache[ca_file] = std::move(c);
    return loaded;
}

}  // namespace

result<void> load_trust_store(const std::string& ca_file) {
    auto store = trust_store(ca_file);
    if (!store) return error{store.error_message()};
    return {};
}

namespace {

// ---- chain -----------------------------------------------------------------------------
struct chain_result {
    bool ok = false;
    std::string detail;  // why not, e.g. "self-signed certificate"
};

// RFC 5280 6: path validation to a trust anchor in the store, validity dates included. The
// peer's chain supplies the intermediates (on the client side it also holds the leaf).
// A server certificate (we are the client) is checked for the TLS server purpose, exactly as
// OpenSSL's handshake-time verification does ("ssl_server": purpose and trust SSL_SERVER): a
// leaf whose extendedKeyUsage lacks serverAuth, or an intermediate restricted to other uses
// (emailProtection, clientAuth), fails with "unsuitable certificate purpose" whichever store
// is used (RFC 5280 4.2.1.12). A client certificate (we are the server) is checked without a
// purpose, so no EKU is demanded: mail servers use one certificate for both directions and
// many carry only serverAuth.
chain_result verify_against(X509_STORE* store, X509* leaf, STACK_OF(X509) * untrusted, bool peer_is_server) {
    std::unique_ptr<X509_STORE_CTX, store_ctx_free> ctx(X509_STORE_CTX_new());
    if (!ctx || X509_STORE_CTX_init(ctx.get(), store, leaf, untrusted) != 1)
        return {false, fmt::format("cannot set up verification: {}", last_error())};
    if (peer_is_server && X509_STORE_CTX_set_default(ctx.get(), "ssl_server") != 1)
        return {false, fmt::format("cannot set up verification: {}", last_error())};
    ERR_clear_error();
    if (X509_verify_cert(ctx.get()) == 1) return {true, ""};
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return {false, err == X509_V_OK ? std::string("unknown error") : X509_verify_cert_error_string(err)};
}

chain_result check_chain(SSL* ssl, X509* leaf, const std::string& ca_file, bool is_server_side) {
    if (ca_file.empty() && !is_server_side) {
        // The client context trusts tls.ca_file or the system store (configure_client), which
        // is this policy's store when the policy names none: OpenSSL's handshake-time result
        // (purpose ssl_server, as verify_against uses for a server certificate).
        const long vr = SSL_get_verify_result(ssl);
        if (vr == X509_V_OK) return {true, ""};
        return {false, X509_verify_cert_error_string(vr)};
    }
    auto store = trust_store(ca_file);
    if (!store) return {false, store.error_message()};
    return verify_against(store->get(), leaf, SSL_get_peer_cert_chain(ssl), /*peer_is_server=*/!is_server_side);
}

// ---- names (RFC 6125 6.4) --------------------------------------------------------------

// The certificate has a subjectAltName extension, whatever its entries (dNSName, iPAddress,
// rfc822Name...). SPEC §1.3: the subject CN is a name only when there is no SAN at all.
bool has_san_extension(X509* cert) { return X509_get_ext_by_NID(cert, NID_subject_alt_name, -1) >= 0; }

// The reference as an IP address in text form when it is one ("10.0.0.5", "2001:db8::5", or an
// address literal "[10.0.0.5]" / "[IPv6:2001:db8::5]" as in RFC 5321 4.1.3), else "".
std::string ip_reference(std::string_view reference) {
    std::string s(reference);
    if (s.size() >= 2 && s.front() == '[' && s.back() == ']') {
        s = s.substr(1, s.size() - 2);
        if (to_lower(s.substr(0, 5)) == "ipv6:") {
            s = s.substr(5);
            unsigned char buf[16];
            return inet_pton(AF_INET6, s.c_str(), buf) == 1 ? s : std::string{};
        }
    }
    unsigned char buf[16];
    if (inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1) return s;
    return "";
}

// RFC 1123 2.1: a host name's last label is never all digits. Such a reference is a malformed
// address ("10.1", "010.0.0.5"), never a DNS name: it must not match a dNSName "10.1" (nor a
// wildcard "*.0.0.5", which OpenSSL would accept as a DNS-ID).
bool numeric_last_label(std::string_view reference) {
    const size_t dot = reference.rfind('.');
    const std::string_view last = dot == std::string_view::npos ? reference : reference.substr(dot + 1);
    return !last.empty() && last.find_first_not_of("0123456789") == std::string_view::npos;
}

// The DNS identifiers of `cert`: its SAN dNSNames; the subject CNs only when it has no SAN
// extension at all (SPEC §1.3; a SAN of iPAddress entries alone leaves it with none).
// Identifiers with an embedded NUL are dropped (a classic spoofing trick); all are lower-cased.
std::vector<std::string> dns_identifiers(X509* cert) {
    std::vector<std::string> out;
    if (has_san_extension(cert)) {
        for (const std::string& v : san_dns_names(cert))
            if (v.find('\0') == std::string::npos) out.push_back(to_lower(v));
        return out;
    }
    const X509_NAME* subject = X509_get_subject_name(cert);
    for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
        const ASN1_STRING* d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
        unsigned char* utf8 = nullptr;
        const int n = ASN1_STRING_to_UTF8(&utf8, d);
        if (n < 0) continue;
        std::string_view v(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
        if (v.find('\0') == std::string_view::npos) out.push_back(to_lower(v));
        OPENSSL_free(utf8);
    }
    return out;
}

// A reference identity "*.suffix" (the profile allows any single-label host under suffix):
// an identifier matches when it is that same wildcard, or a plain name of exactly one more
// label than suffix. Partial-label wildcards ("f*.suffix") and deeper names never match.
bool matches_reference_wildcard(X509* cert, std::string_view reference) {
    const std::string ref = to_lower(reference);
    const std::string_view suffix = std::string_view(ref).substr(1);  // ".partner.test"
    if (suffix.size() < 2 || suffix.find('*') != std::string_view::npos) return false;
    for (const std::string& id : dns_identifiers(cert)) {
        if (id == ref) return true;
        if (id.find('*') != std::string::npos) continue;
        if (id.size() <= suffix.size() || id.compare(id.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
        const std::string_view label = std::string_view(id).substr(0, id.size() - suffix.size());
        if (!label.empty() && label.find('.') == std::string_view::npos) return true;
    }
    return false;
}

std::string join_names(const std::vector<std::string>& names) {
    std::string out;
    for (size_t i = 0; i < names.size(); ++i) {
        if (i > 0) out += (i + 1 == names.size()) ? " or " : ", ";
        out += names[i];
    }
    return out;
}

// The first of `names` the certificate carries, or "".
std::string first_match(X509* cert, const std::vector<std::string>& names) {
    for (const auto& n : names)
        if (certificate_names(cert, n)) return n;
    return "";
}

// "sha256:AB:cd..." -> "sha256:abcd..." (the loader already normalises; cheap to be sure).
std::string normalise_pin(std::string_view pin) {
    std::string out;
    for (const char c : pin)
        if (c != ':' || out.find(':') == std::string::npos) out += lower(c);
    return out;
}

// The pin of `cert` that matches one of `pins`, or "".
std::string matching_pin(X509* cert, const std::vector<std::string>& pins) {
    const std::string cert_pin = "sha256:" + fingerprint_sha256(cert);
    const std::string key_pin = "spki-sha256:" + spki_sha256(cert);
    for (const auto& p : pins) {
        const std::string n = normalise_pin(p);
        if (n == cert_pin || n == key_pin) return n;
    }
    return "";
}

}  // namespace

// ---- public ----------------------------------------------------------------------------

std::string fingerprint_sha256(X509* cert) {
    if (!cert) return "";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return "";
    return to_hex(md, len);
}

std::string spki_sha256(X509* cert) {
    if (!cert) return "";
    // The DER SubjectPublicKeyInfo as it appears in the certificate (RFC 5280 4.1.2.7; the
    // same bytes DANE's SPKI selector hashes, RFC 6698 2.1.2).
    unsigned char* der = nullptr;
    const int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (n <= 0) return "";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    const bool ok = EVP_Digest(der, static_cast<size_t>(n), md, &len, EVP_sha256(), nullptr) == 1;
    OPENSSL_free(der);
    return ok ? to_hex(md, len) : "";
}

bool certificate_names(X509* cert, std::string_view reference) {
    if (!cert || reference.empty()) return false;
    if (reference.back() == '.') reference.remove_suffix(1);  // absolute form "mx.partner.test."
    // An IP address is an IP-ID: only the certificate's iPAddress SANs can carry it (RFC 5280
    // 4.2.1.6), never a dNSName "10.0.0.5" nor the CN (X509_check_ip_asc looks at neither).
    if (const std::string ip = ip_reference(reference); !ip.empty())
        return X509_check_ip_asc(cert, ip.c_str(), 0) == 1;
    // A leading "." would ask OpenSSL for any subdomain at any depth: never what a profile means.
    if (reference.empty() || reference.front() == '.') return false;
    // Not an address and not a host name either: "[foo]", "10.1", "010.0.0.5".
    if (reference.front() == '[' || numeric_last_label(reference)) return false;
    if (reference.substr(0, 2) == "*.") return matches_reference_wildcard(cert, reference);
    if (reference.find('*') != std::string_view::npos) return false;  // no other wildcard form
    // RFC 6125 6.4.3: "*" only as the complete leftmost label (NO_PARTIAL_WILDCARDS), matching
    // one label (OpenSSL's default; X509_CHECK_FLAG_MULTI_LABEL_WILDCARDS must NOT be set).
    // SPEC §1.3: the CN only when the certificate has no SAN extension at all; OpenSSL's own
    // fallback would also use it beside a SAN without dNSName (an IP-only SAN, say).
    unsigned flags = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;
    if (has_san_extension(cert)) flags |= X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
    return X509_check_host(cert, reference.data(), reference.size(), flags, nullptr) == 1;
}

tls_verdict evaluate(SSL* ssl, const profile::resolved_tls_policy& p, bool is_server_side) {
    tls_verdict v;
    v.version = SSL_get_version(ssl);
    if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) {
        v.cipher = SSL_CIPHER_get_name(c);
        v.bits = SSL_CIPHER_get_bits(c, nullptr);
    }

    // The certificate facts, whatever the level: trust is logged at every level (SPEC §6).
    X509* leaf = SSL_get0_peer_certificate(ssl);
    chain_result chain;
    std::string matched_name, matched_pin;
    if (!leaf) {
        v.detail = is_server_side ? "no client certificate presented" : "no server certificate presented";
    } else {
        // A pin replaces the chain (SPEC §1.3): no trust store is consulted for fingerprint.
        if (p.level != tls_level::fingerprint) chain = check_chain(ssl, leaf, p.ca_file, is_server_side);
        if (chain.ok) {
            v.trust = peer_trust::trusted;
            matched_name = first_match(leaf, p.names);
            if (!matched_name.empty()) v.trust = peer_trust::verified;
        }
        if (profile::uses_pins(p.level)) {
            matched_pin = matching_pin(leaf, p.fingerprints);
            if (!matched_pin.empty()) v.trust = peer_trust::verified;  // a pin is stronger than a CA
        }
        if (!matched_pin.empty()) v.detail = "pin " + matched_pin;
        else if (!matched_name.empty()) v.detail = "matched " + matched_name;
        else if (chain.ok) v.detail = p.names.empty() ? "chain verified" : "certificate does not name " + join_names(p.names);
        else if (profile::uses_pins(p.level)) v.detail = "certificate fingerprint does not match any pin";
        else v.detail = "certificate verification failed: " + chain.detail;
    }

    const auto refuse = [&](std::string reason) {
        v.ok = false;
        v.dsn = "4.7.5";
        v.reason = std::move(reason);
        return v;
    };

    // none / may: TLS is opportunistic or absent; nothing is enforced (SPEC §1.1).
    if (!profile::requires_tls(p.level)) {
        v.ok = true;
        return v;
    }
    if (SSL_version(ssl) < openssl_version(p.min_version))
        return refuse(fmt::format("TLS version {} below the required {}", v.version, config::to_string(p.min_version)));
    if (v.bits < p.min_cipher_bits)
        return refuse(fmt::format("cipher strength {} bits below the required {}", v.bits, p.min_cipher_bits));
    // RFC 7672 is not implemented: refusing is the only answer that is not silently weaker.
    if (p.level == tls_level::dane) return refuse("DANE is not implemented yet");
    if (profile::requires_peer_certificate(p.level) && !leaf)
        return refuse(is_server_side ? "no client certificate presented" : "no server certificate presented");
    if (profile::requires_chain(p.level) && !chain.ok)
        return refuse("certificate verification failed: " + (chain.detail.empty() ? "unknown error" : chain.detail));
    if (profile::requires_name_match(p.level) && matched_name.empty())
        return refuse(p.names.empty() ? std::string("certificate name mismatch: no names to match")
                                      : "certificate name mismatch: expected " + join_names(p.names));
    if (profile::uses_pins(p.level) && matched_pin.empty())
        return refuse("certificate fingerprint does not match any pin");
    v.ok = true;
    return v;
}

peer_trust trust_for_names(SSL* ssl, peer_trust judged, const profile::resolved_tls_policy& p) {
    if (judged == peer_trust::untrusted || profile::uses_pins(p.level)) return judged;
    X509* leaf = SSL_get0_peer_certificate(ssl);
    return leaf && !first_match(leaf, p.names).empty() ? peer_trust::verified : peer_trust::trusted;
}

}  // namespace postern::tls
