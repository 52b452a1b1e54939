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

// Creates `path` (it must not exist) with `mode` and fills it with `write`. Every write and
// the close are checked (a full disk must not leave a truncated key reported as written); a
// file that could not be completed is removed.
template <class Writer>
result<void> write_new_file(const std::string& path, mode_t mode, Writer write) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return error{fmt::format("cannot create {}: {}", path, std::strerror(errno))};
    // The mode exactly, whatever the umask (O_CREAT's mode is masked by it).
    if (::fchmod(fd, mode) != 0) {
        const int e = errno;
        ::close(fd);
        ::unlink(path.c_str());
        return error{fmt::format("cannot chmod {}: {}", path, std::strerror(e))};
    }
    FILE* f = ::fdopen(fd, "w");
    if (!f) {
        const int e = errno;
        ::close(fd);
        ::unlink(path.c_str());
        return error{fmt::format("cannot write {}: {}", path, std::strerror(e))};
    }
    const bool written = write(f);
    const bool closed = std::fclose(f) == 0;
    if (written && closed) return {};
    const std::string why = written ? std::strerror(errno) : last_error();
    ::unlink(path.c_str());
    return error{fmt::format("cannot write {}: {}", path, why)};
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

    // Both files are new (O_EXCL): an existing key is never overwritten, not even when its
    // certificate is missing (cli/init.cpp refuses that case before it gets here). If the
    // second file cannot be written, the first is removed again: no half-made pair is left.
    auto key_written = write_new_file(key_path, 0600, [&](FILE* f) {
        return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
    });
    if (!key_written) return key_written;
    auto cert_written = write_new_file(cert_path, 0644, [&](FILE* f) { return PEM_write_X509(f, cert.get()) == 1; });
    if (!cert_written) {
        ::unlink(key_path.c_str());
        return cert_written;
    }
    return {};
}

}  // namespace postern::tls
