// tests/unit/profile/policy_test.cpp - the resolved TLS policy as tables of
// (global switch, profile settings, connection facts) -> level, names, pins, limits, trust store
#include "profile/policy.hpp"

#include <gtest/gtest.h>

namespace postern::profile {
namespace {

using tl = tls_level;

// A config with tls.opportunistic = `opportunistic`, `tls_extra` in [tls], and one profile
// "p" (hosts 192.0.2.0/24, recipient domain partner.test) ending with `tables`.
std::shared_ptr<const config::config> load(bool opportunistic, std::string_view tables,
                                           std::string_view tls_extra = "") {
    const std::string text = std::string("hostname = \"mx.test\"\n[spool]\ndir = \"/var/spool/postern\"\n") +
                             "[tls]\nopportunistic = " + (opportunistic ? "true" : "false") +
                             "\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n" + std::string(tls_extra) +
                             "\n[[profile]]\nname = \"p\"\nhosts = [\"192.0.2.0/24\"]\n"
                             "recipient_domains = [\"partner.test\"]\n" +
                             std::string(tables);
    auto r = config::parse(text, "/etc/postern/postern.toml");
    EXPECT_TRUE(r) << r.error_message() << "\n" << text;
    return r ? *r : nullptr;
}

const outbound_facts to_partner{"partner.test", "203.0.113.5", "mx.partner.test"};
const outbound_facts to_other{"other.test", "203.0.113.6", "mx.other.test"};
const inbound_facts from_partner{"192.0.2.9", std::nullopt, std::nullopt};
const inbound_facts from_other{"203.0.113.9", std::nullopt, std::nullopt};

// SPEC §1.1/§1.2: after EHLO outbound, a level that requires TLS goes on only into STARTTLS,
// even when the caller asked for no TLS (the plaintext reconnection after failed opportunistic
// handshakes): never `proceed` in plaintext. Below it, the caller and the peer decide.
TEST(next_after_ehlo, a_required_level_never_proceeds_in_plaintext) {
    using a = after_ehlo;
    for (const tl l : {tl::encrypt, tl::ca, tl::ca_name, tl::fingerprint, tl::dane}) {
        SCOPED_TRACE(std::string(to_string(l)));
        EXPECT_EQ(next_after_ehlo(l, true, true), a::starttls);
        EXPECT_EQ(next_after_ehlo(l, false, true), a::starttls);  // the caller's "no TLS" does not count
        EXPECT_EQ(next_after_ehlo(l, true, false), a::refuse);
        EXPECT_EQ(next_after_ehlo(l, false, false), a::refuse);
    }
    for (const tl l : {tl::none, tl::may}) {
        SCOPED_TRACE(std::string(to_string(l)));
        EXPECT_EQ(next_after_ehlo(l, true, true), a::starttls);
        EXPECT_EQ(next_after_ehlo(l, false, true), a::proceed);  // SPEC §1.1 fallback
        EXPECT_EQ(next_after_ehlo(l, true, false), a::proceed);  // not offered: plaintext
        EXPECT_EQ(next_after_ehlo(l, false, false), a::proceed);
    }
}

constexpr const char* pin = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

TEST(TlsLevel, Predicates) {
    const struct {
        tls_level level;
        const char* name;
        bool tls, cert, chain, name_match, pins;
    } cases[] = {
        {tl::none, "none", false, false, false, false, false},
        {tl::may, "may", false, false, false, false, false},
        {tl::encrypt, "encrypt", true, false, false, false, false},
        {tl::ca, "ca", true, true, true, false, false},
        {tl::ca_name, "ca+name", true, true, true, true, false},
        {tl::fingerprint, "fingerprint", true, true, false, false, true},
        {tl::dane, "dane", true, true, false, false, false},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(to_string(c.level), c.name);
        EXPECT_EQ(requires_tls(c.level), c.tls) << c.name;
        EXPECT_EQ(requires_peer_certificate(c.level), c.cert) << c.name;
        EXPECT_EQ(requires_chain(c.level), c.chain) << c.name;
        EXPECT_EQ(requires_name_match(c.level), c.name_match) << c.name;
        EXPECT_EQ(uses_pins(c.level), c.pins) << c.name;
    }
    static_assert(requires_tls(tl::encrypt) && !requires_tls(tl::may));  // usable at compile time
}

// SPEC §1.2: the profile's tls overrides the global switch; mandatory wins over
// opportunistic = false; "none" turns TLS off; absent follows the switch.
TEST(ResolveOutbound, LevelTable) {
    const struct {
        bool global;
        const char* tables;  // the profile's tables ("" = none)
        tls_level want;
    } cases[] = {
        {true, "", tl::may},
        {false, "", tl::none},
        {true, "[profile.outbound]\n", tl::may},  // table without tls
        {false, "[profile.outbound]\n", tl::none},
        {true, "[profile.inbound]\ntls = \"mandatory\"", tl::may},  // the other direction's table
        {true, "[profile.outbound]\ntls = \"opportunistic\"", tl::may},
        {false, "[profile.outbound]\ntls = \"opportunistic\"", tl::may},
        {true, "[profile.outbound]\ntls = \"none\"", tl::none},
        {false, "[profile.outbound]\ntls = \"none\"", tl::none},
        {true, "[profile.outbound]\ntls = \"mandatory\"", tl::encrypt},
        {false, "[profile.outbound]\ntls = \"mandatory\"", tl::encrypt},
        {true, "[profile.outbound]\ntls = \"mandatory\"\nverify = \"none\"", tl::encrypt},
        {false, "[profile.outbound]\ntls = \"mandatory\"\nverify = \"ca\"", tl::ca},
        {true, "[profile.outbound]\ntls = \"mandatory\"\nverify = \"ca+name\"", tl::ca_name},
        {false, "[profile.outbound]\ntls = \"mandatory\"\nverify = \"ca+name\"", tl::ca_name},
        {true, "[profile.outbound]\ntls = \"mandatory\"\nverify = \"fingerprint\"\nfingerprints = [\"sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"]",
         tl::fingerprint},
        {false, "[profile.outbound]\ntls = \"mandatory\"\nverify = \"dane\"", tl::dane},
    };
    for (const auto& c : cases) {
        auto cfg = load(c.global, c.tables);
        ASSERT_TRUE(cfg);
        const auto r = resolve_outbound(*cfg, to_partner);
        EXPECT_EQ(r.level, c.want) << "global " << c.global << ": " << c.tables << " -> " << r.why;
        EXPECT_EQ(r.profile, "p");
        EXPECT_EQ(r.step, match_step::recipient_domain);
        // Mail to another domain has no profile: the global switch alone.
        const auto o = resolve_outbound(*cfg, to_other);
        EXPECT_EQ(o.level, c.global ? tl::may : tl::none) << o.why;
        EXPECT_EQ(o.profile, "");
        EXPECT_EQ(o.step, match_step::none);
    }
}

TEST(ResolveInbound, LevelTable) {
    const struct {
        bool global;
        const char* tables;
        tls_level want;
    } cases[] = {
        {true, "", tl::may},
        {false, "", tl::none},
        {true, "[profile.inbound]\n", tl::may},
        {false, "[profile.inbound]\n", tl::none},
        {false, "[profile.outbound]\ntls = \"mandatory\"", tl::none},
        {true, "[profile.inbound]\ntls = \"opportunistic\"", tl::may},
        {false, "[profile.inbound]\ntls = \"opportunistic\"", tl::may},
        {true, "[profile.inbound]\ntls = \"none\"", tl::none},
        {false, "[profile.inbound]\ntls = \"mandatory\"", tl::encrypt},
        {true, "[profile.inbound]\ntls = \"mandatory\"\nverify = \"ca\"", tl::ca},
        {true, "[profile.inbound]\ntls = \"mandatory\"\nverify = \"ca+name\"\npeer_names = [\"c.partner.test\"]",
         tl::ca_name},
        {false, "[profile.inbound]\ntls = \"mandatory\"\nverify = \"fingerprint\"\nfingerprints = [\"spki-sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"]",
         tl::fingerprint},
        {true, "[profile.inbound]\ntls = \"mandatory\"\nverify = \"dane\"", tl::dane},
    };
    for (const auto& c : cases) {
        auto cfg = load(c.global, c.tables);
        ASSERT_TRUE(cfg);
        const auto r = resolve_inbound(*cfg, from_partner);
        EXPECT_EQ(r.level, c.want) << "global " << c.global << ": " << c.tables << " -> " << r.why;
        EXPECT_EQ(r.profile, "p");
        EXPECT_EQ(r.step, match_step::client_ip);
        const auto o = resolve_inbound(*cfg, from_other);
        EXPECT_EQ(o.level, c.global ? tl::may : tl::none) << o.why;
        EXPECT_EQ(o.profile, "");
    }
}

TEST(ResolveOutbound, Names) {
    const struct {
        const char* tables;
        outbound_facts facts;
        std::vector<std::string> want;
    } cases[] = {
        // Default: the MX host name and the recipient domain (SPEC §1.3), normalised.
        {"[profile.outbound]\ntls = \"mandatory\"\nverify = \"ca+name\"", {"Partner.Test", "192.0.2.1", "MX.partner.test."},
         {"mx.partner.test", "partner.test"}},
        // No MX name (a route to an address): the recipient domain only.
        {"[profile.outbound]\ntls = \"mandatory\"\nverify = \"ca+name\"", {"partner.test", "192.0.2.1", std::nullopt},
         {"partner.test"}},
        // A host that is the domain itself (A/AAAA fallback): once.
        {"[profile.outbound]\ntls = \"mandatory\"\nverify = \"ca+name\"", {"partner.test", std::nullopt, "partner.test"},
         {"partner.test"}},
        // peer_names replace the default.
        {"[profile.outbound]\ntls = \"mandatory\"\nverify = \"ca+name\"\npeer_names = [\"*.Partner.test\", \"relay.partner.test\"]",
         {"partner.test", std::nullopt, "mx.partner.test"},
         {"*.partner.test", "relay.partner.test"}},
        {"[profile.outbound]\ntls = \"mandatory\"\nverify = \"dane\"\npeer_names = [\"mx.partner.test\"]",
         {"partner.test", std::nullopt, "mx9.partner.test"},
         {"mx.partner.test"}},
        // Opportunistic (and no profile): the default names, to judge "verified" in the log.
        {"", {"partner.test", std::nullopt, "mx.partner.test"}, {"mx.partner.test", "partner.test"}},
        {"", {"other.test", std::nullopt, "mx.other.test"}, {"mx.other.test", "other.test"}},
        // No TLS: nothing to match.
        {"[profile.outbound]\ntls = \"none\"", {"partner.test", std::nullopt, "mx.partner.test"}, {}},
    };
    for (const auto& c : cases) {
        auto cfg = load(true, c.tables);
        ASSERT_TRUE(cfg);
        EXPECT_EQ(resolve_outbound(*cfg, c.facts).names, c.want) << c.tables;
    }
}

TEST(ResolveInbound, NamesAreThePeerNames) {
    auto cfg = load(true, "[profile.inbound]\ntls = \"mandatory\"\nverify = \"ca+name\"\npeer_names = [\"c.partner.test\"]");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(resolve_inbound(*cfg, from_partner).names, std::vector<std::string>{"c.partner.test"});
    EXPECT_TRUE(resolve_inbound(*cfg, from_other).names.empty());
}

TEST(ResolvePolicy, CaFileFallsBackToTheGlobalOne) {
    const struct {
        const char* tables;
        const char* tls_extra;
        const char* want;
    } cases[] = {
        {"[profile.outbound]\ntls = \"mandatory\"\nverify = \"ca\"\nca_file = \"partner-ca.pem\"",
         "ca_file = \"/etc/ssl/all.pem\"", "/etc/postern/partner-ca.pem"},
        {"[profile.outbound]\ntls = \"mandatory\"\nverify = \"ca\"", "ca_file = \"/etc/ssl/all.pem\"", "/etc/ssl/all.pem"},
        {"[profile.outbound]\ntls = \"mandatory\"\nverify = \"ca\"", "", ""},  // the system store
        {"", "ca_file = \"all.pem\"", "/etc/postern/all.pem"},
    };
    for (const auto& c : cases) {
        auto cfg = load(true, c.tables, c.tls_extra);
        ASSERT_TRUE(cfg);
        EXPECT_EQ(resolve_outbound(*cfg, to_partner).ca_file, c.want) << c.tables << " / " << c.tls_extra;
    }
    // The other direction's ca_file is not used.
    auto cfg = load(true, "[profile.inbound]\ntls = \"mandatory\"\nverify = \"ca\"\nca_file = \"clients.pem\"",
                    "ca_file = \"/etc/ssl/all.pem\"");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(resolve_inbound(*cfg, from_partner).ca_file, "/etc/postern/clients.pem");
    EXPECT_EQ(resolve_outbound(*cfg, {"x.test", "192.0.2.1", std::nullopt}).ca_file, "/etc/ssl/all.pem");
}

TEST(ResolvePolicy, VersionCipherBitsAndPins) {
    const std::string fp = std::string("fingerprints = [\"") + pin + "\"]";
    auto cfg = load(true, "[profile.outbound]\ntls = \"mandatory\"\nverify = \"fingerprint\"\n" + fp +
                              "\nmin_tls_version = \"1.3\"\nmin_cipher_bits = 256\n"
                              "[profile.inbound]\ntls = \"mandatory\"\nmin_tls_version = \"1.0\"\nmin_cipher_bits = 0");
    ASSERT_TRUE(cfg);
    auto r = resolve_outbound(*cfg, to_partner);
    EXPECT_EQ(r.level, tl::fingerprint);
    EXPECT_EQ(r.min_version, config::tls_version::v1_3);
    EXPECT_EQ(r.min_cipher_bits, 256);
    EXPECT_EQ(r.fingerprints, std::vector<std::string>{pin});
    r = resolve_inbound(*cfg, from_partner);
    EXPECT_EQ(r.level, tl::encrypt);
    EXPECT_EQ(r.min_version, config::tls_version::v1_0);
    EXPECT_EQ(r.min_cipher_bits, 0);
    EXPECT_TRUE(r.fingerprints.empty());
    // Defaults without a profile.
    r = resolve_outbound(*cfg, to_other);
    EXPECT_EQ(r.min_version, config::tls_version::v1_2);
    EXPECT_EQ(r.min_cipher_bits, 128);
    EXPECT_TRUE(r.fingerprints.empty());
}

TEST(ResolvePolicy, WhySaysRuleAndDerivation) {
    auto cfg = load(false, "[profile.outbound]\ntls = \"mandatory\"\nverify = \"ca+name\"\n"
                           "[profile.inbound]\ntls = \"none\"");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(resolve_outbound(*cfg, to_partner).why,
              "recipient domain partner.test matches recipient domain partner.test of profile p; outbound tls = "
              "\"mandatory\", verify = \"ca+name\" -> ca+name");
    EXPECT_EQ(resolve_outbound(*cfg, to_other).why,
              "no profile matches recipient domain other.test, destination host mx.other.test, destination IP "
              "203.0.113.6; tls.opportunistic = false -> none");
    EXPECT_EQ(resolve_inbound(*cfg, from_partner).why,
              "client IP 192.0.2.9 matches host 192.0.2.0/24 of profile p; inbound tls = \"none\" -> none");
    cfg = load(true, "[profile.outbound]\ntls = \"opportunistic\"");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(resolve_outbound(*cfg, to_partner).why,
              "recipient domain partner.test matches recipient domain partner.test of profile p; outbound tls = "
              "\"opportunistic\" -> may");
    EXPECT_EQ(resolve_inbound(*cfg, from_partner).why,
              "client IP 192.0.2.9 matches host 192.0.2.0/24 of profile p; inbound tls not set, tls.opportunistic = "
              "true -> may");
}

TEST(ResolveInbound, SenderDomainProfileAppliesAtMailFrom) {
    auto cfg = config::parse(R"(hostname = "mx.test"
[spool]
dir = "/s"
[tls]
opportunistic = false
cert_file = "c.pem"
key_file = "k.pem"
[[profile]]
name = "bank"
sender_domains = ["bank.test"]
[profile.inbound]
tls = "mandatory"
)",
                             "/etc/postern/postern.toml");
    ASSERT_TRUE(cfg) << cfg.error_message();
    inbound_facts f{"203.0.113.1", std::nullopt, std::nullopt};
    EXPECT_EQ(resolve_inbound(**cfg, f).level, tl::none);  // before MAIL FROM
    f.sender_domain = "bank.test";
    const auto r = resolve_inbound(**cfg, f);
    EXPECT_EQ(r.level, tl::encrypt);
    EXPECT_EQ(r.step, match_step::sender_domain);
    EXPECT_EQ(r.profile, "bank");
}

TEST(RelayAllowed, OnlyByAddressOrName) {
    auto cfg = config::parse(R"(hostname = "mx.test"
[spool]
dir = "/s"
[[profile]]
name = "office"
hosts = ["10.0.0.0/8", "*.office.test"]
sender_domains = ["office.test"]
relay = "any"
[[profile]]
name = "partner"
hosts = ["192.0.2.0/24"]
[[profile]]
name = "rest"
hosts = ["*"]
)",
                             "/etc/postern/postern.toml");
    ASSERT_TRUE(cfg) << cfg.error_message();
    const struct {
        const char* ip;
        const char* name;
        const char* sender;
        bool want;
    } cases[] = {
        {"10.1.2.3", nullptr, nullptr, true},
        {"10.1.2.3", nullptr, "elsewhere.test", true},
        {"203.0.113.1", "pc1.office.test", nullptr, true},
        {"192.0.2.9", "pc1.office.test", nullptr, false},  // the IP's profile decides first
        {"192.0.2.9", nullptr, nullptr, false},
        {"203.0.113.1", nullptr, "office.test", false},  // anyone can claim a sender domain
        {"203.0.113.1", nullptr, nullptr, false},
    };
    for (const auto& c : cases) {
        inbound_facts f{c.ip, c.name ? std::optional<std::string>(c.name) : std::nullopt,
                        c.sender ? std::optional<std::string>(c.sender) : std::nullopt};
        EXPECT_EQ(relay_allowed(**cfg, f), c.want) << c.ip << " " << (c.name ? c.name : "-") << " "
                                                   << (c.sender ? c.sender : "-");
    }
    EXPECT_FALSE(relay_allowed(config::config{}, {"10.1.2.3", std::nullopt, std::nullopt}));
}

TEST(ResolvePolicy, HandBuiltVerifyWithoutMandatoryIsNotEnforced) {
    // The loader rejects verify without tls = "mandatory"; a config built in code that has it
    // still gets a level from `tls` alone (verification is never implied).
    config::config cfg;
    cfg.tls.opportunistic = true;
    config::profile_config p;
    p.name = "p";
    p.recipient_domains = {"partner.test"};
    p.outbound.present = true;
    p.outbound.verify = config::verify_level::ca_name;
    cfg.profiles.push_back(p);
    EXPECT_EQ(resolve_outbound(cfg, to_partner).level, tl::may);
    cfg.profiles[0].outbound.tls = config::tls_mode::mandatory;
    EXPECT_EQ(resolve_outbound(cfg, to_partner).level, tl::ca_name);
}

}  // namespace
}  // namespace postern::profile
