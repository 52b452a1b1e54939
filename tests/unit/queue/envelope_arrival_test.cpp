// tests/unit/queue/envelope_arrival_test.cpp - queue::arrival_ms and delay_seconds: the
// millisecond arrival time taken from the queue id when it agrees with the whole-second
// `arrived` record (the log's delay= was up to a second too long), `arrived` itself otherwise;
// the delay never negative.
#include <gtest/gtest.h>

#include <chrono>
#include <limits>

#include <fmt/format.h>

#include "queue/envelope.hpp"
#include "queue/spool.hpp"
#include "spool_test_util.hpp"

using namespace postern;

namespace {
queue::envelope at(std::int64_t arrived, std::string id) {
    queue::envelope e;
    e.arrived = arrived;
    e.id = std::move(id);
    return e;
}
// An id as spool::new_id() makes it: 13 hex digits of microseconds, 4 of a counter.
std::string id_at_us(std::uint64_t us) { return fmt::format("{:013X}{:04X}", us, 7u); }
}  // namespace

TEST(envelope_arrival, the_id_gives_the_milliseconds_within_the_second) {
    EXPECT_EQ(queue::arrival_ms(at(1796030745, id_at_us(1796030745'768123ULL))), 1796030745'768);
    EXPECT_EQ(queue::arrival_ms(at(1796030745, id_at_us(1796030745'000999ULL))), 1796030745'000);
}

TEST(envelope_arrival, an_id_made_in_the_next_second_still_counts) {
    // `arrived` is read first, the id made just after: across a second boundary.
    EXPECT_EQ(queue::arrival_ms(at(1796030745, id_at_us(1796030746'000012ULL))), 1796030746'000);
}

TEST(envelope_arrival, an_id_that_does_not_agree_gives_the_whole_second) {
    EXPECT_EQ(queue::arrival_ms(at(1796030745, id_at_us(1796030747'500000ULL))), 1796030745'000);
    EXPECT_EQ(queue::arrival_ms(at(1796030745, id_at_us(1796030744'999000ULL))), 1796030745'000);
    EXPECT_EQ(queue::arrival_ms(at(1796030745, "ABC")), 1796030745'000);
    EXPECT_EQ(queue::arrival_ms(at(1796030745, "zz" + id_at_us(1796030745'768123ULL))), 1796030745'000);
}

TEST(envelope_arrival, a_damaged_arrived_record_stays_clear_of_overflow) {
    // parse_header takes any int64: arrived * 1000 would overflow (undefined behaviour).
    const std::int64_t latest_ms = 253402300799LL * 1000;
    EXPECT_EQ(queue::arrival_ms(at(std::numeric_limits<std::int64_t>::max(), "ABC")), latest_ms);
    EXPECT_EQ(queue::arrival_ms(at(std::numeric_limits<std::int64_t>::min(), "ABC")), 0);
    EXPECT_EQ(queue::arrival_ms(at(std::numeric_limits<std::int64_t>::max(), id_at_us(1796030745'768123ULL))),
              latest_ms);
}

TEST(envelope_arrival, the_delay_is_in_milliseconds_and_never_negative) {
    const auto e = at(1796030745, id_at_us(1796030745'768123ULL));
    EXPECT_DOUBLE_EQ(queue::delay_seconds(e, 1796030745'782), 0.014);  // not 0.782
    EXPECT_DOUBLE_EQ(queue::delay_seconds(e, 1796030745'468), 0.0);    // clock stepped back
}

using envelope_arrival_spool = test::spool_fixture;

TEST_F(envelope_arrival_spool, a_new_id_agrees_with_the_arrival_second_taken_before_it) {
    const auto now = std::chrono::system_clock::now();
    const auto arrived = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    const auto e = at(arrived, sp->new_id());
    const auto ms = queue::arrival_ms(e);
    EXPECT_GE(ms, arrived * 1000);
    EXPECT_LT(ms, arrived * 1000 + 2000);
    EXPECT_GE(ms, std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
}
