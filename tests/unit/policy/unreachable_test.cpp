// tests/unit/policy/unreachable_test.cpp - next-hop addresses marked down after a failed
// connection: for `hold` (the one asked with), with the failure's reason; only for failures of the
// peer's or the path's; not when a connection to the address succeeded after the failed one was
// started; cleared by a success made after it and by clear(); not made longer by failures while
// it holds; and the table prunes what can no longer matter.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>

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
    EXPECT_FALSE(u.down(a, t0, 60s));
    u.failed(a, t0, t0 + 30s, "connect to mx[192.0.2.1]:25: timed out", 60s);
    EXPECT_EQ(u.down(a, t0 + 30s, 60s), "connect to mx[192.0.2.1]:25: timed out");
    EXPECT_TRUE(u.down(a, t0 + 89s, 60s));
    EXPECT_FALSE(u.down(a, t0 + 90s, 60s));  // the hold is over: tried again
    EXPECT_FALSE(u.down(b, t0 + 30s, 60s));  // only that address
}

TEST(Unreachable, ASuccessSinceTheFailedAttemptStartedMarksNothing) {
    unreachable_addresses u;
    u.reached(a, t0 + 5s);                          // another connection got through meanwhile
    u.failed(a, t0, t0 + 30s, "timed out", 60s);   // this one was started before it
    EXPECT_FALSE(u.down(a, t0 + 30s, 60s));
    u.failed(a, t0 + 6s, t0 + 36s, "timed out", 60s);  // started after the success: down
    EXPECT_TRUE(u.down(a, t0 + 36s, 60s));
}

TEST(Unreachable, ASuccessClearsTheMark) {
    unreachable_addresses u;
    u.failed(a, t0, t0 + 1s, "refused", 60s);
    ASSERT_TRUE(u.down(a, t0 + 2s, 60s));
    u.reached(a, t0 + 3s);  // a connection set up before the mark (a forced retry) got through
    EXPECT_FALSE(u.down(a, t0 + 3s, 60s));
}

TEST(Unreachable, ClearForgetsEveryMark) {
    unreachable_addresses u;
    u.failed(a, t0, t0 + 1s, "refused", 60s);
    u.failed(b, t0, t0 + 1s, "refused", 60s);
    u.clear();
    EXPECT_FALSE(u.down(a, t0 + 2s, 60s));
    EXPECT_FALSE(u.down(b, t0 + 2s, 60s));
}

TEST(Unreachable, TheHoldIsTheOneAskedWith) {
    unreachable_addresses u;
    u.failed(a, t0, t0 + 1s, "timed out", 300s);
    EXPECT_TRUE(u.down(a, t0 + 100s, 300s));
    EXPECT_FALSE(u.down(a, t0 + 100s, 60s));  // the schedule was shortened by a reload
}

TEST(Unreachable, FailuresWhileDownDoNotMakeItLonger) {
    unreachable_addresses u;
    u.failed(a, t0, t0 + 30s, "timed out", 60s);
    u.failed(a, t0 + 1s, t0 + 31s, "refused", 60s);  // a connect already under way when it failed
    EXPECT_EQ(u.down(a, t0 + 89s, 60s), "timed out");
    EXPECT_FALSE(u.down(a, t0 + 90s, 60s));
    u.failed(a, t0 + 95s, t0 + 95s, "refused", 60s);  // after the hold: down again
    EXPECT_EQ(u.down(a, t0 + 100s, 60s), "refused");
}

TEST(Unreachable, ASuccessMadeBeforeTheFailureDoesNotClearIt) {
    unreachable_addresses u;
    u.failed(a, t0 + 10s, t0 + 40s, "timed out", 60s);
    u.reached(a, t0 + 5s);  // a long session, connected before that connect was even started
    EXPECT_TRUE(u.down(a, t0 + 41s, 60s));
    u.reached(a, t0 + 41s);
    EXPECT_FALSE(u.down(a, t0 + 41s, 60s));
}

TEST(Unreachable, OnlyThePeersOrThePathsFailuresCount) {
    using postern::policy::says_unreachable;
    EXPECT_TRUE(says_unreachable(std::make_error_code(std::errc::connection_refused), false));
    EXPECT_TRUE(says_unreachable(std::make_error_code(std::errc::host_unreachable), false));
    EXPECT_TRUE(says_unreachable(std::make_error_code(std::errc::network_unreachable), false));
    EXPECT_TRUE(says_unreachable(std::make_error_code(std::errc::timed_out), false));
    EXPECT_TRUE(says_unreachable(std::make_error_code(std::errc::operation_canceled), true));  // our timer
    // This machine's shortage, not the peer's fault: the address stays open.
    EXPECT_FALSE(says_unreachable(std::make_error_code(std::errc::too_many_files_open), false));
    EXPECT_FALSE(says_unreachable(std::make_error_code(std::errc::too_many_files_open_in_system), false));
    EXPECT_FALSE(says_unreachable(std::make_error_code(std::errc::address_not_available), false));
    EXPECT_FALSE(says_unreachable(std::make_error_code(std::errc::no_buffer_space), false));
    EXPECT_FALSE(says_unreachable(std::make_error_code(std::errc::operation_canceled), false));
    // The system category, as asio reports it.
    EXPECT_TRUE(says_unreachable(std::error_code(ECONNREFUSED, std::system_category()), false));
    EXPECT_FALSE(says_unreachable(std::error_code(EMFILE, std::system_category()), false));
}

TEST(Unreachable, PrunesWhatCanNoLongerMatter) {
    unreachable_addresses u;
    for (std::size_t i = 0; i + 1 < unreachable_addresses::prune_above; ++i)
        u.reached("198.51.100." + std::to_string(i) + ":25", t0);
    u.failed(a, t0, t0, "refused", 3600s);
    const auto later = t0 + unreachable_addresses::longest_attempt + 1s;
    u.reached(b, later);  // at the limit: the old successes go, the mark and the new one stay
    EXPECT_EQ(u.size(), 2u);
    EXPECT_TRUE(u.down(a, later, 3600s));
    EXPECT_FALSE(u.down(b, later, 3600s));
}

TEST(Unreachable, APruneThatFreesNothingWaitsForTheTableToDouble) {
    unreachable_addresses u;
    for (std::size_t i = 0; i < unreachable_addresses::prune_above; ++i)
        u.reached("198.51.100." + std::to_string(i) + ":25", t0);
    u.reached(a, t0 + 1s);  // at the limit, every entry recent: nothing goes
    EXPECT_EQ(u.size(), unreachable_addresses::prune_above + 1);
    const auto later = t0 + unreachable_addresses::longest_attempt + 2s;
    u.reached(b, later);  // every old one could go now, but no scan before twice the size
    EXPECT_EQ(u.size(), unreachable_addresses::prune_above + 2);
    for (std::size_t i = 0; i < unreachable_addresses::prune_above - 2; ++i)
        u.reached("203.0.113." + std::to_string(i) + ":25", later);
    ASSERT_EQ(u.size(), 2 * unreachable_addresses::prune_above);
    u.reached(b, later);  // twice the size: the scan drops the stale ones
    EXPECT_EQ(u.size(), unreachable_addresses::prune_above - 1);
}
