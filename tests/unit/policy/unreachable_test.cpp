// tests/unit/policy/unreachable_test.cpp - next-hop addresses marked down after a failed
// connection: for `hold`, with the failure's reason; not when a connection to the address
// succeeded after the failed one was started; cleared by a success and by clear(); a longer
// earlier mark is not shortened; and the table prunes what can no longer matter.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "policy/unreachable.hpp"

using postern::policy::unreachable_addresses;
using namespace std::chrono_literals;

namespace {
const unreachable_addresses::clock::time_point t0 = unreachable_addresses::clock::time_point{} + 1000h;
const std::string a = "192.0.2.1:25";
const std::string b = "192.0.2.2:25";
}  // namespace

TEST(Unreachable, AFailedAddressIsDownForTheHoldWithItsReason) {
    unreachable_addresses u;
    EXPECT_FALSE(u.down(a, t0));
    u.failed(a, t0, t0 + 30s, "connect to mx[192.0.2.1]:25: timed out", 60s);
    EXPECT_EQ(u.down(a, t0 + 30s), "connect to mx[192.0.2.1]:25: timed out");
    EXPECT_TRUE(u.down(a, t0 + 89s));
    EXPECT_FALSE(u.down(a, t0 + 90s));  // the hold is over: tried again
    EXPECT_FALSE(u.down(b, t0 + 30s));  // only that address
}

TEST(Unreachable, ASuccessSinceTheFailedAttemptStartedMarksNothing) {
    unreachable_addresses u;
    u.reached(a, t0 + 5s);                          // another connection got through meanwhile
    u.failed(a, t0, t0 + 30s, "timed out", 60s);   // this one was started before it
    EXPECT_FALSE(u.down(a, t0 + 30s));
    u.failed(a, t0 + 6s, t0 + 36s, "timed out", 60s);  // started after the success: down
    EXPECT_TRUE(u.down(a, t0 + 36s));
}

TEST(Unreachable, ASuccessClearsTheMark) {
    unreachable_addresses u;
    u.failed(a, t0, t0 + 1s, "refused", 60s);
    ASSERT_TRUE(u.down(a, t0 + 2s));
    u.reached(a, t0 + 3s);  // a connection set up before the mark (a forced retry) got through
    EXPECT_FALSE(u.down(a, t0 + 3s));
}

TEST(Unreachable, ClearForgetsEveryMark) {
    unreachable_addresses u;
    u.failed(a, t0, t0 + 1s, "refused", 60s);
    u.failed(b, t0, t0 + 1s, "refused", 60s);
    u.clear();
    EXPECT_FALSE(u.down(a, t0 + 2s));
    EXPECT_FALSE(u.down(b, t0 + 2s));
}

TEST(Unreachable, AShorterLaterHoldDoesNotShortenTheMark) {
    unreachable_addresses u;
    u.failed(a, t0, t0 + 1s, "timed out", 300s);
    u.failed(a, t0 + 2s, t0 + 3s, "refused", 1s);  // the schedule was shortened by a reload
    EXPECT_EQ(u.down(a, t0 + 100s), "timed out");
    u.failed(a, t0 + 200s, t0 + 200s, "refused", 300s);  // a later one extends it
    EXPECT_EQ(u.down(a, t0 + 450s), "refused");
}

TEST(Unreachable, PrunesWhatCanNoLongerMatter) {
    unreachable_addresses u;
    for (std::size_t i = 0; i < unreachable_addresses::prune_above; ++i)
        u.reached("198.51.100." + std::to_string(i) + ":25", t0);
    u.failed(a, t0, t0, "refused", 3600s);
    const auto later = t0 + unreachable_addresses::longest_attempt + 1s;
    u.reached(b, later);  // over the limit: the old successes go, the mark and the new one stay
    EXPECT_EQ(u.size(), 2u);
    EXPECT_TRUE(u.down(a, later));
    EXPECT_FALSE(u.down(b, later));
}
