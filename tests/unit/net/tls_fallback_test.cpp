// tests/unit/net/tls_fallback_test.cpp - outbound::after_failed_handshake, the SPEC §1.1
// decision after a failed opportunistic handshake, as a table of (the host's first failure for
// this message, now, handshake_retry_delay) -> (fall back now?, first failure to record, next
// attempt no sooner than):
//   - a first failure defers until the delay has passed;
//   - a later failure falls back only once the FIRST failure is the delay old (a `queue retry`,
//     or another recipient group's earlier retry, must not cut the wait short), and keeps that
//     first time (a failure on a forced attempt does not push the wait back);
//   - a first failure recorded in the future (the clock was stepped back since) counts as now:
//     no fallback yet, and never a wait longer than the delay from now;
//   - a failure recorded without a time (0: an older state file) allows the fallback, as then.
// Asio first (see dns_resolver_test.cpp).
#include "outbound/attempt.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>

using namespace postern;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t t0 = 1'764'460'000;  // a unix time (s) in 2025
constexpr auto delay = 300s;                // the default tls.handshake_retry_delay

std::int64_t ms(std::int64_t s, std::int64_t extra_ms = 0) { return s * 1000 + extra_ms; }

TEST(after_failed_handshake, first_failure_defers_for_the_delay_from_the_next_whole_second) {
    const auto d = outbound::after_failed_handshake(std::nullopt, ms(t0, 400), delay);
    EXPECT_FALSE(d.fallback);
    EXPECT_EQ(d.first, t0 + 1);  // rounded up: first + delay is never earlier than the delay
    EXPECT_EQ(d.retry_at, t0 + 1 + 300);
    const auto exact = outbound::after_failed_handshake(std::nullopt, ms(t0), delay);
    EXPECT_EQ(exact.first, t0);
    EXPECT_EQ(exact.retry_at, t0 + 300);
}

TEST(after_failed_handshake, failure_before_the_delay_since_the_first_defers_to_the_first_plus_the_delay) {
    // A forced retry 10 s after the first failure, and one a second before the delay is up.
    for (const std::int64_t later : {10, 299}) {
        const auto d = outbound::after_failed_handshake(t0, ms(t0 + later, 500), delay);
        EXPECT_FALSE(d.fallback) << later;
        EXPECT_EQ(d.first, t0) << "the first failure's time was replaced";
        EXPECT_EQ(d.retry_at, t0 + 300) << "the wait restarted at the later failure";
    }
    EXPECT_FALSE(outbound::after_failed_handshake(t0, ms(t0 + 300) - 1, delay).fallback);
}

TEST(after_failed_handshake, failure_the_delay_after_the_first_falls_back) {
    for (const std::int64_t later : {300, 301, 86400}) {
        const auto d = outbound::after_failed_handshake(t0, ms(t0 + later), delay);
        EXPECT_TRUE(d.fallback) << later;
        EXPECT_EQ(d.first, t0);
    }
}

TEST(after_failed_handshake, first_failure_in_the_future_counts_as_now) {
    // Recorded an hour ahead, then the clock was stepped back: not yet, and no longer than the
    // delay from now (recorded as now, so the next attempt falls back).
    const auto d = outbound::after_failed_handshake(t0 + 3600, ms(t0), delay);
    EXPECT_FALSE(d.fallback);
    EXPECT_EQ(d.first, t0);
    EXPECT_EQ(d.retry_at, t0 + 300);
    EXPECT_TRUE(outbound::after_failed_handshake(d.first, ms(d.retry_at), delay).fallback);
}

TEST(after_failed_handshake, failure_recorded_without_a_time_falls_back_as_before) {
    const auto d = outbound::after_failed_handshake(0, ms(t0), delay);
    EXPECT_TRUE(d.fallback);
    EXPECT_EQ(d.first, 0);
}

TEST(after_failed_handshake, zero_delay_falls_back_on_the_second_failure_at_once) {
    EXPECT_FALSE(outbound::after_failed_handshake(std::nullopt, ms(t0), 0s).fallback);
    EXPECT_TRUE(outbound::after_failed_handshake(t0, ms(t0), 0s).fallback);
}

}  // namespace
