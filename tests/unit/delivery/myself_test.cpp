// tests/unit/delivery/myself_test.cpp - RFC 5321 5.1: MX records at or above our own
// preference are discarded; who "myself" is (name, listen addresses, wildcard listeners).
#include <gtest/gtest.h>

#include "delivery/myself.hpp"

using namespace postern;
using delivery::target_host;

namespace {

delivery::self_identity me(std::vector<config::host_port> listen, std::vector<std::string> local = {}) {
    return {"mx.postern.test", std::move(listen), std::move(local)};
}

std::vector<target_host> hosts() {
    return {{"mxa.d.test", 10, 25}, {"mxb.d.test", 10, 25}, {"mxc.d.test", 20, 25}, {"mxd.d.test", 30, 25}};
}

std::vector<std::string> names(const std::vector<target_host>& hs) {
    std::vector<std::string> out;
    for (const auto& h : hs) out.push_back(h.name);
    return out;
}

}  // namespace

TEST(myself, name_matches_case_insensitively_without_trailing_dot) {
    const auto m = me({{"127.0.0.1", 25}});
    EXPECT_TRUE(delivery::is_my_name(m, "mx.postern.test"));
    EXPECT_TRUE(delivery::is_my_name(m, "MX.Postern.Test."));
    EXPECT_FALSE(delivery::is_my_name(m, "mx2.postern.test"));
    EXPECT_FALSE(delivery::is_my_name(delivery::self_identity{}, ""));
}

TEST(myself, identity_of_config) {
    config::config c;
    c.hostname = "MX.Example.Test.";
    c.server.listen = {{"192.0.2.1", 25}};
    const auto m = delivery::identity_of(c);
    EXPECT_EQ(m.hostname, "mx.example.test");
    EXPECT_TRUE(delivery::is_my_name(m, "mx.example.test"));
    EXPECT_TRUE(delivery::is_my_address(m, "192.0.2.1", 25));
}

TEST(myself, address_matches_a_listen_address_on_the_delivery_port) {
    const auto m = me({{"127.0.0.1", 25}, {"2001:db8::1", 25}, {"192.0.2.9", 2525}});
    EXPECT_TRUE(delivery::is_my_address(m, "127.0.0.1", 25));
    EXPECT_TRUE(delivery::is_my_address(m, "2001:db8:0:0::1", 25));  // any textual form
    EXPECT_FALSE(delivery::is_my_address(m, "127.0.0.2", 25));         // exact, not the /8
    EXPECT_FALSE(delivery::is_my_address(m, "127.0.0.1", 2525));       // another port: not us
    EXPECT_FALSE(delivery::is_my_address(m, "192.0.2.9", 25));
    EXPECT_TRUE(delivery::is_my_address(m, "192.0.2.9", 2525));
    EXPECT_FALSE(delivery::is_my_address(m, "not an address", 25));
    EXPECT_TRUE(delivery::listens_on_port(m, 2525));
    EXPECT_FALSE(delivery::listens_on_port(m, 587));
    EXPECT_FALSE(delivery::listens_on_wildcard(m, 25));
}

TEST(myself, wildcard_listener_takes_loopback_and_local_addresses) {
    const auto v4 = me({{"0.0.0.0", 25}}, {"192.0.2.7", "2001:db8::7"});
    EXPECT_TRUE(delivery::listens_on_wildcard(v4, 25));
    EXPECT_FALSE(delivery::listens_on_wildcard(v4, 26));
    EXPECT_TRUE(delivery::is_my_address(v4, "127.0.0.1", 25));
    EXPECT_TRUE(delivery::is_my_address(v4, "127.1.2.3", 25));
    EXPECT_TRUE(delivery::is_my_address(v4, "192.0.2.7", 25));
    EXPECT_FALSE(delivery::is_my_address(v4, "2001:db8::7", 25));  // 0.0.0.0 is IPv4 only
    EXPECT_FALSE(delivery::is_my_address(v4, "192.0.2.8", 25));
    EXPECT_FALSE(delivery::is_my_address(v4, "127.0.0.1", 26));

    const auto v6 = me({{"::", 25}}, {"2001:db8::7"});
    EXPECT_TRUE(delivery::is_my_address(v6, "::1", 25));
    EXPECT_TRUE(delivery::is_my_address(v6, "2001:db8::7", 25));
    EXPECT_FALSE(delivery::is_my_address(v6, "2001:db8::8", 25));

    // [::] is bound IPv6-only: the machine's IPv4 addresses (another MTA may listen there)
    // are not us, in either textual form.
    const auto v6only = me({{"::", 25}}, {"192.0.2.7", "127.0.0.1", "2001:db8::7"});
    EXPECT_FALSE(delivery::is_my_address(v6only, "192.0.2.7", 25));
    EXPECT_FALSE(delivery::is_my_address(v6only, "127.0.0.1", 25));
    EXPECT_FALSE(delivery::is_my_address(v6only, "::ffff:127.0.0.1", 25));
    EXPECT_TRUE(delivery::is_my_address(v6only, "2001:db8::7", 25));
}

// Review: a connection to 0.0.0.0 reaches 127.0.0.1 (and :: reaches ::1) on Linux; an MX host
// at 0.0.0.0 was not taken for us and mail looped until the hop limit.
TEST(myself, the_unspecified_address_is_the_loopback) {
    const auto m = me({{"127.0.0.1", 25}, {"::1", 25}});
    EXPECT_TRUE(delivery::is_my_address(m, "0.0.0.0", 25));
    EXPECT_TRUE(delivery::is_my_address(m, "::ffff:0.0.0.0", 25));
    EXPECT_TRUE(delivery::is_my_address(m, "::", 25));
    EXPECT_FALSE(delivery::is_my_address(m, "0.0.0.0", 26));
    const auto other = me({{"127.0.0.2", 25}});  // 0.0.0.0 reaches 127.0.0.1, not this one
    EXPECT_FALSE(delivery::is_my_address(other, "0.0.0.0", 25));
    EXPECT_FALSE(delivery::is_my_address(other, "::", 25));
    const auto any = me({{"0.0.0.0", 25}});
    EXPECT_TRUE(delivery::is_my_address(any, "0.0.0.0", 25));
}

TEST(myself, discard_at_and_above_our_preference) {
    struct row {
        std::string self;  // the host that is us ("" none)
        std::vector<std::string> left;
        bool appeared;
    };
    const std::vector<row> table = {
        {"", {"mxa.d.test", "mxb.d.test", "mxc.d.test", "mxd.d.test"}, false},
        {"mxd.d.test", {"mxa.d.test", "mxb.d.test", "mxc.d.test"}, true},
        {"mxc.d.test", {"mxa.d.test", "mxb.d.test"}, true},
        {"mxb.d.test", {}, true},  // equal preference to ours goes too (RFC 5321 5.1)
        {"mxa.d.test", {}, true},
    };
    for (const auto& r : table) {
        SCOPED_TRACE(r.self);
        auto hs = hosts();
        const bool appeared = delivery::discard_self_and_worse(hs, [&](const target_host& h) { return h.name == r.self; });
        EXPECT_EQ(appeared, r.appeared);
        EXPECT_EQ(names(hs), r.left);
    }
}
