// Tests for policy/loop_choice: new connections packed onto the first session loop that is
// not busy, spilling over in order, dealt round-robin when every loop is busy.
#include "policy/loop_choice.hpp"

#include <gtest/gtest.h>

#include <array>
#include <set>

using postern::policy::loop_choice;

TEST(LoopChoice, IdleLoopsTakeEveryConnectionOnTheFirstLoop) {
    loop_choice c(4);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(c.pick(), 0u);
    const std::array<double, 4> idle{0.1, 0.0, 0.0, 0.0};
    c.observe(idle);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(c.pick(), 0u);
}

TEST(LoopChoice, ABusyLoopSpillsOverToTheNextOneNotBusy) {
    loop_choice c(3);
    const std::array<double, 3> first_busy{0.9, 0.2, 0.0};
    c.observe(first_busy);
    EXPECT_EQ(c.pick(), 1u);
    EXPECT_EQ(c.pick(), 1u);
    const std::array<double, 3> two_busy{0.8, loop_choice::busy, 0.1};
    c.observe(two_busy);
    EXPECT_EQ(c.pick(), 2u);
    // Load falls again: back to the first loop.
    const std::array<double, 3> calm{0.3, 0.9, 0.9};
    c.observe(calm);
    EXPECT_EQ(c.pick(), 0u);
}

TEST(LoopChoice, EveryLoopBusyDealsRoundRobin) {
    loop_choice c(3);
    const std::array<double, 3> all_busy{0.95, 1.0, 0.8};
    c.observe(all_busy);
    std::multiset<std::size_t> got;
    for (int i = 0; i < 9; ++i) got.insert(c.pick());
    EXPECT_EQ(got.count(0), 3u);
    EXPECT_EQ(got.count(1), 3u);
    EXPECT_EQ(got.count(2), 3u);
}

TEST(LoopChoice, ShortOrLongObservationsAndZeroLoops) {
    loop_choice c(2);
    const std::array<double, 1> one{0.9};  // the second loop missing: counted idle
    c.observe(one);
    EXPECT_EQ(c.pick(), 1u);
    const std::array<double, 3> three{0.9, 0.9, 0.0};  // the extra value ignored
    c.observe(three);
    const auto a = c.pick(), b = c.pick();
    EXPECT_NE(a, b);
    EXPECT_LT(a, 2u);
    EXPECT_LT(b, 2u);
    loop_choice none(0);  // treated as one loop
    EXPECT_EQ(none.loops(), 1u);
    EXPECT_EQ(none.pick(), 0u);
}
