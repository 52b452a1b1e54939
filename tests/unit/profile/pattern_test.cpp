// tests/unit/profile/pattern_test.cpp - profile entries: parsing, normal forms, canonical keys,
// address prefixes and wildcard names
#include "profile/pattern.hpp"

#include <gtest/gtest.h>

#include <string_view>

namespace postern::profile {
namespace {

TEST(ParseIp, FamiliesAndCanonicalText) {
    const struct {
        const char* in;
        const char* canonical;  // nullptr = not an address
        bool v6;
    } cases[] = {
        {"192.0.2.7", "192.0.2.7", false},
        {"0.0.0.0", "0.0.0.0", false},
        {"2001:DB8:0:0::7", "2001:db8::7", true},
        {"::1", "::1", true},
        {"::ffff:192.0.2.7", "192.0.2.7", false},  // IPv4-mapped is IPv4
        {"::FFFF:c000:0207", "192.0.2.7", false},
        {"fe80::1%eth0", "fe80::1", true},  // a zone in a fact is ignored
        {"192.0.2.07", nullptr, false},
        {"192.0.2", nullptr, false},
        {"[::1]", nullptr, false},
        {"", nullptr, false},
        {"mx.test", nullptr, false},
    };
    for (const auto& c : cases) {
        auto a = parse_ip(c.in);
        if (!c.canonical) {
            EXPECT_FALSE(a) << c.in;
            continue;
        }
        ASSERT_TRUE(a) << c.in;
        EXPECT_EQ(to_string(*a), c.canonical);
        EXPECT_EQ(a->v6, c.v6) << c.in;
    }
}

// inet_pton reads a C string: a NUL (a TOML "\u0000") must not end the text early, so that
// "10.0.0.1\0 anything" is no address and "10.0.0.0\0zz/8" no block (it was 10.0.0.1, /8).
TEST(ParseIp, NulInsideIsNoAddress) {
    using namespace std::string_view_literals;
    for (auto s : {"10.0.0.1\0 anything"sv, "10.0.0.0\0zz"sv, "::1\0x"sv, "10.0.0.1\0"sv})
        EXPECT_FALSE(parse_ip(s)) << "NUL at " << s.find('\0');
}

TEST(Patterns, NulInAnyEntryIsRefused) {
    using namespace std::string_view_literals;
    for (auto s : {"10.0.0.1\0 anything"sv, "10.0.0.0\0zz/8"sv, "10.0.0.0/8\0"sv, "10.1.\0*"sv, "10.1.*\0"sv,
                   "mx.test\0.evil"sv, "*.p.test\0"sv, "*\0"sv, "::1\0x"sv}) {
        auto p = parse_host_pattern(s);
        ASSERT_FALSE(p) << "hosts entry accepted as " << p->text;
        EXPECT_NE(p.error_message().find("contains a NUL character"), std::string::npos) << p.error_message();
    }
    for (auto s : {"p.test\0x"sv, "*.p.test\0"sv}) {
        auto p = parse_domain_pattern(s);
        ASSERT_FALSE(p) << "domain entry accepted as " << p->text;
        EXPECT_NE(p.error_message().find("contains a NUL character"), std::string::npos) << p.error_message();
    }
}

TEST(PrefixContains, BitsAndFamilies) {
    const auto ip = [](const char* s) { return *parse_ip(s); };
    EXPECT_TRUE(prefix_contains(ip("192.0.2.0"), 24, ip("192.0.2.255")));
    EXPECT_FALSE(prefix_contains(ip("192.0.2.0"), 24, ip("192.0.3.0")));
    EXPECT_TRUE(prefix_contains(ip("198.51.96.0"), 20, ip("198.51.111.1")));
    EXPECT_FALSE(prefix_contains(ip("198.51.96.0"), 20, ip("198.51.112.1")));
    EXPECT_TRUE(prefix_contains(ip("10.0.0.0"), 7, ip("11.255.0.1")));
    EXPECT_FALSE(prefix_contains(ip("10.0.0.0"), 7, ip("12.0.0.1")));
    EXPECT_TRUE(prefix_contains(ip("0.0.0.0"), 0, ip("203.0.113.9")));
    EXPECT_TRUE(prefix_contains(ip("192.0.2.7"), 32, ip("192.0.2.7")));
    EXPECT_FALSE(prefix_contains(ip("192.0.2.7"), 32, ip("192.0.2.6")));
    EXPECT_TRUE(prefix_contains(ip("2001:db8::"), 32, ip("2001:db8:ffff::1")));
    EXPECT_TRUE(prefix_contains(ip("2001:db8:1::"), 63, ip("2001:db8:1:1::1")));
    EXPECT_FALSE(prefix_contains(ip("2001:db8:1::"), 64, ip("2001:db8:1:1::1")));
    // Never across families, not even with /0.
    EXPECT_FALSE(prefix_contains(ip("::"), 0, ip("192.0.2.7")));
    EXPECT_FALSE(prefix_contains(ip("0.0.0.0"), 0, ip("2001:db8::1")));
    EXPECT_TRUE(prefix_contains(ip("192.0.2.0"), 24, ip("::ffff:192.0.2.9")));
}

TEST(HostPattern, KindsTextAndKeys) {
    const struct {
        const char* in;
        pattern_kind kind;
        const char* text;
        const char* key;
        unsigned prefix_len;
    } cases[] = {
        {"*", pattern_kind::any, "*", "*", 0},
        {"192.0.2.7", pattern_kind::address, "192.0.2.7", "192.0.2.7", 32},
        {"2001:DB8::7", pattern_kind::address, "2001:db8::7", "2001:db8::7", 128},
        {"::ffff:192.0.2.7", pattern_kind::address, "192.0.2.7", "192.0.2.7", 32},
        {"192.0.2.0/24", pattern_kind::prefix, "192.0.2.0/24", "192.0.2.0/24", 24},
        {"192.0.2.7/32", pattern_kind::prefix, "192.0.2.7/32", "192.0.2.7", 32},
        {"0.0.0.0/0", pattern_kind::prefix, "0.0.0.0/0", "0.0.0.0/0", 0},
        {"2001:DB8:0::/32", pattern_kind::prefix, "2001:db8::/32", "2001:db8::/32", 32},
        {"2001:db8::1/128", pattern_kind::prefix, "2001:db8::1/128", "2001:db8::1", 128},
        {"::/0", pattern_kind::prefix, "::/0", "::/0", 0},
        {"::ffff:10.1.0.0/112", pattern_kind::prefix, "10.1.0.0/16", "10.1.0.0/16", 16},
        {"10.*", pattern_kind::prefix, "10.*", "10.0.0.0/8", 8},
        {"10.1.*", pattern_kind::prefix, "10.1.*", "10.1.0.0/16", 16},
        {"10.1.2.*", pattern_kind::prefix, "10.1.2.*", "10.1.2.0/24", 24},
        {"0.*", pattern_kind::prefix, "0.*", "0.0.0.0/8", 8},
        {"MX.Partner.Test", pattern_kind::name, "mx.partner.test", "mx.partner.test", 0},
        {"localhost", pattern_kind::name, "localhost", "localhost", 0},
        {"*.Partner.Test", pattern_kind::wildcard_name, "*.partner.test", "*.partner.test", 0},
        {"*.test", pattern_kind::wildcard_name, "*.test", "*.test", 0},
    };
    for (const auto& c : cases) {
        auto p = parse_host_pattern(c.in);
        ASSERT_TRUE(p) << c.in << ": " << p.error_message();
        EXPECT_EQ(p->kind, c.kind) << c.in;
        EXPECT_EQ(p->text, c.text) << c.in;
        EXPECT_EQ(p->key, c.key) << c.in;
        EXPECT_EQ(p->prefix_len, c.prefix_len) << c.in;
    }
    EXPECT_EQ(parse_host_pattern("*.partner.test")->suffix, "partner.test");
    // The pattern's own text parses back to the same key (the config stores text).
    for (const char* s : {"10.1.*", "2001:db8::/32", "192.0.2.7/32", "*.p.test", "::ffff:10.1.0.0/112"})
        EXPECT_EQ(parse_host_pattern(parse_host_pattern(s)->text)->key, parse_host_pattern(s)->key) << s;
}

TEST(DomainPattern, ExactOrWildcardOnly) {
    auto p = parse_domain_pattern("Partner.TEST");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->kind, pattern_kind::name);
    EXPECT_EQ(p->text, "partner.test");
    p = parse_domain_pattern("*.Partner.test");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->kind, pattern_kind::wildcard_name);
    EXPECT_EQ(p->suffix, "partner.test");
    for (const char* bad : {"", "*", "192.0.2.1", "10.1.*", "192.0.2.0/24", "*.", "p*.test", "a..b", "-a.test"})
        EXPECT_FALSE(parse_domain_pattern(bad)) << bad;
}

TEST(WildcardName, OneOrMoreLabels) {
    EXPECT_TRUE(wildcard_matches("partner.test", "mx.partner.test"));
    EXPECT_TRUE(wildcard_matches("partner.test", "a.b.partner.test"));
    EXPECT_FALSE(wildcard_matches("partner.test", "partner.test"));  // never the parent itself
    EXPECT_FALSE(wildcard_matches("partner.test", "xpartner.test"));
    EXPECT_FALSE(wildcard_matches("partner.test", ".partner.test"));
    EXPECT_FALSE(wildcard_matches("partner.test", "partner.test.evil"));
    EXPECT_FALSE(wildcard_matches("partner.test", "test"));
}

TEST(NameMatchRank, ExactBeatsLongerWildcardBeatsShorter) {
    const auto rank = [](const char* pat, const char* name) {
        return name_match_rank(*parse_host_pattern(pat), normalise_name(name));
    };
    EXPECT_EQ(rank("mx.p.test", "mx.p.test"), rank("mx.p.test", "MX.P.Test."));
    EXPECT_GT(rank("mx.p.test", "mx.p.test"), rank("*.p.test", "mx.p.test"));
    EXPECT_GT(rank("*.eu.p.test", "mx.eu.p.test"), rank("*.p.test", "mx.eu.p.test"));
    EXPECT_GT(rank("*.p.test", "mx.eu.p.test"), 0u);
    EXPECT_EQ(rank("*.eu.p.test", "eu.p.test"), 0u);
    EXPECT_EQ(rank("mx.p.test", "mx2.p.test"), 0u);
    EXPECT_EQ(rank("192.0.2.7", "mx.p.test"), 0u);  // not a name pattern
    EXPECT_EQ(rank("*", "mx.p.test"), 0u);          // "*" is its own, last, step
}

TEST(NormaliseName, LowerCaseWithoutTrailingDot) {
    EXPECT_EQ(normalise_name("MX.Partner.Test."), "mx.partner.test");
    EXPECT_EQ(normalise_name("mx.partner.test"), "mx.partner.test");
    EXPECT_EQ(normalise_name(""), "");
}

}  // namespace
}  // namespace postern::profile
