// tests/unit/profile/match_test.cpp - profile selection precedence (SPEC §1.4), as tables of
// (connection facts) -> (profile, step, rule)
#include "profile/match.hpp"

#include <gtest/gtest.h>

namespace postern::profile {
namespace {

std::shared_ptr<const config::config> load(std::string_view profiles) {
    const std::string text = "hostname = \"mx.test\"\n[spool]\ndir = \"/var/spool/postern\"\n" + std::string(profiles);
    auto r = config::parse(text, "/etc/postern/postern.toml");
    EXPECT_TRUE(r) << r.error_message();
    return r ? *r : nullptr;
}

// One profile per rule, so the winner names the rule.
constexpr const char* profiles = R"(
[[profile]]
name = "ip"
hosts = ["192.0.2.7"]
[[profile]]
name = "cidr24"
hosts = ["192.0.2.0/24"]
[[profile]]
name = "cidr16"
hosts = ["192.0.0.0/16"]
[[profile]]
name = "wild8"
hosts = ["192.*"]
[[profile]]
name = "wild24"
hosts = ["198.51.100.*"]
[[profile]]
name = "cidr20"
hosts = ["198.51.96.0/20"]
[[profile]]
name = "v6host"
hosts = ["2001:db8::25"]
[[profile]]
name = "v6-48"
hosts = ["2001:db8:1::/48"]
[[profile]]
name = "v6-32"
hosts = ["2001:db8::/32"]
[[profile]]
name = "name"
hosts = ["mx.partner.test"]
[[profile]]
name = "wildname"
hosts = ["*.partner.test"]
[[profile]]
name = "deepwild"
hosts = ["*.eu.partner.test"]
recipient_domains = ["eu.partner.test"]
[[profile]]
name = "sender"
sender_domains = ["sender.test"]
recipient_domains = ["partner.test"]
[[profile]]
name = "senderwild"
sender_domains = ["*.sender.test"]
recipient_domains = ["*.partner.test"]
[[profile]]
name = "rest"
hosts = ["*"]
)";

struct expected {
    const char* profile;  // nullptr = none
    match_step step;
};

void expect_match(const profile_match& m, const expected& want, const std::string& what) {
    if (!want.profile) {
        EXPECT_EQ(m.profile, nullptr) << what << " -> " << m.rule;
    } else {
        ASSERT_NE(m.profile, nullptr) << what << " -> " << m.rule;
        EXPECT_EQ(m.profile->name, want.profile) << what << " -> " << m.rule;
    }
    EXPECT_EQ(m.step, want.step) << what << " -> " << m.rule;
}

TEST(MatchInbound, Precedence) {
    auto cfg = load(profiles);
    ASSERT_TRUE(cfg);
    using s = match_step;
    const struct {
        const char* ip;
        const char* name;    // nullptr = no forward-confirmed name
        const char* sender;  // nullptr = before MAIL FROM
        expected want;
    } cases[] = {
        // Client IP: exact beats every prefix; the longest prefix wins; a trailing-wildcard
        // IPv4 is a prefix of its length.
        {"192.0.2.7", nullptr, nullptr, {"ip", s::client_ip}},
        {"192.0.2.8", nullptr, nullptr, {"cidr24", s::client_ip}},
        {"192.0.3.1", nullptr, nullptr, {"cidr16", s::client_ip}},
        {"192.1.1.1", nullptr, nullptr, {"wild8", s::client_ip}},
        {"198.51.100.9", nullptr, nullptr, {"wild24", s::client_ip}},  // /24 (wildcard) beats /20
        {"198.51.101.1", nullptr, nullptr, {"cidr20", s::client_ip}},
        {"::ffff:192.0.2.7", nullptr, nullptr, {"ip", s::client_ip}},  // dual-stack listener
        // IPv6.
        {"2001:db8::25", nullptr, nullptr, {"v6host", s::client_ip}},
        {"2001:DB8:0:0::25", nullptr, nullptr, {"v6host", s::client_ip}},
        {"2001:db8:1::5", nullptr, nullptr, {"v6-48", s::client_ip}},
        {"2001:db8:2::1", nullptr, nullptr, {"v6-32", s::client_ip}},
        {"2001:db9::1", nullptr, nullptr, {"rest", s::any}},
        // Client IP beats client name beats sender domain.
        {"192.0.2.8", "mx.partner.test", "sender.test", {"cidr24", s::client_ip}},
        {"203.0.113.1", "mx.partner.test", "sender.test", {"name", s::client_name}},
        {"203.0.113.1", "a.partner.test", "sender.test", {"wildname", s::client_name}},
        {"203.0.113.1", nullptr, "sender.test", {"sender", s::sender_domain}},
        // Client name: exact beats wildcard, the longest wildcard first, names normalised;
        // a wildcard never matches its parent.
        {"203.0.113.1", "MX.Partner.Test.", nullptr, {"name", s::client_name}},
        {"203.0.113.1", "a.eu.partner.test", nullptr, {"deepwild", s::client_name}},
        {"203.0.113.1", "eu.partner.test", nullptr, {"wildname", s::client_name}},
        {"203.0.113.1", "a.b.partner.test", nullptr, {"wildname", s::client_name}},
        {"203.0.113.1", "partner.test", nullptr, {"rest", s::any}},
        // Sender domain: exact beats wildcard.
        {"203.0.113.1", "other.test", "SENDER.test", {"sender", s::sender_domain}},
        {"203.0.113.1", "other.test", "a.sender.test", {"senderwild", s::sender_domain}},
        {"203.0.113.1", "other.test", "other.test", {"rest", s::any}},
        // recipient_domains never select a profile inbound.
        {"203.0.113.1", nullptr, "partner.test", {"rest", s::any}},
        // A client IP that is not an address (a Unix socket, say) skips the IP step.
        {"unknown", "mx.partner.test", nullptr, {"name", s::client_name}},
        {"", nullptr, nullptr, {"rest", s::any}},
    };
    for (const auto& c : cases) {
        inbound_facts f{c.ip, c.name ? std::optional<std::string>(c.name) : std::nullopt,
                        c.sender ? std::optional<std::string>(c.sender) : std::nullopt};
        expect_match(match_inbound(*cfg, f), c.want,
                     std::string(c.ip) + " / " + (c.name ? c.name : "-") + " / " + (c.sender ? c.sender : "-"));
    }
}

TEST(MatchOutbound, Precedence) {
    auto cfg = load(profiles);
    ASSERT_TRUE(cfg);
    using s = match_step;
    const struct {
        const char* domain;
        const char* ip;    // nullptr = not chosen yet
        const char* name;  // nullptr = no MX name (a route to an address)
        expected want;
    } cases[] = {
        // Recipient domain beats the destination host's IP and name.
        {"partner.test", "192.0.2.7", "mx.partner.test", {"sender", s::recipient_domain}},
        {"Partner.Test", nullptr, nullptr, {"sender", s::recipient_domain}},
        // Exact recipient domain beats the wildcard over it.
        {"eu.partner.test", "192.0.2.7", nullptr, {"deepwild", s::recipient_domain}},
        {"a.partner.test", "192.0.2.7", nullptr, {"senderwild", s::recipient_domain}},
        {"a.eu.partner.test", nullptr, nullptr, {"senderwild", s::recipient_domain}},
        // Destination IP (exact, then longest prefix) beats destination name.
        {"x.test", "192.0.2.7", "mx.partner.test", {"ip", s::host_ip}},
        {"x.test", "192.0.2.9", "mx.partner.test", {"cidr24", s::host_ip}},
        {"x.test", "198.51.100.1", nullptr, {"wild24", s::host_ip}},
        {"x.test", "2001:db8:1::25", nullptr, {"v6-48", s::host_ip}},
        // Destination name: exact, then wildcard.
        {"x.test", "203.0.113.1", "mx.partner.test", {"name", s::host_name}},
        {"x.test", "203.0.113.1", "mx2.eu.partner.test", {"deepwild", s::host_name}},
        {"x.test", nullptr, "a.partner.test", {"wildname", s::host_name}},
        // Then "*".
        {"x.test", "203.0.113.1", "mx.other.test", {"rest", s::any}},
        {"x.test", nullptr, nullptr, {"rest", s::any}},
        // sender_domains never select a profile outbound.
        {"sender.test", "203.0.113.1", nullptr, {"rest", s::any}},
    };
    for (const auto& c : cases) {
        outbound_facts f{c.domain, c.ip ? std::optional<std::string>(c.ip) : std::nullopt,
                         c.name ? std::optional<std::string>(c.name) : std::nullopt};
        expect_match(match_outbound(*cfg, f), c.want,
                     std::string(c.domain) + " / " + (c.ip ? c.ip : "-") + " / " + (c.name ? c.name : "-"));
    }
}

TEST(MatchRule, SaysWhichEntryMatchedWhat) {
    auto cfg = load(profiles);
    ASSERT_TRUE(cfg);
    const auto in = [&](const char* ip, std::optional<std::string> name, std::optional<std::string> sender) {
        return match_inbound(*cfg, {ip, std::move(name), std::move(sender)});
    };
    auto m = in("192.0.2.7", std::nullopt, std::nullopt);
    EXPECT_EQ(m.rule, "client IP 192.0.2.7 matches host 192.0.2.7 of profile ip");
    EXPECT_EQ(m.entry, "192.0.2.7");
    EXPECT_EQ(in("198.51.100.9", std::nullopt, std::nullopt).rule,
              "client IP 198.51.100.9 matches host 198.51.100.* of profile wild24");
    EXPECT_EQ(in("::ffff:192.0.2.8", std::nullopt, std::nullopt).rule,
              "client IP 192.0.2.8 matches host 192.0.2.0/24 of profile cidr24");
    EXPECT_EQ(in("203.0.113.1", "A.Partner.Test", std::nullopt).rule,
              "client name a.partner.test matches host *.partner.test of profile wildname");
    EXPECT_EQ(in("203.0.113.1", std::nullopt, "x.sender.test").rule,
              "sender domain x.sender.test matches sender domain *.sender.test of profile senderwild");
    m = in("203.0.113.1", std::nullopt, std::nullopt);
    EXPECT_EQ(m.rule, "client IP 203.0.113.1 matches host * of profile rest (no other profile matches)");
    EXPECT_EQ(m.entry, "*");

    const auto out = [&](const char* d, std::optional<std::string> ip, std::optional<std::string> name) {
        return match_outbound(*cfg, {d, std::move(ip), std::move(name)});
    };
    EXPECT_EQ(out("partner.test", std::nullopt, std::nullopt).rule,
              "recipient domain partner.test matches recipient domain partner.test of profile sender");
    EXPECT_EQ(out("x.test", "2001:DB8::25", std::nullopt).rule,
              "destination IP 2001:db8::25 matches host 2001:db8::25 of profile v6host");
    EXPECT_EQ(out("x.test", std::nullopt, "MX.partner.test").rule,
              "destination host mx.partner.test matches host mx.partner.test of profile name");
    EXPECT_EQ(out("x.test", std::nullopt, std::nullopt).rule,
              "recipient domain x.test matches host * of profile rest (no other profile matches)");
}

TEST(MatchRule, NoProfile) {
    auto cfg = load(R"(
[[profile]]
name = "p"
hosts = ["192.0.2.0/24"]
)");
    ASSERT_TRUE(cfg);
    auto m = match_inbound(*cfg, {"203.0.113.1", "mx.other.test", "other.test"});
    EXPECT_EQ(m.profile, nullptr);
    EXPECT_EQ(m.step, match_step::none);
    EXPECT_EQ(m.rule, "no profile matches client IP 203.0.113.1, client name mx.other.test, sender domain other.test");
    m = match_inbound(*cfg, {"203.0.113.1", std::nullopt, std::nullopt});
    EXPECT_EQ(m.rule, "no profile matches client IP 203.0.113.1");
    m = match_outbound(*cfg, {"other.test", "203.0.113.1", "mx.other.test"});
    EXPECT_EQ(m.profile, nullptr);
    EXPECT_EQ(m.rule, "no profile matches recipient domain other.test, destination host mx.other.test, destination IP "
                      "203.0.113.1");

    const config::config empty;
    EXPECT_EQ(match_inbound(empty, {"192.0.2.1", std::nullopt, std::nullopt}).profile, nullptr);
    EXPECT_EQ(match_outbound(empty, {"p.test", std::nullopt, std::nullopt}).profile, nullptr);
}

TEST(MatchInbound, HostEntriesServeBothDirections) {
    auto cfg = load(R"(
[[profile]]
name = "p"
hosts = ["192.0.2.0/24", "mx.p.test"]
)");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(match_inbound(*cfg, {"192.0.2.1", std::nullopt, std::nullopt}).step, match_step::client_ip);
    EXPECT_EQ(match_outbound(*cfg, {"x.test", "192.0.2.1", std::nullopt}).step, match_step::host_ip);
    EXPECT_EQ(match_inbound(*cfg, {"203.0.113.1", "mx.p.test", std::nullopt}).step, match_step::client_name);
    EXPECT_EQ(match_outbound(*cfg, {"x.test", std::nullopt, "mx.p.test"}).step, match_step::host_name);
}

TEST(MatchInbound, HandBuiltConfigSkipsBadEntries) {
    config::config cfg;
    config::profile_config p;
    p.name = "p";
    p.hosts = {"not an entry", "10.1.*", "bad..name"};
    cfg.profiles.push_back(p);
    const auto m = match_inbound(cfg, {"10.1.2.3", std::nullopt, std::nullopt});
    ASSERT_NE(m.profile, nullptr);
    EXPECT_EQ(m.entry, "10.1.*");
    EXPECT_EQ(match_inbound(cfg, {"10.2.0.1", "bad..name", std::nullopt}).profile, nullptr);
}

TEST(MatchStep, Names) {
    EXPECT_EQ(to_string(match_step::client_ip), "client-ip");
    EXPECT_EQ(to_string(match_step::recipient_domain), "recipient-domain");
    EXPECT_EQ(to_string(match_step::any), "any");
    EXPECT_EQ(to_string(match_step::none), "none");
}

}  // namespace
TEST(ClientNames, LookedUpOnlyWhenAProfileNamesHosts) {
    struct row {
        const char* config;
        bool needed, mandatory;
    };
    const row rows[] = {
        {"", false, false},
        {"[[profile]]\nname = \"ip\"\nhosts = [\"192.0.2.0/24\", \"10.1.*\", \"*\"]\n[profile.inbound]\ntls = \"mandatory\"\n",
         false, false},
        {"[[profile]]\nname = \"s\"\nsender_domains = [\"partner.test\"]\n[profile.inbound]\ntls = \"mandatory\"\n",
         false, false},
        {"[[profile]]\nname = \"n\"\nhosts = [\"mx.partner.test\"]\n", true, false},
        {"[[profile]]\nname = \"w\"\nhosts = [\"*.partner.test\"]\n[profile.outbound]\ntls = \"mandatory\"\n", true,
         false},
        {"[[profile]]\nname = \"w\"\nhosts = [\"*.partner.test\"]\n[profile.inbound]\ntls = \"mandatory\"\n", true,
         true},
    };
    for (const auto& r : rows) {
        auto cfg = load(std::string("[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n") + r.config);
        ASSERT_TRUE(cfg) << r.config;
        const auto use = client_names_used(*cfg);
        EXPECT_EQ(use.needed, r.needed) << r.config;
        EXPECT_EQ(use.mandatory, r.mandatory) << r.config;
    }
}

}  // namespace postern::profile
