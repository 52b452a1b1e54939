// tests/unit/tls/chain_test.cpp - tls::summarize_certificate / summarize_peer_chain: subject,
// issuer, dates, SAN dNSNames and pins of certificates made by the test, and the chain as a
// peer sent it over a real in-memory handshake (client side and server side).
#include "tls/chain.hpp"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <ctime>
#include <regex>

#include "test_certs.hpp"
#include "tls/verify.hpp"

namespace postern::tls::test {
namespace {

cert_spec leaf(std::string cn, std::vector<std::string> dns) {
    cert_spec s;
    s.cn = std::move(cn);
    s.dns = std::move(dns);
    s.eku = "serverAuth";
    return s;
}

std::string hex(const unsigned char* p, std::size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        out += digits[p[i] >> 4];
        out += digits[p[i] & 0x0f];
    }
    return out;
}

// SHA-256 of DER bytes, computed here independently of tls/verify.cpp.
template <typename T, typename Encode>
std::string der_sha256(T* object, Encode encode) {
    unsigned char* der = nullptr;
    const int n = encode(object, &der);
    EXPECT_GT(n, 0);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(der, static_cast<std::size_t>(n), md);
    OPENSSL_free(der);
    return hex(md, sizeof md);
}

std::string utc_day(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

TEST(TlsChain, SummarisesOneCertificate) {
    const std::time_t now = std::time(nullptr);
    const cert_and_key ca = make_ca("Postern Test CA");
    const cert_and_key c = make_cert(leaf("mx.partner.test", {"mx.partner.test", "partner.test"}), &ca);
    const certificate_summary s = summarize_certificate(c.x509(), 0);
    EXPECT_EQ(s.depth, 0);
    // RFC 2253 order: the last RDN first.
    EXPECT_EQ(s.subject, "CN=mx.partner.test,O=Postern tests");
    EXPECT_EQ(s.issuer, "CN=Postern Test CA,O=Postern tests");
    EXPECT_EQ(s.dns_names, (std::vector<std::string>{"mx.partner.test", "partner.test"}));
    const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)");
    EXPECT_TRUE(std::regex_match(s.not_before, iso)) << s.not_before;
    EXPECT_TRUE(std::regex_match(s.not_after, iso)) << s.not_after;
    // make_cert: valid from a day ago for 30 days.
    EXPECT_EQ(s.not_before.substr(0, 10), utc_day(now - 86400));
    EXPECT_EQ(s.not_after.substr(0, 10), utc_day(now + 30 * 86400));
}

TEST(TlsChain, PinsAreTheSha256OfTheCertificateAndOfItsPublicKey) {
    const cert_and_key c = make_cert(leaf("mx.partner.test", {"mx.partner.test"}));
    const certificate_summary s = summarize_certificate(c.x509(), 0);
    EXPECT_EQ(s.sha256, der_sha256(c.x509(), i2d_X509));
    EXPECT_EQ(s.spki_sha256, der_sha256(X509_get_X509_PUBKEY(c.x509()), i2d_X509_PUBKEY));
    EXPECT_EQ(s.sha256.size(), 64u);
    EXPECT_NE(s.sha256, s.spki_sha256);
    // The same forms verify.cpp pins against ("sha256:HEX", "spki-sha256:HEX").
    EXPECT_EQ(s.sha256, fingerprint_sha256(c.x509()));
    EXPECT_EQ(s.spki_sha256, spki_sha256(c.x509()));
    // Self-signed: subject and issuer are the same.
    EXPECT_EQ(s.subject, s.issuer);
}

// IP SANs are listed too (tls-policy --probe showed "matched 127.0.0.1" with no such name).
TEST(TlsChain, IpAddressesInTheSan) {
    cert_spec spec = leaf("mx.partner.test", {"mx.partner.test"});
    spec.ips = {"192.0.2.7", "2001:db8::5"};
    const cert_and_key c = make_cert(spec);
    const certificate_summary s = summarize_certificate(c.x509(), 0);
    EXPECT_EQ(s.dns_names, (std::vector<std::string>{"mx.partner.test"}));
    EXPECT_EQ(s.ip_addresses, (std::vector<std::string>{"192.0.2.7", "2001:db8::5"}));
    EXPECT_TRUE(summarize_certificate(make_cert(leaf("a.test", {"a.test"})).x509(), 0).ip_addresses.empty());
}

TEST(TlsChain, CnOnlyCertificateHasNoNames) {
    const cert_and_key c = make_cert(leaf("mx.partner.test", {}));
    const certificate_summary s = summarize_certificate(c.x509(), 2);
    EXPECT_EQ(s.depth, 2);
    EXPECT_TRUE(s.dns_names.empty());
    EXPECT_TRUE(san_dns_names(c.x509()).empty());
    EXPECT_EQ(s.subject, "CN=mx.partner.test,O=Postern tests");
}

TEST(TlsChain, NullIsEmpty) {
    const certificate_summary s = summarize_certificate(nullptr, 0);
    EXPECT_EQ(s.subject, "");
    EXPECT_EQ(s.sha256, "");
    EXPECT_TRUE(san_dns_names(nullptr).empty());
    EXPECT_TRUE(summarize_peer_chain(nullptr).empty());
}

struct chain_fixture {
    cert_and_key ca = make_ca("Postern Test CA");
    cert_and_key intermediate;
    cert_and_key server, client;
    chain_fixture() {
        cert_spec i;
        i.cn = "Postern Test Intermediate";
        i.ca = true;
        intermediate = make_cert(i, &ca);
        server = make_cert(leaf("mx.partner.test", {"mx.partner.test"}), &intermediate);
        client = make_cert(leaf("client.partner.test", {"client.partner.test"}), &ca);
    }
};

TEST(TlsChain, PeerChainAsSentLeafFirst) {
    chain_fixture f;
    tls_pair t;
    use_cert(t.server_ctx.get(), f.server, {f.intermediate});
    SSL_CTX_set_verify(t.server_ctx.get(), SSL_VERIFY_PEER, accept_any_cert);  // ask for a client cert
    use_cert(t.client_ctx.get(), f.client);
    ASSERT_TRUE(t.handshake()) << t.error;

    // Client side: the server's leaf, then the intermediate it sent (not the root: never sent).
    const auto chain = summarize_peer_chain(t.client.get());
    ASSERT_EQ(chain.size(), 2u);
    EXPECT_EQ(chain[0].depth, 0);
    EXPECT_EQ(chain[0].subject, "CN=mx.partner.test,O=Postern tests");
    EXPECT_EQ(chain[0].issuer, "CN=Postern Test Intermediate,O=Postern tests");
    EXPECT_EQ(chain[0].sha256, fingerprint_sha256(f.server.x509()));
    EXPECT_EQ(chain[1].depth, 1);
    EXPECT_EQ(chain[1].subject, "CN=Postern Test Intermediate,O=Postern tests");
    EXPECT_EQ(chain[1].issuer, "CN=Postern Test CA,O=Postern tests");
    EXPECT_TRUE(chain[1].dns_names.empty());

    // Server side: OpenSSL's peer chain lacks the client's own certificate; it comes first.
    const auto client_chain = summarize_peer_chain(t.server.get());
    ASSERT_EQ(client_chain.size(), 1u);
    EXPECT_EQ(client_chain[0].depth, 0);
    EXPECT_EQ(client_chain[0].dns_names, std::vector<std::string>{"client.partner.test"});
}

}  // namespace
}  // namespace postern::tls::test
