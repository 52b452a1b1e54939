// tests/unit/profile/inbound_test.cpp - the inbound session's TLS plan as a table of
// (global switch, profiles, client) -> (decided when, STARTTLS offered, certificate asked, 530)
#include "profile/inbound.hpp"

#include <gtest/gtest.h>

namespace postern::profile {
namespace {

std::shared_ptr<const config::config> load(bool opportunistic, std::string_view profiles) {
    const std::string text = std::string("hostname = \"mx.test\"\n[spool]\ndir = \"/var/spool/postern\"\n") +
                             "[tls]\nopportunistic = " + (opportunistic ? "true" : "false") +
                             "\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n" + std::string(profiles);
    auto r = config::parse(text, "/etc/postern/postern.toml");
    EXPECT_TRUE(r) << r.error_message() << "\n" << text;
    return r ? *r : nullptr;
}

std::string profile(std::string_view name, std::string_view match, std::string_view inbound) {
    return "\n[[profile]]\nname = \"" + std::string(name) + "\"\n" + std::string(match) + "\n" +
           (inbound.empty() ? std::string() : "[profile.inbound]\n" + std::string(inbound) + "\n");
}

constexpr const char* ip = "hosts = [\"192.0.2.7\"]";
constexpr const char* star = "hosts = [\"*\"]";
constexpr const char* senders = "sender_domains = [\"partner.test\"]";
constexpr const char* none = "tls = \"none\"";
constexpr const char* may = "tls = \"opportunistic\"";
constexpr const char* encrypt = "tls = \"mandatory\"";
constexpr const char* ca = "tls = \"mandatory\"\nverify = \"ca\"";

const inbound_facts matched{"192.0.2.7", std::nullopt, std::nullopt};
const inbound_facts other{"203.0.113.9", std::nullopt, std::nullopt};

TEST(PlanInbound, Table) {
    const struct {
        const char* what;
        bool global;
        std::string profiles;
        const inbound_facts* client;
        tls_level level;     // the connection's own policy
        match_step step;
        bool at_mail_from, starttls, certificate, require_at_connect;
    } cases[] = {
        {"no profile", true, "", &other, tls_level::may, match_step::none, false, true, false, false},
        {"no profile, global off", false, "", &other, tls_level::none, match_step::none, false, false, false, false},
        {"ip mandatory ca", true, profile("a", ip, ca), &matched, tls_level::ca, match_step::client_ip, false, true,
         true, true},
        // "*" alone is final: decided at connect (554 right after a failed check)
        {"star alone", true, profile("s", star, ca), &other, tls_level::ca, match_step::any, false, true, true, true},
        // "*" with a sender-domain profile: decided at MAIL FROM, no 530 at connect
        {"star + sender", true, profile("s", star, ca) + profile("l", senders, may), &other, tls_level::ca,
         match_step::any, true, true, true, false},
        {"star none + sender mandatory", true, profile("s", star, none) + profile("l", senders, encrypt), &other,
         tls_level::none, match_step::any, true, true, false, false},
        {"no match + sender ca", false, profile("l", senders, ca), &other, tls_level::none, match_step::none, true,
         true, true, false},
        {"no match + sender opportunistic, global off", false, profile("l", senders, may), &other, tls_level::none,
         match_step::none, true, false, false, false},
        // a client matched by IP never comes under a sender-domain profile
        {"ip none + sender ca", true, profile("a", ip, none) + profile("l", senders, ca), &matched, tls_level::none,
         match_step::client_ip, false, false, false, false},
        {"ip global off + sender mandatory", false, profile("a", ip, "") + profile("l", senders, encrypt), &matched,
         tls_level::none, match_step::client_ip, false, false, false, false},
        {"ip may + sender ca", true, profile("a", ip, may) + profile("l", senders, ca), &matched, tls_level::may,
         match_step::client_ip, false, true, false, false},
        {"ip encrypt + star ca + sender", true,
         profile("a", ip, encrypt) + profile("s", star, ca) + profile("l", senders, ca), &matched,
         tls_level::encrypt, match_step::client_ip, false, true, false, true},
    };
    for (const auto& c : cases) {
        auto cfg = load(c.global, c.profiles);
        ASSERT_TRUE(cfg) << c.what;
        const auto p = plan_inbound(*cfg, *c.client);
        EXPECT_EQ(p.connection.level, c.level) << c.what << ": " << p.connection.why;
        EXPECT_EQ(p.connection.step, c.step) << c.what;
        EXPECT_EQ(p.at_mail_from, c.at_mail_from) << c.what;
        EXPECT_EQ(p.offer_starttls, c.starttls) << c.what;
        EXPECT_EQ(p.request_client_certificate, c.certificate) << c.what;
        EXPECT_EQ(p.require_tls_at_connect, c.require_at_connect) << c.what;
    }
}

// 530 for RCPT/DATA/BDAT/AUTH outside a transaction before STARTTLS when the decision waits for
// MAIL FROM and the connection's own policy ("*", the global switch) requires TLS.
TEST(PlanInbound, RequireTlsUntilMail) {
    const struct {
        const char* what;
        bool global;
        std::string profiles;
        const inbound_facts* client;
        bool until_mail;
    } cases[] = {
        {"no profile", true, "", &other, false},
        {"star mandatory + sender may", true, profile("s", star, ca) + profile("l", senders, may), &other, true},
        {"star encrypt + sender none", true, profile("s", star, encrypt) + profile("l", senders, none), &other, true},
        {"star may + sender mandatory", true, profile("s", star, may) + profile("l", senders, encrypt), &other,
         false},
        {"no match + sender mandatory", true, profile("l", senders, encrypt), &other, false},
        {"star alone (decided at connect)", true, profile("s", star, ca), &other, false},
        {"ip mandatory + sender (decided at connect)", true, profile("a", ip, encrypt) + profile("l", senders, may),
         &matched, false},
    };
    for (const auto& c : cases) {
        auto cfg = load(c.global, c.profiles);
        ASSERT_TRUE(cfg) << c.what;
        const auto p = plan_inbound(*cfg, *c.client);
        EXPECT_EQ(p.require_tls_until_mail, c.until_mail) << c.what;
        EXPECT_FALSE(p.require_tls_until_mail && p.require_tls_at_connect) << c.what;
    }
}

TEST(PlanInbound, SenderDomainInTheFactsIsIgnored) {
    auto cfg = load(true, profile("s", star, ca) + profile("l", senders, may));
    ASSERT_TRUE(cfg);
    inbound_facts f = other;
    f.sender_domain = "partner.test";
    const auto p = plan_inbound(*cfg, f);
    EXPECT_EQ(p.connection.profile, "s");
    EXPECT_TRUE(p.at_mail_from);
}

// What the session enforces at MAIL FROM when at_mail_from: resolve_inbound with the sender.
TEST(PlanInbound, AtMailFromTheSenderDomainProfileElseStar) {
    auto cfg = load(true, profile("s", star, ca) + profile("l", senders, may));
    ASSERT_TRUE(cfg);
    inbound_facts f = other;
    f.sender_domain = "partner.test";
    EXPECT_EQ(resolve_inbound(*cfg, f).profile, "l");
    EXPECT_EQ(resolve_inbound(*cfg, f).level, tls_level::may);
    f.sender_domain = "other.test";
    EXPECT_EQ(resolve_inbound(*cfg, f).profile, "s");
    f.sender_domain.reset();  // the null sender
    EXPECT_EQ(resolve_inbound(*cfg, f).level, tls_level::ca);
}

TEST(InboundLevel, ProfileOrGlobal) {
    auto cfg = load(false, profile("a", ip, "") + profile("l", senders, ca));
    ASSERT_TRUE(cfg);
    EXPECT_EQ(inbound_level(*cfg, nullptr), tls_level::none);
    EXPECT_EQ(inbound_level(*cfg, &cfg->profiles[0]), tls_level::none);
    EXPECT_EQ(inbound_level(*cfg, &cfg->profiles[1]), tls_level::ca);
}

}  // namespace
}  // namespace postern::profile
