// tests/unit/tls/verify_test.cpp - tls::evaluate on real TLS sessions (in-memory handshakes over
// a BIO pair) against every level, positive and negative: chain (RFC 5280), names (RFC 6125
// 6.4), pins, minimum version and cipher strength, client certificates inbound (SPEC §1.2-1.3).
#include "tls/verify.hpp"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <thread>

#include "../test_util.hpp"
#include "test_certs.hpp"
#include "tls/client.hpp"
#include "tls/context.hpp"

namespace postern::tls::test {
namespace {

using profile::tls_level;

// One PKI for the whole suite: a CA, another CA, an intermediate, and leaves.
struct pki {
    postern::test::temp_dir dir;
    cert_and_key ca = make_ca("Postern Test CA");
    cert_and_key other_ca = make_ca("Another Postern Test Root CA");
    cert_and_key intermediate;
    cert_and_key mx, cn_only, san_other_cn, wildcard, expired, self_signed, via_intermediate;
    cert_and_key client_server_auth, client_no_eku, client_self_signed;
    std::string ca_file, other_ca_file;

    static cert_spec leaf(std::string cn, std::vector<std::string> dns, std::string eku = "serverAuth") {
        cert_spec s;
        s.cn = std::move(cn);
        s.dns = std::move(dns);
        s.eku = std::move(eku);
        return s;
    }

    pki() {
        cert_spec i;
        i.cn = "Postern Test Intermediate";
        i.ca = true;
        intermediate = make_cert(i, &ca);
        mx = make_cert(leaf("mx.partner.test", {"mx.partner.test"}), &ca);
        cn_only = make_cert(leaf("mx.partner.test", {}), &ca);
        san_other_cn = make_cert(leaf("mx.partner.test", {"other.partner.test"}), &ca);
        wildcard = make_cert(leaf("*.partner.test", {"*.partner.test"}), &ca);
        cert_spec e = leaf("mx.partner.test", {"mx.partner.test"});
        e.not_before_days = -30;
        e.not_after_days = -1;
        expired = make_cert(e, &ca);
        self_signed = make_cert(leaf("mx.partner.test", {"mx.partner.test"}));
        via_intermediate = make_cert(leaf("mx.partner.test", {"mx.partner.test"}), &intermediate);
        // A mail server's certificate used as a client certificate: serverAuth only.
        client_server_auth = make_cert(leaf("client.partner.test", {"client.partner.test"}, "serverAuth"), &ca);
        client_no_eku = make_cert(leaf("client.partner.test", {"client.partner.test"}, ""), &ca);
        client_self_signed = make_cert(leaf("client.partner.test", {"client.partner.test"}, "clientAuth"));
        ca_file = write_file(dir.path + "/ca.pem", to_pem(ca.x509()));
        other_ca_file = write_file(dir.path + "/other-ca.pem", to_pem(other_ca.x509()));
    }
};

pki& certs() {
    static pki p;
    return p;
}

int file_counter = 0;

struct session_options {
    cert_and_key server_cert;
    std::vector<cert_and_key> server_chain;  // intermediates sent after the leaf
    std::string client_trust;                // the client context's ca_file ("" = system store)
    int server_max_version = 0;              // e.g. TLS1_2_VERSION
    std::string server_tls12_ciphers;        // restrict TLS 1.2 suites on the server
    bool request_client_cert = false;
    std::optional<cert_and_key> client_cert;
    std::vector<cert_and_key> client_chain;
    std::string server_trust;  // a store for the server's handshake-time verification
};

// A real handshake: the client context set up by configure_client (as delivery does), the
// server context by configure_server from PEM files.
std::unique_ptr<tls_pair> connect(const session_options& o) {
    auto t = std::make_unique<tls_pair>();
    const std::string base = certs().dir.path + "/srv" + std::to_string(++file_counter);
    std::string chain_pem = to_pem(o.server_cert.x509());
    for (const auto& c : o.server_chain) chain_pem += to_pem(c.x509());
    write_file(base + ".crt", chain_pem);
    write_file(base + ".key", key_pem(o.server_cert.key.get()));
    auto s = configure_server(t->server_ctx.get(), base + ".crt", base + ".key");
    EXPECT_TRUE(s) << s.error_message();
    auto c = configure_client(t->client_ctx.get(), o.client_trust);
    EXPECT_TRUE(c) << c.error_message();
    if (o.server_max_version) SSL_CTX_set_max_proto_version(t->server_ctx.get(), o.server_max_version);
    if (!o.server_tls12_ciphers.empty()) SSL_CTX_set_cipher_list(t->server_ctx.get(), o.server_tls12_ciphers.c_str());
    if (o.request_client_cert) SSL_CTX_set_verify(t->server_ctx.get(), SSL_VERIFY_PEER, accept_any_cert);
    if (!o.server_trust.empty()) SSL_CTX_load_verify_locations(t->server_ctx.get(), o.server_trust.c_str(), nullptr);
    if (o.client_cert) use_cert(t->client_ctx.get(), *o.client_cert, o.client_chain);
    EXPECT_TRUE(t->handshake()) << t->error;
    return t;
}

std::unique_ptr<tls_pair> connect_to(const cert_and_key& server_cert, const std::string& client_trust = "") {
    session_options o;
    o.server_cert = server_cert;
    o.client_trust = client_trust.empty() ? certs().ca_file : client_trust;
    return connect(o);
}

profile::resolved_tls_policy policy(tls_level level, std::vector<std::string> names = {}, std::string ca_file = "") {
    profile::resolved_tls_policy p;
    p.level = level;
    p.names = std::move(names);
    p.ca_file = std::move(ca_file);
    return p;
}

tls_verdict outbound(const tls_pair& t, const profile::resolved_tls_policy& p) {
    return evaluate(t.client.get(), p, false);
}
tls_verdict inbound(const tls_pair& t, const profile::resolved_tls_policy& p) {
    return evaluate(t.server.get(), p, true);
}

void expect_refused(const tls_verdict& v, const std::string& reason) {
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.dsn, "4.7.5");
    EXPECT_EQ(v.reason, reason);
}

void expect_ok(const tls_verdict& v) {
    EXPECT_TRUE(v.ok) << v.reason;
    EXPECT_EQ(v.dsn, "");
    EXPECT_EQ(v.reason, "");
}

// ---- facts, none / may / encrypt --------------------------------------------------------

TEST(TlsVerify, ReportsSessionFacts) {
    auto t = connect_to(certs().mx);
    const tls_verdict v = outbound(*t, policy(tls_level::encrypt));
    expect_ok(v);
    EXPECT_EQ(v.version, "TLSv1.3");
    EXPECT_EQ(v.cipher, SSL_CIPHER_get_name(SSL_get_current_cipher(t->client.get())));
    EXPECT_GE(v.bits, 128);
    EXPECT_EQ(v.trust, peer_trust::trusted);
    EXPECT_EQ(v.detail, "chain verified");
}

TEST(TlsVerify, EncryptAcceptsAnyCertificate) {
    for (const cert_and_key* c : {&certs().self_signed, &certs().expired, &certs().mx}) {
        auto t = connect_to(*c);
        const tls_verdict v = outbound(*t, policy(tls_level::encrypt, {"mx.other.test"}));
        expect_ok(v);
    }
    auto t = connect_to(certs().self_signed);
    const tls_verdict v = outbound(*t, policy(tls_level::encrypt));
    EXPECT_EQ(v.trust, peer_trust::untrusted);  // still reported
    EXPECT_EQ(v.detail, "certificate verification failed: self-signed certificate");
}

TEST(TlsVerify, MayAndNoneEnforceNothing) {
    session_options o;
    o.server_cert = certs().self_signed;
    o.client_trust = certs().ca_file;
    o.server_max_version = TLS1_2_VERSION;
    auto t = connect(o);
    for (tls_level l : {tls_level::none, tls_level::may}) {
        auto p = policy(l, {"mx.other.test"});
        p.min_version = config::tls_version::v1_3;
        p.min_cipher_bits = 256;
        const tls_verdict v = outbound(*t, p);
        expect_ok(v);
        EXPECT_EQ(v.version, "TLSv1.2");
        EXPECT_EQ(v.trust, peer_trust::untrusted);
    }
    // may still judges trust for the log: chain + a name -> verified.
    auto good = connect_to(certs().mx);
    const tls_verdict v = outbound(*good, policy(tls_level::may, {"partner.test", "mx.partner.test"}));
    expect_ok(v);
    EXPECT_EQ(v.trust, peer_trust::verified);
    EXPECT_EQ(v.detail, "matched mx.partner.test");
}

// ---- version and cipher strength --------------------------------------------------------

TEST(TlsVerify, MinimumVersion) {
    session_options o;
    o.server_cert = certs().mx;
    o.client_trust = certs().ca_file;
    o.server_max_version = TLS1_2_VERSION;
    auto t = connect(o);
    auto p = policy(tls_level::encrypt);
    p.min_version = config::tls_version::v1_3;
    expect_refused(outbound(*t, p), "TLS version TLSv1.2 below the required 1.3");
    expect_refused(outbound(*t, [&] { auto q = policy(tls_level::ca); q.min_version = p.min_version; return q; }()),
                   "TLS version TLSv1.2 below the required 1.3");
    p.min_version = config::tls_version::v1_2;
    expect_ok(outbound(*t, p));
    p.min_version = config::tls_version::v1_0;
    expect_ok(outbound(*t, p));

    auto t13 = connect_to(certs().mx);
    p.min_version = config::tls_version::v1_3;
    expect_ok(outbound(*t13, p));
}

TEST(TlsVerify, MinimumCipherBits) {
    session_options o;
    o.server_cert = certs().mx;
    o.client_trust = certs().ca_file;
    o.server_max_version = TLS1_2_VERSION;
    o.server_tls12_ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
    auto t = connect(o);
    auto p = policy(tls_level::encrypt);
    const tls_verdict ok128 = outbound(*t, p);
    expect_ok(ok128);
    EXPECT_EQ(ok128.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
    EXPECT_EQ(ok128.bits, 128);
    p.min_cipher_bits = 256;
    expect_refused(outbound(*t, p), "cipher strength 128 bits below the required 256");
    // The server side sees the same session.
    expect_refused(inbound(*t, p), "cipher strength 128 bits below the required 256");
}

// ---- ca -------------------------------------------------------------------------------

TEST(TlsVerify, CaAcceptsChainWithoutNameCheck) {
    auto t = connect_to(certs().mx);
    const tls_verdict v = outbound(*t, policy(tls_level::ca, {"mx.other.test"}));
    expect_ok(v);
    EXPECT_EQ(v.trust, peer_trust::trusted);  // chain ok, name does not match: not "verified"
}

TEST(TlsVerify, CaRefusesSelfSigned) {
    auto t = connect_to(certs().self_signed);
    const tls_verdict v = outbound(*t, policy(tls_level::ca));
    expect_refused(v, "certificate verification failed: self-signed certificate");
    EXPECT_EQ(v.trust, peer_trust::untrusted);
    // Also through the policy's own trust store.
    expect_refused(outbound(*t, policy(tls_level::ca, {}, certs().ca_file)),
                   "certificate verification failed: self-signed certificate");
}

TEST(TlsVerify, CaRefusesExpired) {
    auto t = connect_to(certs().expired);
    expect_refused(outbound(*t, policy(tls_level::ca)), "certificate verification failed: certificate has expired");
    expect_refused(outbound(*t, policy(tls_level::ca, {}, certs().ca_file)),
                   "certificate verification failed: certificate has expired");
    expect_refused(outbound(*t, policy(tls_level::ca_name, {"mx.partner.test"})),
                   "certificate verification failed: certificate has expired");
}

TEST(TlsVerify, CaRefusesUnknownIssuer) {
    auto t = connect_to(certs().mx, certs().other_ca_file);
    // The server sent only its leaf: OpenSSL's message for a one-certificate chain.
    expect_refused(outbound(*t, policy(tls_level::ca)),
                   "certificate verification failed: unable to verify the first certificate");
}

TEST(TlsVerify, CaThroughIntermediate) {
    session_options o;
    o.server_cert = certs().via_intermediate;
    o.server_chain = {certs().intermediate};
    o.client_trust = certs().ca_file;
    auto t = connect(o);
    expect_ok(outbound(*t, policy(tls_level::ca_name, {"mx.partner.test"})));
    expect_ok(outbound(*t, policy(tls_level::ca_name, {"mx.partner.test"}, certs().ca_file)));
    // Without the intermediate in the handshake, the chain cannot be built.
    o.server_chain.clear();
    auto bare = connect(o);
    expect_refused(outbound(*bare, policy(tls_level::ca, {}, certs().ca_file)),
                   "certificate verification failed: unable to get local issuer certificate");
}

// The profile's ca_file, not the store the handshake used, decides.
TEST(TlsVerify, PolicyCaFileOverridesHandshakeStore) {
    // Handshake store: another CA (OpenSSL's result fails); the policy trusts the issuer.
    auto t = connect_to(certs().mx, certs().other_ca_file);
    EXPECT_NE(SSL_get_verify_result(t->client.get()), X509_V_OK);
    expect_ok(outbound(*t, policy(tls_level::ca, {}, certs().ca_file)));
    expect_ok(outbound(*t, policy(tls_level::ca_name, {"mx.partner.test"}, certs().ca_file)));
    // Handshake store: the issuer (OpenSSL's result passes); the policy trusts another CA only.
    auto u = connect_to(certs().mx, certs().ca_file);
    EXPECT_EQ(SSL_get_verify_result(u->client.get()), X509_V_OK);
    expect_ok(outbound(*u, policy(tls_level::ca)));
    expect_refused(outbound(*u, policy(tls_level::ca, {}, certs().other_ca_file)),
                   "certificate verification failed: unable to get local issuer certificate");
}

TEST(TlsVerify, UnreadableCaFileRefuses) {
    auto t = connect_to(certs().mx);
    const std::string missing = certs().dir.path + "/missing.pem";
    expect_refused(outbound(*t, policy(tls_level::ca, {}, missing)),
                   "certificate verification failed: cannot load CA file " + missing + ": not found");
    const std::string junk = write_file(certs().dir.path + "/junk.pem", "not a certificate\n");
    const tls_verdict v = outbound(*t, policy(tls_level::ca, {}, junk));
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.reason.rfind("certificate verification failed: cannot load CA file " + junk, 0), 0u) << v.reason;
    // Opportunistic: reported, not enforced.
    const tls_verdict m = outbound(*t, policy(tls_level::may, {}, missing));
    expect_ok(m);
    EXPECT_EQ(m.trust, peer_trust::untrusted);
}

TEST(TlsVerify, ChangedCaFileIsReloaded) {
    auto t = connect_to(certs().mx);
    const std::string path = certs().dir.path + "/changing.pem";
    write_file(path, to_pem(certs().other_ca.x509()));
    expect_refused(outbound(*t, policy(tls_level::ca, {}, path)),
                   "certificate verification failed: unable to get local issuer certificate");
    write_file(path, to_pem(certs().ca.x509()));
    expect_ok(outbound(*t, policy(tls_level::ca, {}, path)));
}

// ---- ca: a server certificate must be fit for a TLS server (RFC 5280 4.2.1.12) -----------

const char* const unsuitable_purpose = "certificate verification failed: unsuitable certificate purpose";

// OpenSSL's handshake checks the server's chain with purpose ssl_server; evaluate() does the
// same against a policy ca_file (tls.ca_file or the profile's), so the verdict never depends
// on which store is configured.
TEST(TlsVerify, CaRefusesLeafWithoutServerAuth) {
    for (const char* eku : {"clientAuth", "emailProtection", "codeSigning", "clientAuth,emailProtection"}) {
        SCOPED_TRACE(eku);
        const cert_and_key leaf = make_cert(pki::leaf("mx.partner.test", {"mx.partner.test"}, eku), &certs().ca);
        auto t = connect_to(leaf);  // the handshake store is the CA: OpenSSL's own check
        EXPECT_EQ(SSL_get_verify_result(t->client.get()), X509_V_ERR_INVALID_PURPOSE);
        expect_refused(outbound(*t, policy(tls_level::ca)), unsuitable_purpose);
        const tls_verdict v = outbound(*t, policy(tls_level::ca, {}, certs().ca_file));
        expect_refused(v, unsuitable_purpose);
        EXPECT_EQ(v.trust, peer_trust::untrusted);
        expect_refused(outbound(*t, policy(tls_level::ca_name, {"mx.partner.test"}, certs().ca_file)),
                       unsuitable_purpose);
        // Also when the handshake store does not know the CA and only the profile's does.
        auto u = connect_to(leaf, certs().other_ca_file);
        expect_refused(outbound(*u, policy(tls_level::ca, {}, certs().ca_file)), unsuitable_purpose);
        // Opportunistic: reported as untrusted, not enforced.
        const tls_verdict m = outbound(*t, policy(tls_level::may, {"mx.partner.test"}, certs().ca_file));
        expect_ok(m);
        EXPECT_EQ(m.trust, peer_trust::untrusted);
        EXPECT_EQ(m.detail, unsuitable_purpose);
    }
}

// A session with a serverAuth leaf for mx.partner.test under an intermediate CA whose own
// extendedKeyUsage is `eku`, sent along in the handshake; the client context trusts the root.
std::unique_ptr<tls_pair> connect_via_intermediate(const std::string& eku) {
    cert_spec i;
    i.cn = "Postern Test Intermediate " + eku;
    i.ca = true;
    i.eku = eku;
    const cert_and_key intermediate = make_cert(i, &certs().ca);
    session_options o;
    o.server_cert = make_cert(pki::leaf("mx.partner.test", {"mx.partner.test"}), &intermediate);
    o.server_chain = {intermediate};
    o.client_trust = certs().ca_file;
    return connect(o);
}

// An issuing CA restricted by its own EKU to other uses (an S/MIME or user CA) cannot vouch
// for a server, even when the leaf says serverAuth.
TEST(TlsVerify, CaRefusesIntermediateRestrictedToOtherPurposes) {
    for (const char* eku : {"emailProtection", "clientAuth", "emailProtection,clientAuth"}) {
        SCOPED_TRACE(eku);
        auto t = connect_via_intermediate(eku);
        EXPECT_EQ(SSL_get_verify_result(t->client.get()), X509_V_ERR_INVALID_PURPOSE);
        expect_refused(outbound(*t, policy(tls_level::ca)), unsuitable_purpose);
        expect_refused(outbound(*t, policy(tls_level::ca, {}, certs().ca_file)), unsuitable_purpose);
        expect_refused(outbound(*t, policy(tls_level::ca_name, {"mx.partner.test"}, certs().ca_file)),
                       unsuitable_purpose);
    }
}

// What a server certificate may carry: serverAuth (with other uses), or no EKU at all; an
// intermediate whose EKU includes serverAuth. Accepted through either store.
TEST(TlsVerify, CaAcceptsServerAuthLeaves) {
    std::vector<cert_and_key> leaves = {certs().mx};
    for (const char* eku : {"serverAuth,clientAuth", "clientAuth,serverAuth,emailProtection", ""})
        leaves.push_back(make_cert(pki::leaf("mx.partner.test", {"mx.partner.test"}, eku), &certs().ca));
    for (const auto& leaf : leaves) {
        auto t = connect_to(leaf);
        expect_ok(outbound(*t, policy(tls_level::ca)));
        expect_ok(outbound(*t, policy(tls_level::ca, {}, certs().ca_file)));
        const tls_verdict v = outbound(*t, policy(tls_level::ca_name, {"mx.partner.test"}, certs().ca_file));
        expect_ok(v);
        EXPECT_EQ(v.trust, peer_trust::verified);
    }
    auto t = connect_via_intermediate("serverAuth,clientAuth");
    expect_ok(outbound(*t, policy(tls_level::ca)));
    expect_ok(outbound(*t, policy(tls_level::ca_name, {"mx.partner.test"}, certs().ca_file)));
}

// ---- ca+name (RFC 6125 6.4) -------------------------------------------------------------

TEST(TlsVerify, CaNameMatches) {
    auto t = connect_to(certs().mx);
    const tls_verdict v = outbound(*t, policy(tls_level::ca_name, {"mx.partner.test", "partner.test"}));
    expect_ok(v);
    EXPECT_EQ(v.trust, peer_trust::verified);
    EXPECT_EQ(v.detail, "matched mx.partner.test");
    // Either name is enough; case does not matter; the absolute form is accepted.
    expect_ok(outbound(*t, policy(tls_level::ca_name, {"partner.test", "MX.Partner.TEST"})));
    expect_ok(outbound(*t, policy(tls_level::ca_name, {"mx.partner.test."})));
}

TEST(TlsVerify, CaNameRefusesWrongName) {
    auto t = connect_to(certs().mx);
    const tls_verdict v = outbound(*t, policy(tls_level::ca_name, {"mx.other.test", "other.test"}));
    expect_refused(v, "certificate name mismatch: expected mx.other.test or other.test");
    EXPECT_EQ(v.trust, peer_trust::trusted);
    expect_refused(outbound(*t, policy(tls_level::ca_name, {"a.test", "b.test", "c.test"})),
                   "certificate name mismatch: expected a.test, b.test or c.test");
    expect_refused(outbound(*t, policy(tls_level::ca_name, {"partner.test"})),
                   "certificate name mismatch: expected partner.test");
    // A policy without names never passes the name check.
    expect_refused(outbound(*t, policy(tls_level::ca_name)), "certificate name mismatch: no names to match");
}

TEST(TlsVerify, CaNameChecksChainFirst) {
    auto t = connect_to(certs().self_signed);
    expect_refused(outbound(*t, policy(tls_level::ca_name, {"mx.partner.test"})),
                   "certificate verification failed: self-signed certificate");
}

// The profile's peer_names replace the MX host name and the recipient domain: the resolved
// policy's names are all evaluate() looks at.
TEST(TlsVerify, PeerNamesOverride) {
    const cert_and_key relay = make_cert(pki::leaf("mail.partner-relay.test", {"mail.partner-relay.test"}), &certs().ca);
    auto t = connect_to(relay);
    expect_refused(outbound(*t, policy(tls_level::ca_name, {"mx.partner.test", "partner.test"})),
                   "certificate name mismatch: expected mx.partner.test or partner.test");
    expect_ok(outbound(*t, policy(tls_level::ca_name, {"mail.partner-relay.test"})));
    expect_ok(outbound(*t, policy(tls_level::ca_name, {"*.partner-relay.test"})));
}

TEST(TlsVerify, WildcardCertificate) {
    auto t = connect_to(certs().wildcard);
    expect_ok(outbound(*t, policy(tls_level::ca_name, {"mx.partner.test"})));
    expect_ok(outbound(*t, policy(tls_level::ca_name, {"MX2.PARTNER.TEST"})));
    // One label only, and not the bare domain.
    expect_refused(outbound(*t, policy(tls_level::ca_name, {"a.mx.partner.test"})),
                   "certificate name mismatch: expected a.mx.partner.test");
    expect_refused(outbound(*t, policy(tls_level::ca_name, {"partner.test"})),
                   "certificate name mismatch: expected partner.test");
}

// peer_names = ["*.partner.test"]: any single-label host under partner.test.
TEST(TlsVerify, WildcardReferenceName) {
    const auto p = policy(tls_level::ca_name, {"*.partner.test"});
    auto mx = connect_to(certs().mx);
    expect_ok(outbound(*mx, p));
    auto wc = connect_to(certs().wildcard);
    expect_ok(outbound(*wc, p));
    const cert_and_key deep = make_cert(pki::leaf("a.mx.partner.test", {"a.mx.partner.test"}), &certs().ca);
    auto d = connect_to(deep);
    expect_refused(outbound(*d, p), "certificate name mismatch: expected *.partner.test");
    const cert_and_key bare = make_cert(pki::leaf("partner.test", {"partner.test"}), &certs().ca);
    auto b = connect_to(bare);
    expect_refused(outbound(*b, p), "certificate name mismatch: expected *.partner.test");
    // CN-only certificates are judged by their CN.
    auto cn = connect_to(certs().cn_only);
    expect_ok(outbound(*cn, p));
}

TEST(TlsVerify, CommonNameOnlyWithoutSan) {
    auto cn = connect_to(certs().cn_only);
    expect_ok(outbound(*cn, policy(tls_level::ca_name, {"mx.partner.test"})));
    // A SAN dNSName present: the CN is ignored (RFC 6125 6.4.4).
    auto san = connect_to(certs().san_other_cn);
    expect_refused(outbound(*san, policy(tls_level::ca_name, {"mx.partner.test"})),
                   "certificate name mismatch: expected mx.partner.test");
    expect_ok(outbound(*san, policy(tls_level::ca_name, {"other.partner.test"})));
}

// certificate_names() directly, on certificates that need no handshake.
TEST(TlsVerify, NameMatchingRules) {
    const auto cert = [](std::vector<std::string> dns, std::string cn = "ignored.test") {
        cert_spec s;
        s.cn = std::move(cn);
        s.dns = std::move(dns);
        return make_cert(s, &certs().ca);
    };
    const auto two_label = cert({"*.test"});
    EXPECT_FALSE(certificate_names(two_label.x509(), "a.b.test"));  // never more than one label
    const auto partial = cert({"f*.x.test", "*o.y.test"});
    EXPECT_FALSE(certificate_names(partial.x509(), "foo.x.test"));  // partial wildcards never match
    EXPECT_FALSE(certificate_names(partial.x509(), "foo.y.test"));
    EXPECT_FALSE(certificate_names(partial.x509(), "*.x.test"));
    const auto inner = cert({"mx.*.partner.test"});
    EXPECT_FALSE(certificate_names(inner.x509(), "mx.a.partner.test"));
    const auto multi = cert({"a.test", "*.b.test", "C.Test"});
    EXPECT_TRUE(certificate_names(multi.x509(), "a.test"));
    EXPECT_TRUE(certificate_names(multi.x509(), "x.b.test"));
    EXPECT_TRUE(certificate_names(multi.x509(), "c.test"));
    EXPECT_TRUE(certificate_names(multi.x509(), "*.b.test"));
    EXPECT_FALSE(certificate_names(multi.x509(), "b.test"));
    EXPECT_FALSE(certificate_names(multi.x509(), "y.x.b.test"));
    EXPECT_FALSE(certificate_names(multi.x509(), "ignored.test"));  // CN ignored with SAN
    EXPECT_TRUE(certificate_names(multi.x509(), "*.test"));  // a.test: one label under test
    // References that are not plain names or "*.suffix" never match.
    EXPECT_FALSE(certificate_names(multi.x509(), ".b.test"));  // OpenSSL would match any subdomain
    EXPECT_FALSE(certificate_names(multi.x509(), ""));
    EXPECT_FALSE(certificate_names(multi.x509(), "*"));
    EXPECT_FALSE(certificate_names(multi.x509(), "x*.b.test"));
    EXPECT_FALSE(certificate_names(multi.x509(), "*.*.test"));
    EXPECT_FALSE(certificate_names(nullptr, "a.test"));
    // A reference wildcard against a CN-only certificate, and against wildcard identifiers.
    const auto cn_only = cert({}, "MX.Partner.Test");
    EXPECT_TRUE(certificate_names(cn_only.x509(), "*.partner.test"));
    EXPECT_TRUE(certificate_names(cn_only.x509(), "mx.partner.test"));
    const auto deep_wc = cert({"*.mx.partner.test"});
    EXPECT_FALSE(certificate_names(deep_wc.x509(), "*.partner.test"));
    EXPECT_FALSE(certificate_names(two_label.x509(), "*.partner.test"));
    // No SAN extension at all: the CN is used (SPEC §1.3; see CommonNameOnlyWithoutAnySan).
    cert_spec no_san;
    no_san.cn = "mx.partner.test";
    const auto plain = make_cert(no_san, &certs().ca);
    EXPECT_TRUE(certificate_names(plain.x509(), "mx.partner.test"));
}

// SPEC §1.3 "CN only when there is no SAN": a SAN extension without dNSName (iPAddress only)
// still turns the CN off, for plain and wildcard references alike. (OpenSSL's own fallback, and
// RFC 6125 6.4.4, would use the CN there.)
TEST(TlsVerify, CommonNameOnlyWithoutAnySan) {
    cert_spec s;
    s.cn = "mx.partner.test";
    s.ips = {"192.0.2.1"};
    const auto ip_san = make_cert(s, &certs().ca);
    EXPECT_FALSE(certificate_names(ip_san.x509(), "mx.partner.test"));
    EXPECT_FALSE(certificate_names(ip_san.x509(), "MX.Partner.Test."));
    EXPECT_FALSE(certificate_names(ip_san.x509(), "*.partner.test"));
    EXPECT_TRUE(certificate_names(ip_san.x509(), "192.0.2.1"));
    s.ips.clear();  // the same certificate without any SAN: the CN is its name
    const auto no_san = make_cert(s, &certs().ca);
    EXPECT_TRUE(certificate_names(no_san.x509(), "mx.partner.test"));
    EXPECT_TRUE(certificate_names(no_san.x509(), "*.partner.test"));
    EXPECT_FALSE(certificate_names(no_san.x509(), "192.0.2.1"));

    // Through a session: ca+name (evaluate) and the opportunistic log (check_peer).
    auto t = connect_to(ip_san);
    const tls_verdict v = outbound(*t, policy(tls_level::ca_name, {"mx.partner.test"}));
    expect_refused(v, "certificate name mismatch: expected mx.partner.test");
    EXPECT_EQ(v.trust, peer_trust::trusted);
    EXPECT_EQ(check_peer(t->client.get(), {"mx.partner.test"}).trust, peer_trust::trusted);
    auto u = connect_to(no_san);
    expect_ok(outbound(*u, policy(tls_level::ca_name, {"mx.partner.test"})));
    EXPECT_EQ(check_peer(u->client.get(), {"mx.partner.test"}).trust, peer_trust::verified);
}

// A reference that is an IP address (relay_to = ["10.0.0.5:25"], a profile host by address)
// is an IP-ID: only an iPAddress SAN carries it (RFC 5280 4.2.1.6), never a dNSName or CN
// spelling the address.
TEST(TlsVerify, IpReferenceMatchesIpAddressSanOnly) {
    const auto cert = [](std::vector<std::string> dns, std::vector<std::string> ips, std::string cn = "mx.partner.test") {
        cert_spec s;
        s.cn = std::move(cn);
        s.dns = std::move(dns);
        s.ips = std::move(ips);
        return make_cert(s, &certs().ca);
    };
    const auto ip4 = cert({}, {"10.0.0.5"});
    EXPECT_TRUE(certificate_names(ip4.x509(), "10.0.0.5"));
    EXPECT_TRUE(certificate_names(ip4.x509(), "[10.0.0.5]"));  // an address literal
    EXPECT_FALSE(certificate_names(ip4.x509(), "10.0.0.6"));
    EXPECT_FALSE(certificate_names(ip4.x509(), "10.0.0"));
    const auto mixed = cert({"mx.partner.test"}, {"10.0.0.5"});
    EXPECT_TRUE(certificate_names(mixed.x509(), "10.0.0.5"));
    EXPECT_TRUE(certificate_names(mixed.x509(), "mx.partner.test"));
    // The address written as a dNSName, as a wildcard over it, or as the CN: no IP identity.
    const auto as_dns = cert({"10.0.0.5", "*.0.0.5"}, {});
    EXPECT_FALSE(certificate_names(as_dns.x509(), "10.0.0.5"));
    EXPECT_FALSE(certificate_names(as_dns.x509(), "1.0.0.5"));
    EXPECT_FALSE(certificate_names(as_dns.x509(), "[10.0.0.5]"));
    const auto as_cn = cert({}, {}, "10.0.0.5");
    EXPECT_FALSE(certificate_names(as_cn.x509(), "10.0.0.5"));
    // Malformed addresses are no host names either (RFC 1123 2.1: no all-digit last label).
    const auto odd = cert({"10.1", "010.0.0.5"}, {});
    EXPECT_FALSE(certificate_names(odd.x509(), "10.1"));
    EXPECT_FALSE(certificate_names(odd.x509(), "010.0.0.5"));
    // IPv6, compared as addresses whatever the spelling.
    const auto ip6 = cert({}, {"2001:db8::5"});
    EXPECT_TRUE(certificate_names(ip6.x509(), "2001:db8::5"));
    EXPECT_TRUE(certificate_names(ip6.x509(), "2001:DB8:0:0::5"));
    EXPECT_TRUE(certificate_names(ip6.x509(), "[IPv6:2001:db8::5]"));
    EXPECT_FALSE(certificate_names(ip6.x509(), "2001:db8::6"));
    EXPECT_FALSE(certificate_names(ip6.x509(), "10.0.0.5"));
    EXPECT_FALSE(certificate_names(ip4.x509(), "::ffff:10.0.0.5"));
    const auto ip6_as_dns = cert({"2001:db8::5"}, {});
    EXPECT_FALSE(certificate_names(ip6_as_dns.x509(), "2001:db8::5"));

    // Through a session: ca+name (evaluate) and the opportunistic log (check_peer).
    auto t = connect_to(ip4);
    const tls_verdict v = outbound(*t, policy(tls_level::ca_name, {"10.0.0.5", "partner.test"}));
    expect_ok(v);
    EXPECT_EQ(v.trust, peer_trust::verified);
    EXPECT_EQ(v.detail, "matched 10.0.0.5");
    const peer_check c = check_peer(t->client.get(), {"10.0.0.5", "partner.test"});
    EXPECT_EQ(c.trust, peer_trust::verified);
    EXPECT_EQ(c.detail, "matched 10.0.0.5");
    auto d = connect_to(as_dns);
    expect_refused(outbound(*d, policy(tls_level::ca_name, {"10.0.0.5", "partner.test"})),
                   "certificate name mismatch: expected 10.0.0.5 or partner.test");
    EXPECT_EQ(check_peer(d->client.get(), {"10.0.0.5", "partner.test"}).trust, peer_trust::trusted);
    auto six = connect_to(ip6);
    expect_ok(outbound(*six, policy(tls_level::ca_name, {"2001:db8::5"})));
    EXPECT_EQ(check_peer(six->client.get(), {"2001:db8::5"}).trust, peer_trust::verified);
    auto six_dns = connect_to(ip6_as_dns);
    expect_refused(outbound(*six_dns, policy(tls_level::ca_name, {"2001:db8::5"})),
                   "certificate name mismatch: expected 2001:db8::5");
}

// check_peer (opportunistic sessions) applies the same rules as certificate_names, reference
// wildcards included.
TEST(TlsVerify, CheckPeerUsesTheSameNameRules) {
    auto t = connect_to(certs().mx);
    EXPECT_EQ(check_peer(t->client.get(), {"*.partner.test"}).trust, peer_trust::verified);
    EXPECT_EQ(check_peer(t->client.get(), {"MX.Partner.Test."}).trust, peer_trust::verified);
    const peer_check c = check_peer(t->client.get(), {"partner.test", "*.other.test"});
    EXPECT_EQ(c.trust, peer_trust::trusted);
    EXPECT_EQ(c.detail, "certificate does not name partner.test, *.other.test");
    auto s = connect_to(certs().self_signed);
    EXPECT_EQ(check_peer(s->client.get(), {"mx.partner.test"}).trust, peer_trust::untrusted);
}

// ---- fingerprint ------------------------------------------------------------------------

std::string sha256_hex(const unsigned char* p, size_t n) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(p, n, md);
    std::string out;
    char buf[3];
    for (unsigned char b : md) {
        std::snprintf(buf, sizeof buf, "%02x", b);
        out += buf;
    }
    return out;
}

// Independent computations: DER of the certificate, and i2d_PUBKEY of its key.
std::string cert_hash(X509* x) {
    unsigned char* der = nullptr;
    const int n = i2d_X509(x, &der);
    std::string h = sha256_hex(der, static_cast<size_t>(n));
    OPENSSL_free(der);
    return h;
}
std::string key_hash(X509* x) {
    unsigned char* der = nullptr;
    const int n = i2d_PUBKEY(X509_get0_pubkey(x), &der);
    std::string h = sha256_hex(der, static_cast<size_t>(n));
    OPENSSL_free(der);
    return h;
}

TEST(TlsVerify, FingerprintHelpers) {
    X509* x = certs().mx.x509();
    EXPECT_EQ(fingerprint_sha256(x), cert_hash(x));
    EXPECT_EQ(spki_sha256(x), key_hash(x));
    EXPECT_EQ(fingerprint_sha256(x).size(), 64u);
    EXPECT_NE(fingerprint_sha256(x), spki_sha256(x));
    EXPECT_EQ(fingerprint_sha256(nullptr), "");
    EXPECT_EQ(spki_sha256(nullptr), "");
}

profile::resolved_tls_policy pins(std::vector<std::string> fps) {
    auto p = policy(tls_level::fingerprint);
    p.fingerprints = std::move(fps);
    return p;
}

TEST(TlsVerify, FingerprintPins) {
    // No chain check: a self-signed certificate is fine when pinned.
    auto t = connect_to(certs().self_signed);
    X509* x = certs().self_signed.x509();
    const std::string wrong(64, 'a');
    const tls_verdict v = outbound(*t, pins({"sha256:" + wrong, "sha256:" + fingerprint_sha256(x)}));
    expect_ok(v);
    EXPECT_EQ(v.trust, peer_trust::verified);
    EXPECT_EQ(v.detail, "pin sha256:" + fingerprint_sha256(x));
    expect_refused(outbound(*t, pins({"sha256:" + wrong})), "certificate fingerprint does not match any pin");
    expect_ok(outbound(*t, pins({"spki-sha256:" + spki_sha256(x)})));
    expect_refused(outbound(*t, pins({"spki-sha256:" + wrong})), "certificate fingerprint does not match any pin");
    // The kinds are not interchangeable.
    expect_refused(outbound(*t, pins({"spki-sha256:" + fingerprint_sha256(x)})),
                   "certificate fingerprint does not match any pin");
    expect_refused(outbound(*t, pins({"sha256:" + spki_sha256(x)})), "certificate fingerprint does not match any pin");
    // Another certificate's pin.
    expect_refused(outbound(*t, pins({"sha256:" + fingerprint_sha256(certs().mx.x509())})),
                   "certificate fingerprint does not match any pin");
    // No pins at all never passes.
    expect_refused(outbound(*t, pins({})), "certificate fingerprint does not match any pin");
    // Upper case and colons, as someone might write them.
    std::string colons;
    for (size_t i = 0; i < 64; i += 2) colons += (i ? ":" : "") + fingerprint_sha256(x).substr(i, 2);
    for (char& c : colons) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    expect_ok(outbound(*t, pins({"SHA256:" + colons})));
    // Expired but pinned: the pin is the whole check.
    auto e = connect_to(certs().expired);
    expect_ok(outbound(*e, pins({"sha256:" + fingerprint_sha256(certs().expired.x509())})));
}

// A public-key pin survives a renewed certificate with the same key; a certificate pin does not.
TEST(TlsVerify, SpkiPinSurvivesRenewal) {
    cert_spec s = pki::leaf("mx.partner.test", {"mx.partner.test"});
    s.key = certs().mx.key;
    const cert_and_key renewed = make_cert(s, &certs().ca);
    auto t = connect_to(renewed);
    expect_ok(outbound(*t, pins({"spki-sha256:" + spki_sha256(certs().mx.x509())})));
    expect_refused(outbound(*t, pins({"sha256:" + fingerprint_sha256(certs().mx.x509())})),
                   "certificate fingerprint does not match any pin");
}

// ---- the trust judged again for another recipient domain's names -------------------------

// A session judged for one domain and reused for another (or shared by both in one transaction)
// reports what evaluate() would for the other domain's names: the chain's verdict is kept, the
// name decides between trusted and verified; an untrusted chain and a pin ignore the names.
TEST(TlsVerify, TrustForNamesJudgesTheNewNames) {
    auto t = connect_to(certs().mx);
    SSL* ssl = t->client.get();
    const auto first = policy(tls_level::may, {"relay.test", "partner.test", "mx.partner.test"});
    const auto other = policy(tls_level::may, {"relay.test", "other.test"});
    ASSERT_EQ(outbound(*t, first).trust, peer_trust::verified);
    ASSERT_EQ(outbound(*t, other).trust, peer_trust::trusted);
    EXPECT_EQ(trust_for_names(ssl, peer_trust::verified, other), peer_trust::trusted);
    EXPECT_EQ(trust_for_names(ssl, peer_trust::trusted, first), peer_trust::verified);
    EXPECT_EQ(trust_for_names(ssl, peer_trust::verified, first), peer_trust::verified);
    for (tls_level l : {tls_level::encrypt, tls_level::ca}) {
        auto p = other;
        p.level = l;
        EXPECT_EQ(trust_for_names(ssl, peer_trust::verified, p), outbound(*t, p).trust) << profile::to_string(l);
    }
    // An untrusted chain never becomes trusted because a name matches.
    auto self = connect_to(certs().self_signed);
    ASSERT_EQ(outbound(*self, first).trust, peer_trust::untrusted);
    EXPECT_EQ(trust_for_names(self->client.get(), peer_trust::untrusted, first), peer_trust::untrusted);
    // A pin's verdict does not depend on the names.
    auto pinned = pins({"sha256:" + fingerprint_sha256(certs().self_signed.x509())});
    pinned.names = {"other.test"};
    EXPECT_EQ(trust_for_names(self->client.get(), peer_trust::verified, pinned), peer_trust::verified);
}

// ---- dane --------------------------------------------------------------------------------

TEST(TlsVerify, DaneIsRefusedExplicitly) {
    auto t = connect_to(certs().mx);
    const tls_verdict v = outbound(*t, policy(tls_level::dane, {"mx.partner.test"}));
    expect_refused(v, "DANE is not implemented yet");
    EXPECT_EQ(v.version, "TLSv1.3");  // facts still reported
    expect_refused(inbound(*t, policy(tls_level::dane)), "DANE is not implemented yet");
}

// ---- inbound: the client certificate ----------------------------------------------------

TEST(TlsVerifyInbound, NoClientCertificate) {
    session_options o;
    o.server_cert = certs().mx;
    o.client_trust = certs().ca_file;
    o.request_client_cert = true;
    auto t = connect(o);
    for (tls_level l : {tls_level::ca, tls_level::ca_name, tls_level::fingerprint}) {
        auto p = policy(l, {"client.partner.test"}, l == tls_level::fingerprint ? "" : certs().ca_file);
        p.fingerprints = {"sha256:" + std::string(64, 'a')};
        const tls_verdict v = inbound(*t, p);
        expect_refused(v, "no client certificate presented");
        EXPECT_EQ(v.trust, peer_trust::untrusted);
    }
    for (tls_level l : {tls_level::none, tls_level::may, tls_level::encrypt}) expect_ok(inbound(*t, policy(l)));
}

TEST(TlsVerifyInbound, ClientCertificateWithoutClientAuthEku) {
    for (const cert_and_key* c : {&certs().client_server_auth, &certs().client_no_eku}) {
        session_options o;
        o.server_cert = certs().mx;
        o.client_trust = certs().ca_file;
        o.request_client_cert = true;
        o.server_trust = certs().ca_file;  // so that OpenSSL's own (purpose-bound) check runs
        o.client_cert = *c;
        auto t = connect(o);
        if (c == &certs().client_server_auth) {  // the handshake-time result demands clientAuth...
            EXPECT_EQ(SSL_get_verify_result(t->server.get()), X509_V_ERR_INVALID_PURPOSE);
        }
        // ...evaluate() does not.
        const tls_verdict v = inbound(*t, policy(tls_level::ca, {}, certs().ca_file));
        expect_ok(v);
        EXPECT_EQ(v.trust, peer_trust::trusted);
        expect_ok(inbound(*t, policy(tls_level::ca_name, {"client.partner.test"}, certs().ca_file)));
        expect_refused(inbound(*t, policy(tls_level::ca_name, {"other.partner.test"}, certs().ca_file)),
                       "certificate name mismatch: expected other.partner.test");
        expect_refused(inbound(*t, policy(tls_level::ca, {}, certs().other_ca_file)),
                       "certificate verification failed: self-signed certificate in certificate chain");
        // Without a ca_file the system store decides, never the server context's store (the
        // client's OpenSSL sent our test root along, built from its own store).
        expect_refused(inbound(*t, policy(tls_level::ca)),
                       "certificate verification failed: self-signed certificate in certificate chain");
    }
}

// The outbound purpose check does not reach inbound: a clientAuth-only certificate (refused as
// a server certificate, CaRefusesLeafWithoutServerAuth) is a good client certificate, and so
// is one with only emailProtection (purpose-independent, docs/security.md).
TEST(TlsVerifyInbound, ClientCertificatePurposeStaysUnchecked) {
    for (const char* eku : {"clientAuth", "emailProtection"}) {
        SCOPED_TRACE(eku);
        session_options o;
        o.server_cert = certs().mx;
        o.client_trust = certs().ca_file;
        o.request_client_cert = true;
        o.client_cert = make_cert(pki::leaf("client.partner.test", {"client.partner.test"}, eku), &certs().ca);
        auto t = connect(o);
        const tls_verdict v = inbound(*t, policy(tls_level::ca, {}, certs().ca_file));
        expect_ok(v);
        EXPECT_EQ(v.trust, peer_trust::trusted);
        expect_ok(inbound(*t, policy(tls_level::ca_name, {"client.partner.test"}, certs().ca_file)));
    }
}

TEST(TlsVerifyInbound, ClientCertificateChecks) {
    session_options o;
    o.server_cert = certs().mx;
    o.client_trust = certs().ca_file;
    o.request_client_cert = true;
    o.client_cert = certs().client_self_signed;
    auto t = connect(o);
    expect_refused(inbound(*t, policy(tls_level::ca, {}, certs().ca_file)),
                   "certificate verification failed: self-signed certificate");
    X509* x = certs().client_self_signed.x509();
    expect_ok(inbound(*t, pins({"sha256:" + fingerprint_sha256(x)})));
    expect_ok(inbound(*t, pins({"spki-sha256:" + spki_sha256(x)})));
    expect_refused(inbound(*t, pins({"sha256:" + fingerprint_sha256(certs().mx.x509())})),
                   "certificate fingerprint does not match any pin");
    expect_ok(inbound(*t, policy(tls_level::encrypt)));

    // A client sending its intermediate: the server side builds the chain from it.
    cert_spec s = pki::leaf("client.partner.test", {"client.partner.test"}, "clientAuth");
    o.client_cert = make_cert(s, &certs().intermediate);
    o.client_chain = {certs().intermediate};
    auto i = connect(o);
    expect_ok(inbound(*i, policy(tls_level::ca_name, {"client.partner.test"}, certs().ca_file)));
    // TLS 1.2 with a client certificate, and the version floor inbound.
    o.server_max_version = TLS1_2_VERSION;
    auto t12 = connect(o);
    expect_ok(inbound(*t12, policy(tls_level::ca, {}, certs().ca_file)));
    auto p13 = policy(tls_level::ca, {}, certs().ca_file);
    p13.min_version = config::tls_version::v1_3;
    expect_refused(inbound(*t12, p13), "TLS version TLSv1.2 below the required 1.3");
}

// On the client side without a policy ca_file, OpenSSL's handshake-time result is used (the
// client context's store is this policy's store); that result is bound to serverAuth, and so
// is the check against a policy ca_file (CaRefusesLeafWithoutServerAuth).
TEST(TlsVerify, ClientSideWithoutCaFileUsesHandshakeResult) {
    const cert_and_key client_only =
        make_cert(pki::leaf("mx.partner.test", {"mx.partner.test"}, "clientAuth"), &certs().ca);
    auto t = connect_to(client_only);
    expect_refused(outbound(*t, policy(tls_level::ca)),
                   "certificate verification failed: unsuitable certificate purpose");
    expect_refused(outbound(*t, policy(tls_level::ca, {}, certs().ca_file)),
                   "certificate verification failed: unsuitable certificate purpose");
}

// evaluate() is called from many sessions at once; the trust-store cache must cope.
TEST(TlsVerify, ConcurrentEvaluations) {
    auto t = connect_to(certs().mx);
    auto u = connect_to(certs().self_signed);
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int i = 0; i < 8; ++i)
        threads.emplace_back([&, i] {
            for (int k = 0; k < 20; ++k) {
                const bool good = (i + k) % 2 == 0;
                const std::string& ca = (k % 3 == 0) ? certs().other_ca_file : certs().ca_file;
                const tls_verdict v =
                    evaluate((good ? t : u)->client.get(), policy(tls_level::ca_name, {"mx.partner.test"}, ca), false);
                const bool want = good && &ca == &certs().ca_file;
                if (v.ok != want) ++failures;
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace postern::tls::test
