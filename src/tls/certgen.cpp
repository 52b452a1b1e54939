// tls/certgen.cpp - self-signed ECDSA certificate generation through OpenSSL 3's API.
#include "tls/certgen.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "tls/context.hpp"

namespace postern::tls {
namespace {

struct free_pkey { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct free_x509 { void operator()(X509* p) const { X509_free(p); } };

bool add_ext(X509* cert, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext) return false;
    bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

}  // namespace

result<void> write_self_signed(const std::string& cert_path, const std::string& key_path,
                               const std::string& hostname, int days) {
    std::unique_ptr<EVP_PKEY, free_pkey> key(EVP_EC_gen("P-256"));
    if (!key) return error{fmt::format("key generation failed: {}", last_error())};
    std::unique_ptr<X509, free_x509> cert(X509_new());
    X509_set_version(cert.get(), 2);  // v3
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("Postern"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(hostname.c_str()),
                               -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    std::string san = "DNS:" + hostname;
    if (hostname == "localhost") san += ",IP:127.0.0.1,IP:::1";
    if (!add_ext(cert.get(), NID_subject_alt_name, san) ||
        !add_ext(cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(cert.get(), NID_key_usage, "critical,digitalSignature") ||
        !add_ext(cert.get(), NID_ext_key_usage, "serverAuth,clientAuth") ||
        !add_ext(cert.get(), NID_subject_key_identifier, "hash"))
        return error{fmt::format("certificate extensions: {}", last_error())};
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0)
        return error{fmt::format("certificate signing failed: {}", last_error())};

    // 0600 even when the file was there before with a wider mode (O_CREAT's mode only applies
    // to a new file); every write and the close are checked (a full disk must not leave a
    // truncated key reported as written).
    int kfd = ::open(key_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (kfd < 0) return error{fmt::format("cannot create {}: {}", key_path, std::strerror(errno))};
    if (::fchmod(kfd, 0600) != 0) {
        ::close(kfd);
        return error{fmt::format("cannot chmod {}: {}", key_path, std::strerror(errno))};
    }
    FILE* kf = ::fdopen(kfd, "w");
    if (!kf) {
        ::close(kfd);
        return error{fmt::format("cannot write {}: {}", key_path, std::strerror(errno))};
    }
    const bool key_written = PEM_write_PrivateKey(kf, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
    if (std::fclose(kf) != 0 || !key_written)
        return error{fmt::format("cannot write {}: {}", key_path, key_written ? std::strerror(errno) : last_error())};
    FILE* cf = std::fopen(cert_path.c_str(), "w");
    if (!cf) return error{fmt::format("cannot create {}: {}", cert_path, std::strerror(errno))};
    const bool cert_written = PEM_write_X509(cf, cert.get()) == 1;
    if (std::fclose(cf) != 0 || !cert_written)
        return error{fmt::format("cannot write {}: {}", cert_path, cert_written ? std::strerror(errno) : last_error())};
    return {};
}

}  // namespace postern::tls
