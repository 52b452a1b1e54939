// tests/unit/profile/requirements_test.cpp - which resolved outbound policies may share one
// session and transaction: every enforced field counts, names only where the level checks them,
// how the profile was found never does; grouping keeps the recipients' order.
#include "profile/requirements.hpp"

#include <gtest/gtest.h>

namespace postern::profile {
namespace {

using tl = tls_level;

resolved_tls_policy policy(tl level, std::string profile = "p", std::vector<std::string> names = {}) {
    resolved_tls_policy p;
    p.level = level;
    p.profile = std::move(profile);
    p.names = std::move(names);
    return p;
}

bool same(const resolved_tls_policy& a, const resolved_tls_policy& b) {
    return session_requirements(a) == session_requirements(b);
}

TEST(SessionRequirements, EveryEnforcedFieldCounts) {
    const auto base = policy(tl::ca_name, "p", {"relay.test", "a.test"});
    EXPECT_TRUE(same(base, base));
    auto p = base;
    p.profile = "q";
    EXPECT_FALSE(same(base, p)) << "profile";
    p = base;
    p.profile = "";
    EXPECT_FALSE(same(base, p)) << "no profile";
    for (tl l : {tl::none, tl::may, tl::encrypt, tl::ca, tl::fingerprint, tl::dane}) {
        p = base;
        p.level = l;
        EXPECT_FALSE(same(base, p)) << to_string(l);
    }
    p = base;
    p.names = {"relay.test", "b.test"};
    EXPECT_FALSE(same(base, p)) << "reference names";
    p = base;
    p.names = {"relay.test"};
    EXPECT_FALSE(same(base, p)) << "fewer reference names";
    p = base;
    p.min_version = config::tls_version::v1_3;
    EXPECT_FALSE(same(base, p)) << "min version";
    p = base;
    p.min_cipher_bits = 256;
    EXPECT_FALSE(same(base, p)) << "cipher bits";
    p = base;
    p.ca_file = "/etc/partner-ca.pem";
    EXPECT_FALSE(same(base, p)) << "ca file";
}

TEST(SessionRequirements, PinsCountForFingerprint) {
    auto a = policy(tl::fingerprint);
    a.fingerprints = {"sha256:aa"};
    auto b = a;
    b.fingerprints = {"sha256:bb"};
    EXPECT_FALSE(same(a, b));
    b.fingerprints = {"sha256:aa", "sha256:bb"};
    EXPECT_FALSE(same(a, b));
    b.fingerprints = a.fingerprints;
    EXPECT_TRUE(same(a, b));
}

// DANE checks the names itself (RFC 7672 3.2.2) though requires_name_match says false.
TEST(SessionRequirements, NamesCountForDane) {
    EXPECT_FALSE(same(policy(tl::dane, "p", {"mx.a.test", "a.test"}), policy(tl::dane, "p", {"mx.a.test", "b.test"})));
}

// Elsewhere the names only decide the logged trust: two domains to one smarthost stay together.
TEST(SessionRequirements, NamesNotCheckedDoNotSplit) {
    for (tl l : {tl::none, tl::may, tl::encrypt, tl::ca, tl::fingerprint})
        EXPECT_TRUE(same(policy(l, "p", {"relay.test", "a.test"}), policy(l, "p", {"relay.test", "b.test"})))
            << to_string(l);
}

TEST(SessionRequirements, HowTheProfileWasFoundDoesNotCount) {
    auto a = policy(tl::ca);
    a.step = match_step::recipient_domain;
    a.why = "recipient domain bank.test matches ...";
    auto b = policy(tl::ca);
    b.step = match_step::any;
    b.why = "\"*\" of profile p ...";
    EXPECT_TRUE(same(a, b));
}

// A field's value cannot run into the next one: "p;x" + "" differs from "p" + ";x".
TEST(SessionRequirements, FieldsAreDelimited) {
    auto a = policy(tl::ca, "p;4:ca+name;");
    auto b = policy(tl::ca, "p");
    b.ca_file = "4:ca+name;";
    EXPECT_FALSE(same(a, b));
    EXPECT_FALSE(same(policy(tl::ca_name, "p", {"a.test;b.test"}), policy(tl::ca_name, "p", {"a.test", "b.test"})));
}

TEST(GroupByRequirements, AllEqualIsOneGroup) {
    const std::vector<resolved_tls_policy> ps{policy(tl::may, "", {"relay", "a.test"}),
                                              policy(tl::may, "", {"relay", "b.test"}),
                                              policy(tl::may, "", {"relay", "c.test"})};
    EXPECT_EQ(group_by_requirements(ps), (std::vector<std::vector<std::size_t>>{{0, 1, 2}}));
    EXPECT_TRUE(group_by_requirements({}).empty());
}

// The scenario of the review: other.test under the relay's opportunistic host profile, bank.test
// under its mandatory recipient-domain profile, then more of each; and ca+name per domain.
TEST(GroupByRequirements, SplitsInOrderOfFirstMember) {
    const std::vector<resolved_tls_policy> ps{policy(tl::may, "relay"), policy(tl::ca, "strict"),
                                              policy(tl::may, "relay"), policy(tl::ca, "strict"),
                                              policy(tl::none, "off")};
    EXPECT_EQ(group_by_requirements(ps), (std::vector<std::vector<std::size_t>>{{0, 2}, {1, 3}, {4}}));
    const std::vector<resolved_tls_policy> names{policy(tl::ca_name, "h", {"10.0.0.5", "d2.test"}),
                                                 policy(tl::ca_name, "h", {"10.0.0.5", "d1.test"}),
                                                 policy(tl::ca_name, "h", {"10.0.0.5", "d2.test"})};
    EXPECT_EQ(group_by_requirements(names), (std::vector<std::vector<std::size_t>>{{0, 2}, {1}}));
}

}  // namespace
}  // namespace postern::profile
