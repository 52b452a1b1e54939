// tests/unit/net/parking_test.cpp - runtime::parking on its own (no runner, no I/O): when a
// delivery pass may wait for a destination's slot with its message, when it parks instead, and
// which parked message starts again when; each start is recorded instead of run.
//   - a destination keeps at most `per_destination` passes waiting, all destinations `total`,
//     when message slots are short (else a pass always waits);
//   - a slot given to a waiter starts the oldest parked message, and only one;
//   - a started message that arrives and waits starts nothing more (no message is loaded only
//     to park again); one that takes a free slot at once, or ends before it arrives, does;
//   - a destination parked by the total limit alone starts again when any wait ends, and takes
//     its turn with saturated destinations whose own waits keep ending;
//   - a message started otherwise (forget) is skipped, and parked again it takes its old
//     place (one place, not two); stale entries alone do not count as messages parked.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "runtime/parking.hpp"

using postern::runtime::parking;

namespace {

struct parking_fixture : ::testing::Test {
    std::vector<std::pair<std::string, bool>> started;
    parking make(std::size_t per_destination, std::size_t total) {
        return parking(per_destination, total,
                       [this](const std::string& id, bool force) { started.emplace_back(id, force); });
    }
    std::vector<std::string> ids() const {
        std::vector<std::string> v;
        for (const auto& [id, f] : started) v.push_back(id);
        return v;
    }
};

using strings = std::vector<std::string>;

TEST_F(parking_fixture, waits_up_to_the_destination_limit_then_parks) {
    auto p = make(2, 100);
    EXPECT_FALSE(p.arrive("d", "a", /*slot_free=*/true)) << "a pass with a free slot never parks";
    for (const char* id : {"a", "b"}) {
        EXPECT_FALSE(p.arrive("d", id, false));
        p.wait_begins("d");
    }
    EXPECT_FALSE(p.arrive("d", "c", false, /*slots_short=*/false)) << "parked with message slots to spare";
    EXPECT_TRUE(p.arrive("d", "c", false));
    EXPECT_FALSE(p.arrive("e", "x", false)) << "another destination has its own limit";
    p.park("c", "d", false);
    EXPECT_EQ(p.parked(), 1u);
    EXPECT_TRUE(started.empty());
}

TEST_F(parking_fixture, a_slot_to_a_waiter_starts_the_oldest_parked_one_only) {
    auto p = make(2, 100);
    p.wait_begins("d");
    p.wait_begins("d");
    p.park("x", "d", false);
    p.park("y", "d", true);
    p.park("z", "d", false);
    p.wait_ends("d");
    EXPECT_EQ(ids(), strings{"x"});
    p.wait_ends("d");
    EXPECT_EQ(ids(), (strings{"x", "y"}));
    EXPECT_TRUE(started[1].second) << "a forced pass lost its force while parked";
    EXPECT_EQ(p.parked(), 1u);
}

TEST_F(parking_fixture, a_started_message_that_arrives_and_waits_starts_nothing_more) {
    auto p = make(2, 100);
    p.wait_begins("d");
    p.wait_begins("d");
    p.park("x", "d", false);
    p.park("y", "d", false);
    p.wait_ends("d");  // a waiter got a slot: x starts, on its way (counted)
    ASSERT_EQ(ids(), strings{"x"});
    EXPECT_FALSE(p.arrive("d", "x", false)) << "x, on its way, parked again on arrival";
    p.wait_begins("d");
    EXPECT_EQ(ids(), strings{"x"}) << "y was loaded only to park again";
    EXPECT_TRUE(p.arrive("d", "n", false)) << "a new pass took the place x was started for";
}

TEST_F(parking_fixture, a_started_message_that_takes_a_free_slot_or_ends_starts_the_next) {
    auto p = make(1, 100);
    p.wait_begins("d");
    p.park("x", "d", false);
    p.park("y", "d", false);
    p.park("z", "d", false);
    p.wait_ends("d");
    ASSERT_EQ(ids(), strings{"x"});
    EXPECT_FALSE(p.arrive("d", "x", /*slot_free=*/true));
    EXPECT_EQ(ids(), (strings{"x", "y"}));
    p.pass_ended("y");  // deleted meanwhile, say: never arrives
    EXPECT_EQ(ids(), (strings{"x", "y", "z"}));
    EXPECT_EQ(p.parked(), 0u);
}

TEST_F(parking_fixture, the_total_limit_parks_and_any_ending_wait_starts_them_again) {
    auto p = make(10, 3);
    p.wait_begins("a");
    p.wait_begins("b");
    p.wait_begins("c");
    EXPECT_TRUE(p.arrive("d", "x", false)) << "waited beyond the total limit";
    p.park("x", "d", false);
    EXPECT_TRUE(p.arrive("e", "y", false));
    p.park("y", "e", false);
    p.wait_ends("b");  // nothing ever happens on d or e themselves
    EXPECT_EQ(started.size(), 1u);
    p.wait_ends("a");
    EXPECT_EQ(started.size(), 2u);
    EXPECT_EQ(p.parked(), 0u) << "a destination parked by the total limit alone was stranded";
}

// Found by review: a destination parked by the total limit alone was passed over for good
// while saturated ones (each ending wait started their own next parked message) had any left.
TEST_F(parking_fixture, a_destination_parked_by_the_total_limit_takes_its_turn) {
    auto p = make(2, 4);
    for (const char* d : {"a", "a", "b", "b"}) p.wait_begins(d);
    for (const char* id : {"a0", "a1", "a2", "a3"}) p.park(id, "a", false);
    for (const char* id : {"b0", "b1", "b2", "b3"}) p.park(id, "b", false);
    EXPECT_TRUE(p.arrive("h", "h0", false)) << "h has room of its own: only the total parks it";
    p.park("h0", "h", false);
    ASSERT_TRUE(started.empty());
    // Each start is a wait that ends in turn (it arrives, waits, and gets a slot).
    const char* ends[] = {"a", "b", "a", "b"};
    for (const char* d : ends) {
        p.wait_ends(d);
        if (!started.empty()) {
            const std::string& id = started.back().first;
            const std::string dest = id.substr(0, 1);
            EXPECT_FALSE(p.arrive(dest, id, false));
            p.wait_begins(dest);
        }
    }
    const auto v = ids();
    EXPECT_NE(std::find(v.begin(), v.end(), "h0"), v.end())
        << "h0 was never started; started: " << ::testing::PrintToString(v);
}

TEST_F(parking_fixture, a_message_started_otherwise_is_skipped_and_parked_again_keeps_one_place) {
    auto p = make(1, 100);
    p.wait_begins("d");
    p.park("x", "d", false);
    p.park("y", "d", false);
    p.forget("x");  // `queue retry x`: its own pass now
    EXPECT_EQ(p.parked(), 1u);
    p.wait_ends("d");
    EXPECT_EQ(ids(), strings{"y"}) << "the place of x, started otherwise, was not skipped";
    p.park("x", "d", false);  // that pass parked it again: one place, not two
    p.pass_ended("y");
    EXPECT_EQ(ids(), (strings{"y", "x"}));
    p.pass_ended("x");
    p.wait_begins("d");
    p.wait_ends("d");
    EXPECT_EQ(ids(), (strings{"y", "x"})) << "x started twice";
    EXPECT_EQ(p.parked(), 0u);
}

// Found by review: with message slots to spare new passes waited beyond the destination's
// limit, and parked messages (which start only within it) were overtaken for as long as the
// load lasted.
TEST_F(parking_fixture, a_new_pass_parks_behind_messages_parked_for_its_destination) {
    auto p = make(1, 100);
    p.wait_begins("d");
    p.park("x", "d", false);
    EXPECT_TRUE(p.arrive("d", "n", false, /*slots_short=*/false)) << "n overtook x";
    EXPECT_FALSE(p.arrive("e", "m", false, /*slots_short=*/false));
}

// Found by review: a message parked on two destinations waited for the first one only.
TEST_F(parking_fixture, a_message_parked_on_two_destinations_starts_with_the_first_that_has_room) {
    auto p = make(1, 100);
    p.wait_begins("d");
    p.wait_begins("f");
    p.park("m", std::vector<std::string>{"d", "f"}, false);
    EXPECT_EQ(p.parked(), 1u);
    p.wait_ends("f");
    EXPECT_EQ(ids(), strings{"m"});
    p.pass_ended("m");
    p.wait_ends("d");  // its place in d's queue is stale now
    EXPECT_EQ(ids(), strings{"m"}) << "started twice";
    EXPECT_EQ(p.parked(), 0u);
}

// Found by review: a message started otherwise (its co-recipient's retry timer) and parked
// again went to the back of the queue each time; and a queue of stale entries only made new
// passes park as if messages were waiting.
TEST_F(parking_fixture, parked_again_a_message_takes_its_old_place) {
    auto p = make(1, 100);
    p.wait_begins("d");
    for (const char* id : {"x", "m", "y"}) p.park(id, "d", false);
    p.forget("m");  // its retry timer started it; it parks again
    p.park("m", "d", false);
    p.wait_ends("d");
    p.pass_ended("x");
    EXPECT_EQ(ids(), (strings{"x", "m"})) << "m lost its place";
}

TEST_F(parking_fixture, stale_entries_alone_do_not_make_a_new_pass_park) {
    auto p = make(1, 100);
    p.wait_begins("d");
    p.wait_begins("f");
    p.park("m", std::vector<std::string>{"d", "f"}, false);
    p.wait_ends("d");  // m starts for d; its place in f's queue is stale
    ASSERT_EQ(ids(), strings{"m"});
    EXPECT_FALSE(p.arrive("f", "n", false, /*slots_short=*/false)) << "parked behind nothing";
}

TEST_F(parking_fixture, park_with_room_starts_it_again_at_once) {
    auto p = make(2, 100);
    // The pass decided to park at its group; by its end the waiters got their slots.
    p.park("x", "d", false);
    EXPECT_EQ(ids(), strings{"x"}) << "parked with room and nothing left to start it";
}

TEST_F(parking_fixture, clear_forgets_every_parked_message) {
    auto p = make(1, 100);
    p.wait_begins("d");
    p.park("x", "d", false);
    p.clear();
    p.wait_ends("d");
    EXPECT_TRUE(started.empty());
    EXPECT_EQ(p.parked(), 0u);
}

}  // namespace
