// tls/chain.cpp - summarise a peer's certificate chain: names, dates, pins (RFC 5280 4.1).
#include "tls/chain.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <arpa/inet.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <ctime>

#include "tls/verify.hpp"

namespace postern::tls {
namespace {

// RFC 2253 order and escaping, but UTF-8 kept readable (no \XX escapes of non-ASCII).
std::string name_text(const X509_NAME* name) {
    if (!name) return "";
    BIO* b = BIO_new(BIO_s_mem());
    if (!b) return "";
    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string out(data ? data : "", n > 0 ? static_cast<std::size_t>(n) : 0);
    BIO_free(b);
    return out;
}

std::string time_text(const ASN1_TIME* t) {
    std::tm tm{};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return "?";
    char buf[32];
    return std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) ? std::string(buf) : "?";
}

}  // namespace

namespace {

// Calls f(entry) for each subjectAltName entry of `type` (GEN_DNS, GEN_IPADD) in `cert`.
template <typename F>
void for_each_san(X509* cert, int type, F f) {
    if (!cert) return;
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (!sans) return;
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == type) f(*g);
    }
    GENERAL_NAMES_free(sans);
}

}  // namespace

std::vector<std::string> san_dns_names(X509* cert) {
    std::vector<std::string> out;
    for_each_san(cert, GEN_DNS, [&](const GENERAL_NAME& g) {
        const ASN1_IA5STRING* s = g.d.dNSName;
        out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<std::size_t>(ASN1_STRING_length(s)));
    });
    return out;
}

std::vector<std::string> san_ip_addresses(X509* cert) {
    std::vector<std::string> out;
    for_each_san(cert, GEN_IPADD, [&](const GENERAL_NAME& g) {
        const int n = ASN1_STRING_length(g.d.iPAddress);
        char buf[INET6_ADDRSTRLEN] = "?";
        if ((n != 4 && n != 16) ||
            !::inet_ntop(n == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(g.d.iPAddress), buf, sizeof buf))
            std::snprintf(buf, sizeof buf, "?");
        out.emplace_back(buf);
    });
    return out;
}

certificate_summary summarize_certificate(X509* cert, int depth) {
    certificate_summary s;
    s.depth = depth;
    if (!cert) return s;
    s.subject = name_text(X509_get_subject_name(cert));
    s.issuer = name_text(X509_get_issuer_name(cert));
    s.not_before = time_text(X509_get0_notBefore(cert));
    s.not_after = time_text(X509_get0_notAfter(cert));
    s.dns_names = san_dns_names(cert);
    s.ip_addresses = san_ip_addresses(cert);
    s.sha256 = fingerprint_sha256(cert);
    s.spki_sha256 = spki_sha256(cert);
    return s;
}

std::vector<certificate_summary> summarize_peer_chain(SSL* ssl) {
    std::vector<certificate_summary> out;
    if (!ssl) return out;
    if (SSL_is_server(ssl))  // the server side's peer chain omits the client's own certificate
        if (X509* leaf = SSL_get0_peer_certificate(ssl)) out.push_back(summarize_certificate(leaf, 0));
    if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl))
        for (int i = 0; i < sk_X509_num(chain); ++i)
            out.push_back(summarize_certificate(sk_X509_value(chain, i), static_cast<int>(out.size())));
    return out;
}

}  // namespace postern::tls
