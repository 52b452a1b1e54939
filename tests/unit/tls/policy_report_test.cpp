// tests/unit/tls/policy_report_test.cpp - the text of `postern tls-policy` (tls::format_report)
// and its exit-status rule (tls::would_deliver), on reports built by hand: every route kind,
// every DNS stop, every probe verdict. The format is documented in README.md; a change here is
// a change administrators' scripts see.
#include "tls/policy_report.hpp"

#include <gtest/gtest.h>

namespace postern::tls {
namespace {

using profile::tls_level;

profile::resolved_tls_policy partner_policy(tls_level level = tls_level::ca_name) {
    profile::resolved_tls_policy p;
    p.level = level;
    p.profile = "partner";
    p.step = profile::match_step::recipient_domain;
    p.why = "recipient domain partner.test matches recipient domain partner.test of profile partner; "
            "outbound tls = \"mandatory\", verify = \"ca+name\" -> ca+name";
    p.names = {"partner.test"};
    return p;
}

profile::resolved_tls_policy no_profile(tls_level level = tls_level::may) {
    profile::resolved_tls_policy p;
    p.level = level;
    p.why = "no profile matches recipient domain example.test; tls.opportunistic = true -> may";
    p.names = {"example.test"};
    return p;
}

host_report host(std::string name, std::string ip, std::uint16_t port, profile::resolved_tls_policy p,
                 std::uint16_t pref = 0) {
    host_report h;
    h.host = {std::move(name), pref, port};
    h.ip = std::move(ip);
    h.policy = std::move(p);
    return h;
}

policy_report static_report() {
    policy_report r;
    r.domain = "partner.test";
    r.where.how = delivery::route::kind::static_hosts;
    r.where.domain = "partner.test";
    r.where.hosts = {{"127.0.0.1", 2526}, {"mx.partner.test", 25}};
    r.where.source = "route partner.test";
    r.policy = partner_policy();
    auto p1 = partner_policy();
    p1.names = {"127.0.0.1", "partner.test"};
    r.hosts.push_back(host("127.0.0.1", "127.0.0.1", 2526, p1));
    auto p2 = partner_policy();
    p2.names = {"mx.partner.test", "partner.test"};
    r.hosts.push_back(host("mx.partner.test", "127.0.0.10", 25, p2));
    return r;
}

TEST(PolicyReport, StaticRouteWithProfile) {
    policy_report r = static_report();
    r.policy.ca_file = "/etc/postern/partner-ca.pem";
    EXPECT_EQ(format_report(r),
              "domain:   partner.test\n"
              "route:    static hosts 127.0.0.1:2526, mx.partner.test:25 (route partner.test)\n"
              "profile:  partner (matched by recipient domain)\n"
              "why:      recipient domain partner.test matches recipient domain partner.test of profile partner; "
              "outbound tls = \"mandatory\", verify = \"ca+name\" -> ca+name\n"
              "policy:   ca+name - mandatory TLS; the chain must verify to a trusted CA and the certificate must "
              "name the peer\n"
              "          min TLS 1.2; min cipher bits 128; trust store /etc/postern/partner-ca.pem\n"
              "hosts:\n"
              "  127.0.0.1[127.0.0.1]:2526 profile=partner policy=ca+name names=127.0.0.1,partner.test\n"
              "  mx.partner.test[127.0.0.10]:25 profile=partner policy=ca+name names=mx.partner.test,partner.test\n");
    EXPECT_TRUE(would_deliver(r));  // not probed: nothing says otherwise
}

// Postern never negotiates below TLS 1.2: a configured "1.0" is shown as what applies.
TEST(PolicyReport, MinimumBelowTls12ShownAsTheFloor) {
    policy_report r = static_report();
    r.policy.min_version = config::tls_version::v1_0;
    const std::string out = format_report(r);
    EXPECT_NE(out.find("min TLS 1.2 (1.0 configured; never below 1.2); min cipher bits 128"), std::string::npos) << out;
    r.policy.min_version = config::tls_version::v1_3;
    EXPECT_NE(format_report(r).find("min TLS 1.3; min cipher bits 128"), std::string::npos);
}

TEST(PolicyReport, MaildirNeedsNoTls) {
    policy_report r;
    r.domain = "localhost";
    r.where.how = delivery::route::kind::maildir;
    r.where.maildir = "/srv/mail/localhost";
    r.where.source = "domain localhost maildir";
    r.probed = true;
    EXPECT_EQ(format_report(r),
              "domain:   localhost\n"
              "route:    maildir /srv/mail/localhost (domain localhost maildir)\n"
              "verdict:  local delivery to maildir, no SMTP, TLS does not apply\n");
    EXPECT_TRUE(would_deliver(r));
}

policy_report mx_report() {
    policy_report r;
    r.domain = "example.test";
    r.where.how = delivery::route::kind::mx;
    r.where.domain = "example.test";
    r.where.port = 25;
    r.where.source = "mx";
    r.policy = no_profile();
    r.mx = delivery::mx_verdict::ok;
    return r;
}

TEST(PolicyReport, MxHostsInPreferenceOrderAndHostLevelProfiles) {
    policy_report r = mx_report();
    r.mx_note = "MX hosts that are IP addresses ignored: 192.0.2.1";
    auto a = no_profile();
    a.names = {"mxa.example.test", "example.test"};
    r.hosts.push_back(host("mxa.example.test", "127.0.0.2", 25, a, 10));
    // The second MX is selected by its name: another profile than the domain's.
    auto b = partner_policy(tls_level::ca);
    b.step = profile::match_step::host_name;
    b.why = "destination host mxb.example.test matches host mxb.example.test of profile partner; "
            "outbound tls = \"mandatory\", verify = \"ca\" -> ca";
    b.names = {"mxb.example.test", "example.test"};
    r.hosts.push_back(host("mxb.example.test", "127.0.0.3", 25, b, 20));
    host_report c;
    c.host = {"mxc.example.test", 30, 25};
    c.no_address = {delivery::outcome::kind::transient, "4.4.3", "cannot find an address for mxc.example.test"};
    r.hosts.push_back(c);
    EXPECT_EQ(format_report(r),
              "domain:   example.test\n"
              "route:    mx (delivery.port 25)\n"
              "profile:  none\n"
              "why:      no profile matches recipient domain example.test; tls.opportunistic = true -> may\n"
              "policy:   may - opportunistic TLS: STARTTLS when offered; the certificate is checked and logged, "
              "not enforced\n"
              "          trust store system\n"
              "mx:       MX records found; MX hosts that are IP addresses ignored: 192.0.2.1\n"
              "hosts:\n"
              "  mxa.example.test[127.0.0.2]:25 pref=10 profile=- policy=may names=mxa.example.test,example.test\n"
              "  mxb.example.test[127.0.0.3]:25 pref=20 profile=partner policy=ca names=mxb.example.test,example.test\n"
              "      why: destination host mxb.example.test matches host mxb.example.test of profile partner; "
              "outbound tls = \"mandatory\", verify = \"ca\" -> ca\n"
              "  mxc.example.test:25 pref=30 no address: 4.4.3 cannot find an address for mxc.example.test\n");
}

TEST(PolicyReport, DnsStopsDelivery) {
    struct row {
        delivery::mx_verdict mx;
        delivery::outcome stop;
        std::string text;
    };
    using k = delivery::outcome::kind;
    for (const row& t : {
             row{delivery::mx_verdict::null_mx,
                 {k::permanent, "5.1.10", "domain example.test does not accept mail (null MX, RFC 7505)"},
                 "mx:       null MX: the domain accepts no mail (RFC 7505)\n"
                 "verdict:  would bounce: 5.1.10 domain example.test does not accept mail (null MX, RFC 7505)\n"},
             row{delivery::mx_verdict::no_such_domain,
                 {k::permanent, "5.1.2", "domain example.test does not exist"},
                 "mx:       the domain does not exist (NXDOMAIN)\n"
                 "verdict:  would bounce: 5.1.2 domain example.test does not exist\n"},
             row{delivery::mx_verdict::temporary,
                 {k::transient, "4.4.3", "MX lookup for example.test failed temporarily (SERVFAIL)"},
                 "mx:       the lookup failed\n"
                 "verdict:  would defer: 4.4.3 MX lookup for example.test failed temporarily (SERVFAIL)\n"},
         }) {
        policy_report r = mx_report();
        r.mx = t.mx;
        r.stop = t.stop;
        r.probed = true;
        const std::string text = format_report(r);
        EXPECT_NE(text.find(t.text), std::string::npos) << text;
        EXPECT_EQ(text.find("hosts:"), std::string::npos) << text;
        EXPECT_FALSE(would_deliver(r));
    }
    policy_report implicit = mx_report();
    implicit.mx = delivery::mx_verdict::implicit;
    EXPECT_NE(format_report(implicit).find(
                  "mx:       no MX records: the domain itself is the mail host (RFC 5321 5.1)\n"),
              std::string::npos);
}

probe_facts tls_session() {
    probe_facts f;
    f.connected = true;
    f.greeting = "mx.partner.test ESMTP";
    f.starttls_offered = true;
    f.starttls_issued = true;
    f.tls_version = "TLSv1.3";
    f.tls_cipher = "TLS_AES_256_GCM_SHA384";
    f.tls_bits = 256;
    certificate_summary leaf;
    leaf.subject = "CN=mx.partner.test";
    leaf.issuer = "CN=Test CA";
    leaf.not_before = "2026-11-01T00:00:00Z";
    leaf.not_after = "2027-01-30T00:00:00Z";
    leaf.dns_names = {"mx.partner.test", "partner.test"};
    leaf.sha256 = std::string(64, 'a');
    leaf.spki_sha256 = std::string(64, 'b');
    certificate_summary ca;
    ca.depth = 1;
    ca.subject = "CN=Test CA";
    ca.issuer = "CN=Test Root";
    ca.not_before = "2026-01-01T00:00:00Z";
    ca.not_after = "2036-01-01T00:00:00Z";
    ca.sha256 = std::string(64, 'c');
    f.chain = {leaf, ca};
    f.trust = "verified";
    f.check = "matched mx.partner.test";
    f.enforced = true;
    f.verdict = probe_verdict::deliver;
    return f;
}

// The probe block of the second host (mx.partner.test) of the static report.
std::string probe_block(const probe_facts& f, tls_level level = tls_level::ca_name) {
    policy_report r = static_report();
    r.probed = true;
    r.hosts.resize(1);
    r.hosts[0] = host("mx.partner.test", "127.0.0.10", 25, partner_policy(level));
    r.hosts[0].probe = f;
    const std::string text = format_report(r);
    const auto at = text.find("\nprobe ");
    return at == std::string::npos ? text : text.substr(at + 1);
}

// An IP SAN is listed as ips=..., so that "matched 127.0.0.10" names something in the chain.
TEST(PolicyReport, ProbeListsIpSans) {
    probe_facts f = tls_session();
    f.chain[0].ip_addresses = {"127.0.0.10", "2001:db8::5"};
    f.check = "matched 127.0.0.10";
    const std::string block = probe_block(f);
    EXPECT_NE(block.find("notAfter=2027-01-30T00:00:00Z names=mx.partner.test,partner.test ips=127.0.0.10,2001:db8::5\n"),
              std::string::npos) << block;
    EXPECT_NE(block.find("  verify:    verified (matched 127.0.0.10)\n"), std::string::npos) << block;
}

TEST(PolicyReport, ProbeMandatoryVerified) {
    EXPECT_EQ(probe_block(tls_session()),
              "probe mx.partner.test[127.0.0.10]:25\n"
              "  greeting:  220 mx.partner.test ESMTP\n"
              "  starttls:  offered\n"
              "  tls:       TLSv1.3 TLS_AES_256_GCM_SHA384 (256 bits)\n"
              "  chain:     0 subject=CN=mx.partner.test issuer=CN=Test CA notBefore=2026-11-01T00:00:00Z "
              "notAfter=2027-01-30T00:00:00Z names=mx.partner.test,partner.test\n"
              "               sha256:" + std::string(64, 'a') + " spki-sha256:" + std::string(64, 'b') + "\n"
              "             1 subject=CN=Test CA issuer=CN=Test Root notBefore=2026-01-01T00:00:00Z "
              "notAfter=2036-01-01T00:00:00Z\n"
              "  verify:    verified (matched mx.partner.test)\n"
              "  verdict:   would deliver over TLS (verified)\n"
              "\n"
              "result:   every probed address would take the mail (1)\n");
}

TEST(PolicyReport, ProbeMandatoryRefused) {
    probe_facts f = tls_session();
    f.trust = "untrusted";
    f.check = "certificate verification failed: self-signed certificate";
    f.unmet = "certificate verification failed: self-signed certificate";
    f.verdict = probe_verdict::refuse;
    f.why = {delivery::outcome::kind::transient, "4.7.5",
             "certificate verification failed: self-signed certificate (mx.partner.test[127.0.0.10]:25)"};
    const std::string text = probe_block(f);
    EXPECT_NE(text.find("  verify:    failed: certificate verification failed: self-signed certificate\n"),
              std::string::npos) << text;
    EXPECT_NE(text.find("  verdict:   would NOT deliver: 4.7.5 certificate verification failed: self-signed "
                        "certificate (mx.partner.test[127.0.0.10]:25)\n"),
              std::string::npos) << text;
    EXPECT_NE(text.find("result:   1 of 1 probed addresses would NOT take the mail\n"), std::string::npos) << text;

    probe_facts n;  // STARTTLS not offered
    n.connected = true;
    n.greeting = "mx.partner.test ESMTP";
    n.starttls_offered = false;
    n.verdict = probe_verdict::refuse;
    n.why = {delivery::outcome::kind::transient, "4.7.4",
             "TLS required but not offered by mx.partner.test[127.0.0.10]:25"};
    EXPECT_EQ(probe_block(n),
              "probe mx.partner.test[127.0.0.10]:25\n"
              "  greeting:  220 mx.partner.test ESMTP\n"
              "  starttls:  not offered\n"
              "  tls:       none\n"
              "  verdict:   would NOT deliver: 4.7.4 TLS required but not offered by mx.partner.test[127.0.0.10]:25\n"
              "\n"
              "result:   1 of 1 probed addresses would NOT take the mail\n");
}

TEST(PolicyReport, ProbeOpportunistic) {
    probe_facts t = tls_session();  // TLS up, certificate not trusted: still delivered
    t.enforced = false;
    t.trust = "untrusted";
    t.check = "certificate verify failed: self-signed certificate";
    std::string text = probe_block(t, tls_level::may);
    EXPECT_NE(text.find("  verify:    untrusted (certificate verify failed: self-signed certificate), not "
                        "enforced (opportunistic TLS)\n"),
              std::string::npos) << text;
    EXPECT_NE(text.find("  verdict:   would deliver over TLS (untrusted)\n"), std::string::npos) << text;

    probe_facts plain;  // no STARTTLS
    plain.connected = true;
    plain.starttls_offered = false;
    plain.verdict = probe_verdict::deliver;
    text = probe_block(plain, tls_level::may);
    EXPECT_NE(text.find("  verdict:   would deliver in plaintext (STARTTLS not offered)\n"), std::string::npos) << text;

    probe_facts off = plain;  // tls = "none": offered, not used
    off.starttls_offered = true;
    text = probe_block(off, tls_level::none);
    EXPECT_NE(text.find("  tls:       not used (TLS off by policy)\n"), std::string::npos) << text;
    EXPECT_NE(text.find("  verdict:   would deliver in plaintext (TLS off by policy)\n"), std::string::npos) << text;

    probe_facts failed;  // handshake failure: defer, then plaintext on the second failure
    failed.connected = true;
    failed.starttls_offered = true;
    failed.starttls_issued = true;
    failed.verdict = probe_verdict::defer_tls;
    failed.why = {delivery::outcome::kind::transient, "4.7.5",
                  "TLS handshake with mx.partner.test[127.0.0.10]:25 failed: wrong version number"};
    text = probe_block(failed, tls_level::may);
    EXPECT_NE(text.find("  tls:       handshake failed\n"), std::string::npos) << text;
    EXPECT_NE(text.find("  verdict:   would defer: 4.7.5 TLS handshake with mx.partner.test[127.0.0.10]:25 failed: "
                        "wrong version number; the next attempt, after tls.handshake_retry_delay (5m), tries TLS "
                        "again and delivers without TLS if the handshake fails again\n"),
              std::string::npos) << text;
}

TEST(PolicyReport, ProbeCannotConnect) {
    probe_facts f;
    f.verdict = probe_verdict::unreachable;
    f.why = {delivery::outcome::kind::transient, "4.4.1",
             "connect to mx.partner.test[127.0.0.10]:25: Connection refused"};
    EXPECT_EQ(probe_block(f),
              "probe mx.partner.test[127.0.0.10]:25\n"
              "  verdict:   cannot connect: 4.4.1 connect to mx.partner.test[127.0.0.10]:25: Connection refused\n"
              "\n"
              "result:   1 of 1 probed addresses would NOT take the mail\n");
}

TEST(PolicyReport, PeerTextCannotDriveTheTerminal) {
    probe_facts f = tls_session();
    f.greeting = "evil\x1b[2J\rname";
    f.chain[0].dns_names = {std::string("a\0b.test", 8)};
    const std::string text = probe_block(f);
    EXPECT_NE(text.find("  greeting:  220 evil?[2J?name\n"), std::string::npos) << text;
    EXPECT_NE(text.find("names=a?b.test\n"), std::string::npos) << text;
    EXPECT_EQ(text.find('\x1b'), std::string::npos);
    EXPECT_EQ(text.find('\r'), std::string::npos);
}

TEST(PolicyReport, WouldDeliverOnlyWhenEveryAddressWould) {
    policy_report r = static_report();
    r.probed = true;
    probe_facts ok = tls_session();
    probe_facts refused = ok;
    refused.verdict = probe_verdict::refuse;
    r.hosts[0].probe = ok;
    r.hosts[1].probe = ok;
    EXPECT_TRUE(would_deliver(r));
    r.hosts[1].probe = refused;
    EXPECT_FALSE(would_deliver(r));
    r.hosts[1].probe->verdict = probe_verdict::defer_tls;  // a deferral is not a delivery
    EXPECT_FALSE(would_deliver(r));
    r.hosts[1].probe.reset();  // no address: nothing probed there
    r.hosts[1].ip.clear();
    EXPECT_FALSE(would_deliver(r));
}

}  // namespace
}  // namespace postern::tls
