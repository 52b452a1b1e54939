// tests/unit/delivery/route_test.cpp - routing precedence and MX planning, as tables.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "delivery/route.hpp"

using namespace postern;
using delivery::mx_verdict;
using delivery::route;
using delivery::target_host;
using dns::dns_status;

namespace {

config::config sample_config() {
    config::config c;
    c.delivery.port = 2525;
    c.domains.push_back({"example.test", {{"10.0.0.5", 25}, {"internal.example.test", 2526}}, "", 1});
    c.domains.push_back({"local.test", {}, "/var/mail/local.test", 2});
    c.routes.push_back({"partner.test", {{"127.0.0.2", 2526}}, 3});
    c.routes.push_back({"*", {{"smarthost.isp.test", 587}}, 4});
    c.routes.push_back({"other.test", {{"127.0.0.3", 25}}, 5});  // after "*": exact still wins
    return c;
}

struct route_case {
    std::string domain;
    route::kind how;
    std::string source;
    std::vector<config::host_port> hosts;
    std::string maildir;
};

void expect_route(const config::config& cfg, const route_case& c) {
    SCOPED_TRACE(c.domain);
    const route r = delivery::decide_route(cfg, c.domain);
    EXPECT_EQ(delivery::to_string(r.how), delivery::to_string(c.how));
    EXPECT_EQ(r.source, c.source);
    ASSERT_EQ(r.hosts.size(), c.hosts.size());
    for (std::size_t i = 0; i < c.hosts.size(); ++i) {
        EXPECT_EQ(r.hosts[i].host, c.hosts[i].host);
        EXPECT_EQ(r.hosts[i].port, c.hosts[i].port);
    }
    EXPECT_EQ(r.maildir, c.maildir);
    EXPECT_EQ(r.port, cfg.delivery.port);
}

}  // namespace

TEST(decide_route, precedence) {
    const auto cfg = sample_config();
    const std::vector<route_case> cases = {
        {"local.test", route::kind::maildir, "domain local.test maildir", {}, "/var/mail/local.test"},
        {"example.test", route::kind::static_hosts, "domain example.test relay_to",
         {{"10.0.0.5", 25}, {"internal.example.test", 2526}}, ""},
        {"partner.test", route::kind::static_hosts, "route partner.test", {{"127.0.0.2", 2526}}, ""},
        {"other.test", route::kind::static_hosts, "route other.test", {{"127.0.0.3", 25}}, ""},
        {"elsewhere.test", route::kind::static_hosts, "route *", {{"smarthost.isp.test", 587}}, ""},
        // A subdomain is a different domain: no implicit parent matching.
        {"sub.partner.test", route::kind::static_hosts, "route *", {{"smarthost.isp.test", 587}}, ""},
        {"sub.example.test", route::kind::static_hosts, "route *", {{"smarthost.isp.test", 587}}, ""},
    };
    for (const auto& c : cases) expect_route(cfg, c);
}

// RFC 6531 3.2: a U-label recipient domain is routed by its A-label: the hosted domain, the
// static route and the MX lookup all see "xn--...", whatever case or form the address used.
TEST(decide_route, u_label_domain_routed_by_its_a_label) {
    auto cfg = sample_config();
    cfg.domains.push_back({"xn--bcher-kva.test", {}, "/var/mail/buecher", 6});
    cfg.routes.insert(cfg.routes.begin(), {"xn--fsq.test", {{"127.0.0.4", 2527}}, 7});
    for (const char* d : {"b\u00fccher.test", "B\u00dcCHER.Test", "xn--bcher-kva.test", "b\u00fccher.test."}) {
        SCOPED_TRACE(d);
        const route r = delivery::decide_route(cfg, d);
        EXPECT_EQ(r.how, route::kind::maildir);
        EXPECT_EQ(r.domain, "xn--bcher-kva.test");
        EXPECT_EQ(r.maildir, "/var/mail/buecher");
    }
    const route s = delivery::decide_route(cfg, "\u4f8b.test");
    EXPECT_EQ(s.source, "route xn--fsq.test");
    EXPECT_EQ(s.domain, "xn--fsq.test");
    cfg.routes.clear();
    const route m = delivery::decide_route(cfg, "\u00e9xample.test");
    EXPECT_EQ(m.how, route::kind::mx);
    EXPECT_EQ(m.domain, "xn--xample-9ua.test");  // what the resolver is asked for
    // No A-label form: left as written (lower-cased), so it matches nothing configured.
    EXPECT_EQ(delivery::decide_route(cfg, "\u2603.test").domain, "\u2603.test");
}

// The domain a recipient's profile is matched by is the one its route carries, whatever the
// route (outbound/attempt.cpp resolves each recipient's policy with it).
TEST(routing_domain, as_decide_route_names_it) {
    const auto cfg = sample_config();
    for (const char* d : {"b\u00fccher.test", "B\u00dcCHER.Test.", "Partner.TEST.", "local.test", "MiXeD.Example.ORG",
                          "\u2603.test", ""}) {
        SCOPED_TRACE(d);
        EXPECT_EQ(delivery::routing_domain(d), delivery::decide_route(cfg, d).domain);
    }
    EXPECT_EQ(delivery::routing_domain("B\u00dcCHER.Test."), "xn--bcher-kva.test");
    EXPECT_EQ(delivery::routing_domain("Bank.TEST"), "bank.test");
}

TEST(decide_route, mx_without_smarthost) {
    auto cfg = sample_config();
    cfg.routes.erase(std::remove_if(cfg.routes.begin(), cfg.routes.end(), [](const auto& r) { return r.domain == "*"; }),
                     cfg.routes.end());
    const route r = delivery::decide_route(cfg, "elsewhere.test");
    EXPECT_EQ(r.how, route::kind::mx);
    EXPECT_EQ(r.source, "mx");
    EXPECT_EQ(r.domain, "elsewhere.test");
    EXPECT_EQ(r.port, 2525);
    EXPECT_TRUE(r.hosts.empty());
    // Hosted and exact routes are unchanged without the smarthost.
    expect_route(cfg, {"partner.test", route::kind::static_hosts, "route partner.test", {{"127.0.0.2", 2526}}, ""});
    expect_route(cfg, {"local.test", route::kind::maildir, "domain local.test maildir", {}, "/var/mail/local.test"});
}

TEST(decide_route, hosted_domain_wins_over_routes) {
    auto cfg = sample_config();
    cfg.routes.push_back({"example.test", {{"127.0.0.9", 25}}, 6});  // a route for a hosted domain
    expect_route(cfg, {"example.test", route::kind::static_hosts, "domain example.test relay_to",
                       {{"10.0.0.5", 25}, {"internal.example.test", 2526}}, ""});
}

TEST(decide_route, case_insensitive_and_trailing_dot) {
    const auto cfg = sample_config();
    expect_route(cfg, {"LOCAL.Test", route::kind::maildir, "domain local.test maildir", {}, "/var/mail/local.test"});
    expect_route(cfg, {"Partner.TEST.", route::kind::static_hosts, "route partner.test", {{"127.0.0.2", 2526}}, ""});
    EXPECT_EQ(delivery::decide_route(cfg, "Partner.TEST.").domain, "partner.test");
    auto no_star = cfg;
    no_star.routes.clear();
    EXPECT_EQ(delivery::decide_route(no_star, "MiXeD.Example.ORG").domain, "mixed.example.org");
}

TEST(decide_route, address_literals) {
    auto cfg = sample_config();
    cfg.routes.clear();
    expect_route(cfg, {"[192.0.2.7]", route::kind::static_hosts, "address literal", {{"192.0.2.7", 2525}}, ""});
    expect_route(cfg, {"[IPv6:2001:DB8::1]", route::kind::static_hosts, "address literal", {{"2001:db8::1", 2525}}, ""});
    EXPECT_TRUE(delivery::decide_route(cfg, "[192.0.2.7]").literal);
    // Review: RFC 5321's Snum is 1*3DIGIT, so leading zeros are allowed (and decimal); inet_pton
    // refused them and the literal went to DNS ("domain [127.000.000.002] does not exist").
    expect_route(cfg, {"[127.000.000.002]", route::kind::static_hosts, "address literal", {{"127.0.0.2", 2525}}, ""});
    expect_route(cfg, {"[010.0.0.08]", route::kind::static_hosts, "address literal", {{"10.0.0.8", 2525}}, ""});
    expect_route(cfg, {"[IPv6:::ffff:127.000.0.01]", route::kind::static_hosts, "address literal",
                       {{"::ffff:127.0.0.1", 2525}}, ""});
    // Not a usable literal: no static host (plan_hosts refuses it without a DNS query, 5.1.2).
    EXPECT_EQ(delivery::decide_route(cfg, "[300.1.1.1]").how, route::kind::mx);
    EXPECT_EQ(delivery::decide_route(cfg, "[0300.1.1.1]").how, route::kind::mx);
    EXPECT_EQ(delivery::decide_route(cfg, "[1.2.3]").how, route::kind::mx);
    EXPECT_EQ(delivery::decide_route(cfg, "[x-tag:whatever]").how, route::kind::mx);
    EXPECT_FALSE(delivery::decide_route(cfg, "[x-tag:whatever]").literal);
    // A smarthost takes literals too, as a transport map "*" would.
    expect_route(sample_config(), {"[192.0.2.7]", route::kind::static_hosts, "route *", {{"smarthost.isp.test", 587}}, ""});
}

// --- plan_mx ------------------------------------------------------------------------------

namespace {

dns::mx_answer ok(std::vector<dns::mx_record> records) {
    dns::mx_answer a;
    a.status = dns_status::ok;
    a.records = std::move(records);
    return a;
}

dns::mx_answer status(dns_status s, std::string error = "") {
    dns::mx_answer a;
    a.status = s;
    a.error = std::move(error);
    return a;
}

std::vector<std::string> names(const delivery::mx_plan& p) {
    std::vector<std::string> out;
    for (const auto& h : p.hosts) out.push_back(h.name);
    return out;
}

}  // namespace

TEST(plan_mx, preference_order) {
    std::mt19937 rng(1);
    const auto p = delivery::plan_mx(ok({{30, "mx3.d.test"}, {10, "mx1.d.test"}, {20, "mx2.d.test"}}), "d.test", 25, rng);
    EXPECT_EQ(p.verdict, mx_verdict::ok);
    ASSERT_EQ(p.hosts.size(), 3u);
    EXPECT_EQ(p.hosts[0], (target_host{"mx1.d.test", 10, 25}));
    EXPECT_EQ(p.hosts[1], (target_host{"mx2.d.test", 20, 25}));
    EXPECT_EQ(p.hosts[2], (target_host{"mx3.d.test", 30, 25}));
    EXPECT_TRUE(p.reason.empty());
}

TEST(plan_mx, port_is_carried) {
    std::mt19937 rng(1);
    const auto p = delivery::plan_mx(ok({{10, "mx.d.test"}}), "d.test", 2526, rng);
    ASSERT_EQ(p.hosts.size(), 1u);
    EXPECT_EQ(p.hosts[0].port, 2526);
}

TEST(plan_mx, equal_preferences_are_shuffled_within_their_rank) {
    const auto answer = ok({{20, "c.d.test"}, {10, "a1.d.test"}, {10, "a2.d.test"}, {10, "a3.d.test"},
                            {30, "z.d.test"}, {20, "b.d.test"}});
    std::set<std::vector<std::string>> seen_first_rank;
    std::set<std::vector<std::string>> seen_second_rank;
    for (unsigned seed = 0; seed < 500; ++seed) {
        std::mt19937 rng(seed);
        const auto p = delivery::plan_mx(answer, "d.test", 25, rng);
        ASSERT_EQ(p.verdict, mx_verdict::ok);
        const auto n = names(p);
        ASSERT_EQ(n.size(), 6u);
        // The ranks never mix: 10s, then 20s, then 30.
        for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(p.hosts[i].preference, 10);
        EXPECT_EQ(p.hosts[3].preference, 20);
        EXPECT_EQ(p.hosts[4].preference, 20);
        EXPECT_EQ(n[5], "z.d.test");
        seen_first_rank.insert({n[0], n[1], n[2]});
        seen_second_rank.insert({n[3], n[4]});
    }
    EXPECT_EQ(seen_first_rank.size(), 6u);  // all 3! permutations are reachable
    EXPECT_EQ(seen_second_rank.size(), 2u);
}

TEST(plan_mx, deterministic_per_seed_and_independent_of_dns_order) {
    const auto a = ok({{10, "a.d.test"}, {10, "b.d.test"}, {10, "c.d.test"}, {10, "d.d.test"}});
    const auto b = ok({{10, "d.d.test"}, {10, "c.d.test"}, {10, "b.d.test"}, {10, "a.d.test"}});
    for (unsigned seed : {7u, 12345u}) {
        std::mt19937 r1(seed), r2(seed), r3(seed);
        const auto p1 = delivery::plan_mx(a, "d.test", 25, r1);
        const auto p2 = delivery::plan_mx(a, "d.test", 25, r2);
        const auto p3 = delivery::plan_mx(b, "d.test", 25, r3);
        EXPECT_EQ(names(p1), names(p2)) << "seed " << seed;
        EXPECT_EQ(names(p1), names(p3)) << "seed " << seed;
    }
    // Two seeds that give different orders exist (the shuffle really depends on the engine).
    std::set<std::vector<std::string>> orders;
    for (unsigned seed = 0; seed < 20; ++seed) {
        std::mt19937 r(seed);
        orders.insert(names(delivery::plan_mx(a, "d.test", 25, r)));
    }
    EXPECT_GT(orders.size(), 1u);
}

TEST(plan_mx, duplicate_hosts_kept_once_at_best_preference) {
    std::mt19937 rng(3);
    const auto p = delivery::plan_mx(ok({{20, "mx.d.test"}, {10, "MX.d.test"}, {15, "other.d.test"}}), "d.test", 25, rng);
    ASSERT_EQ(p.hosts.size(), 2u);
    EXPECT_EQ(p.hosts[0], (target_host{"mx.d.test", 10, 25}));
    EXPECT_EQ(p.hosts[1], (target_host{"other.d.test", 15, 25}));
}

TEST(plan_mx, null_mx) {
    std::mt19937 rng(1);
    const auto p = delivery::plan_mx(ok({{0, ""}}), "nomail.test", 25, rng);
    EXPECT_EQ(p.verdict, mx_verdict::null_mx);
    EXPECT_TRUE(p.hosts.empty());
    EXPECT_NE(p.reason.find("does not accept mail"), std::string::npos) << p.reason;

    // A null MX among other records (RFC 7505 3 forbids it): the "no mail" statement wins.
    const auto mixed = delivery::plan_mx(ok({{10, "mx.nomail.test"}, {0, ""}}), "nomail.test", 25, rng);
    EXPECT_EQ(mixed.verdict, mx_verdict::null_mx);
    EXPECT_TRUE(mixed.hosts.empty());
    EXPECT_NE(mixed.reason.find("RFC 7505"), std::string::npos) << mixed.reason;
}

TEST(plan_mx, nxdomain_nodata_temporary_bogus) {
    std::mt19937 rng(1);
    auto p = delivery::plan_mx(status(dns_status::nxdomain, "nope.test/MX: no such domain"), "Nope.Test", 25, rng);
    EXPECT_EQ(p.verdict, mx_verdict::no_such_domain);
    EXPECT_TRUE(p.hosts.empty());
    EXPECT_NE(p.reason.find("nope.test"), std::string::npos) << p.reason;

    p = delivery::plan_mx(status(dns_status::nodata), "A.Example.Test.", 2526, rng);
    EXPECT_EQ(p.verdict, mx_verdict::implicit);
    ASSERT_EQ(p.hosts.size(), 1u);
    EXPECT_EQ(p.hosts[0], (target_host{"a.example.test", 0, 2526}));

    p = delivery::plan_mx(status(dns_status::temporary, "d.test/MX: SERVFAIL"), "d.test", 25, rng);
    EXPECT_EQ(p.verdict, mx_verdict::temporary);
    EXPECT_TRUE(p.hosts.empty());
    EXPECT_NE(p.reason.find("SERVFAIL"), std::string::npos) << p.reason;

    p = delivery::plan_mx(status(dns_status::bogus, "d.test/MX: DNSSEC validation failed"), "d.test", 25, rng);
    EXPECT_EQ(p.verdict, mx_verdict::temporary);
    EXPECT_TRUE(p.hosts.empty());
    EXPECT_NE(p.reason.find("DNSSEC"), std::string::npos) << p.reason;
}

TEST(plan_mx, ip_literal_hosts_are_dropped) {
    std::mt19937 rng(1);
    auto p = delivery::plan_mx(ok({{10, "192.0.2.1"}, {20, "mx.d.test"}}), "d.test", 25, rng);
    EXPECT_EQ(p.verdict, mx_verdict::ok);
    ASSERT_EQ(p.hosts.size(), 1u);
    EXPECT_EQ(p.hosts[0].name, "mx.d.test");
    EXPECT_NE(p.reason.find("192.0.2.1"), std::string::npos) << p.reason;

    // Nothing left: final (Postfix's DNS_INVAL bounces at once), not a lookup to retry.
    p = delivery::plan_mx(ok({{10, "192.0.2.1"}, {10, "2001:db8::1"}}), "d.test", 25, rng);
    EXPECT_EQ(p.verdict, mx_verdict::no_usable_host);
    EXPECT_TRUE(p.hosts.empty());
    EXPECT_NE(p.reason.find("no usable MX host"), std::string::npos) << p.reason;
}

// The resolver's answer when every MX record is malformed (dns/answers.hpp): no usable host,
// with the resolver's reason.
TEST(plan_mx, ok_without_records_has_no_usable_host) {
    std::mt19937 rng(1);
    auto ans = ok({});
    ans.error = "every MX record is malformed";
    const auto p = delivery::plan_mx(ans, "d.test", 25, rng);
    EXPECT_EQ(p.verdict, mx_verdict::no_usable_host);
    EXPECT_NE(p.reason.find("no usable MX host for d.test: every MX record is malformed"), std::string::npos)
        << p.reason;
}

// Postfix's smtp_randomize_addresses: one host's addresses in random order within each family,
// IPv4 ones still first. Over 200 orderings each family's two addresses come both ways round
// (the chance that a fair shuffle never does is 2 * 2^-200).
TEST(order_addresses, shuffles_within_each_family_ipv4_first) {
    std::mt19937 rng(7);
    std::set<std::vector<std::string>> seen;
    for (int i = 0; i < 200; ++i) {
        std::vector<std::string> ips = {"2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2"};
        delivery::order_addresses(ips, rng);
        ASSERT_EQ(ips.size(), 4u);
        EXPECT_EQ(ips[0].find(':'), std::string::npos) << ips[0];
        EXPECT_EQ(ips[1].find(':'), std::string::npos) << ips[1];
        EXPECT_NE(ips[2].find(':'), std::string::npos) << ips[2];
        EXPECT_NE(ips[3].find(':'), std::string::npos) << ips[3];
        seen.insert(ips);
    }
    EXPECT_EQ(seen.size(), 4u);  // {v4 a,b | b,a} x {v6 a,b | b,a}
    std::vector<std::string> one = {"192.0.2.9"}, none;
    delivery::order_addresses(one, rng);
    delivery::order_addresses(none, rng);
    EXPECT_EQ(one, std::vector<std::string>{"192.0.2.9"});
    EXPECT_TRUE(none.empty());
}

TEST(plan_mx, verdict_names) {
    EXPECT_EQ(delivery::to_string(mx_verdict::null_mx), "null-mx");
    EXPECT_EQ(delivery::to_string(mx_verdict::no_such_domain), "no-such-domain");
    EXPECT_EQ(delivery::to_string(mx_verdict::no_usable_host), "no-usable-host");
    EXPECT_EQ(delivery::to_string(route::kind::static_hosts), "static");
}
