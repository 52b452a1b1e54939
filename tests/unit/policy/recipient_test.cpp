// tests/unit/policy/recipient_test.cpp - the real inbound recipient policy (src/policy/recipient.cpp):
// hosted domains, relay rights, and a bare <Postmaster> (RFC 5321 4.1.1.3, 4.5.1) completed to
// this server's postmaster whatever the relay rights; refused only when no domain is hosted.
#include <gtest/gtest.h>

#include <variant>

#include <fmt/format.h>

#include "policy/recipient.hpp"

namespace postern::policy {
namespace {

config::config make_config(std::string hostname, std::vector<std::string> domains) {
    config::config c;
    c.hostname = std::move(hostname);
    for (auto& d : domains) {
        config::domain_config dc;
        dc.name = std::move(d);
        dc.maildir = "/var/mail/" + dc.name;
        c.domains.push_back(std::move(dc));
    }
    return c;
}

smtp::mailbox box(std::string local, std::string domain = "") {
    smtp::mailbox b;
    b.local = std::move(local);
    b.domain = std::move(domain);
    return b;
}

// What the session does with RCPT TO:<local>: complete, then check.
std::string rcpt_bare(inbound_policy& p, const std::string& local) {
    auto full = p.complete_postmaster(box(local));
    if (const auto* r = std::get_if<smtp::reply>(&full)) return r->wire();
    const auto& b = std::get<smtp::mailbox>(full);
    if (auto r = p.check_recipient(smtp::transaction{}, b)) return r->wire();
    return b.str();
}

TEST(RecipientPolicy, PostmasterDomainPrefersTheHostname) {
    EXPECT_EQ(postmaster_domain(make_config("mx.example.test", {"other.test", "mx.example.test"})), "mx.example.test");
    EXPECT_EQ(postmaster_domain(make_config("MX.Example.TEST", {"other.test", "mx.example.test"})), "mx.example.test");
    EXPECT_EQ(postmaster_domain(make_config("mx.example.test", {"first.test", "second.test"})), "first.test");
    EXPECT_EQ(postmaster_domain(make_config("mx.example.test", {})), std::nullopt);
}

// The defect: with the hostname not hosted, <Postmaster> was refused "Relay access denied"
// (and routed to the hostname, off this server, for a client allowed to relay).
TEST(RecipientPolicy, BarePostmasterGoesToTheFirstHostedDomain) {
    const auto cfg = make_config("mx.postern.test", {"localhost", "example.test"});
    for (bool relay : {false, true}) {
        inbound_policy p(cfg, relay);
        EXPECT_EQ(rcpt_bare(p, "Postmaster"), "Postmaster@localhost") << relay;
        EXPECT_EQ(rcpt_bare(p, "postmaster"), "postmaster@localhost") << relay;
        EXPECT_EQ(rcpt_bare(p, "POSTMASTER"), "POSTMASTER@localhost") << relay;
    }
}

TEST(RecipientPolicy, BarePostmasterGoesToTheHostnameWhenHosted) {
    const auto cfg = make_config("MX.example.test", {"localhost", "mx.example.test"});
    inbound_policy p(cfg, false);
    EXPECT_EQ(rcpt_bare(p, "Postmaster"), "Postmaster@mx.example.test");
}

TEST(RecipientPolicy, BarePostmasterRefusedWhenNoDomainIsHosted) {
    const auto cfg = make_config("relay.example.test", {});
    for (bool relay : {false, true}) {
        inbound_policy p(cfg, relay);
        const std::string r = rcpt_bare(p, "Postmaster");
        EXPECT_EQ(r.substr(0, 10), "550 5.1.1 ") << r;
        EXPECT_NE(r.find("hosts no domain"), std::string::npos) << r;
    }
}

TEST(RecipientPolicy, HostedDomainsAndRelayRights) {
    const auto cfg = make_config("mx.postern.test", {"localhost"});
    inbound_policy closed(cfg, false), open(cfg, true);
    const smtp::transaction t;
    EXPECT_FALSE(closed.check_recipient(t, box("bob", "LocalHost")));
    EXPECT_EQ(closed.check_recipient(t, box("bob", "elsewhere.test"))->wire(),
              "554 5.7.1 <bob@elsewhere.test>: Relay access denied\r\n");
    EXPECT_FALSE(open.check_recipient(t, box("bob", "elsewhere.test")));
    EXPECT_EQ(closed.check_recipient(t, box("../x", "localhost"))->code, 550);
    // The hostname is not a hosted domain: relaying rules apply to it like to any other.
    EXPECT_EQ(closed.check_recipient(t, box("postmaster", "mx.postern.test"))->code, 554);
    // An address without a domain is never relayed (the session completes <Postmaster> first).
    EXPECT_EQ(open.check_recipient(t, box("Postmaster"))->code, 550);
}

// Found by review: a relay_to domain took sender-specified routing from any client, so an
// internal server that honours the percent hack (or '!', or a quoted '@') relayed for anyone.
TEST(RecipientPolicy, RoutingLocalPartNeedsRelayRightsForARelayedDomain) {
    auto cfg = make_config("mx.postern.test", {"local.test"});
    config::domain_config relayed;
    relayed.name = "example.test";
    relayed.relay_to.push_back({"10.0.0.5", 25});
    cfg.domains.push_back(relayed);
    inbound_policy closed(cfg, false), open(cfg, true);
    const smtp::transaction t;
    for (const char* local : {"victim%external.test", "\"victim@external.test\"", "external.test!victim",
                              "\"victim\\@external.test\"", "a%b%c", "\"x!y\""}) {
        const auto r = closed.check_recipient(t, box(local, "Example.TEST"));
        ASSERT_TRUE(r) << local;
        EXPECT_EQ(r->wire(), fmt::format("554 5.7.1 <{}@Example.TEST>: Relay access denied: sender-specified "
                                         "routing ('%', '!' or '@' in the local part) is not allowed\r\n",
                                         local));
        EXPECT_FALSE(open.check_recipient(t, box(local, "example.test"))) << local;  // relay rights: as any relay
        // A maildir domain delivers here: the local part is only a folder name.
        EXPECT_FALSE(closed.check_recipient(t, box(local, "local.test"))) << local;
    }
    for (const char* local : {"bob", "\"bob smith\"", "bob+tag", "b.o-b"})
        EXPECT_FALSE(closed.check_recipient(t, box(local, "example.test"))) << local;
}

// Found by review: "\"bob\"@dom" and "bob@dom" (and, in a maildir domain, "Bob@dom", whose
// folder is the same) were stored as two recipients: two copies in one mailbox.
TEST(RecipientPolicy, RecipientKeyIsTheMailbox) {
    auto cfg = make_config("mx.postern.test", {"local.test", "alias.test", "other.test"});
    cfg.domains[1].maildir = cfg.domains[0].maildir;  // alias.test shares local.test's maildir
    config::domain_config relayed;
    relayed.name = "example.test";
    relayed.relay_to.push_back({"10.0.0.5", 25});
    cfg.domains.push_back(relayed);
    inbound_policy p(cfg, false);
    const auto key = [&](const char* local, const char* domain) { return p.recipient_key(box(local, domain)); };
    // maildir: by folder (lower-cased, unquoted), whatever the domain's spelling
    EXPECT_EQ(key("bob", "local.test"), "/var/mail/local.test/bob");
    for (const char* same : {"Bob", "\"bob\"", "\"BOB\"", "\"b\\ob\""}) {
        EXPECT_EQ(key(same, "LOCAL.test"), key("bob", "local.test")) << same;
        EXPECT_EQ(key(same, "alias.test"), key("bob", "local.test")) << same;  // the same mailbox
    }
    EXPECT_NE(key("bob", "other.test"), key("bob", "local.test"));
    EXPECT_NE(key("bobby", "local.test"), key("bob", "local.test"));
    // relayed onward: the address (local part unquoted, case kept: the next hop decides)
    EXPECT_EQ(key("\"bob\"", "example.test"), key("bob", "Example.TEST"));
    EXPECT_NE(key("Bob", "example.test"), key("bob", "example.test"));
    EXPECT_NE(key("bob", "example.test"), key("bob", "local.test"));
    // not hosted (a relay client's recipient), or no valid folder: the address too
    EXPECT_EQ(key("\"bob\"", "elsewhere.test"), key("bob", "ELSEWHERE.test"));
    EXPECT_NE(key("Bob", "elsewhere.test"), key("bob", "elsewhere.test"));
    EXPECT_EQ(key("\".x\"", "local.test"), key(".x", "local.test"));
}

}  // namespace
}  // namespace postern::policy
