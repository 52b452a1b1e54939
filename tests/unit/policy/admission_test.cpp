// tests/unit/policy/admission_test.cpp - connection limits: the global and per-IP caps, release
// giving the slot back, addresses forgotten when their last connection ends, and concurrent
// admit/release from several threads (sessions end on their own threads).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "policy/admission.hpp"

using postern::policy::admission;

TEST(Admission, GlobalLimit) {
    admission a;
    EXPECT_EQ(a.admit("10.0.0.1", 2, 5), admission::verdict::admitted);
    EXPECT_EQ(a.admit("10.0.0.2", 2, 5), admission::verdict::admitted);
    EXPECT_EQ(a.admit("10.0.0.3", 2, 5), admission::verdict::too_many);
    EXPECT_EQ(a.open(), 2u);
    EXPECT_EQ(a.open_from("10.0.0.3"), 0u);
    a.release("10.0.0.1");
    EXPECT_EQ(a.admit("10.0.0.3", 2, 5), admission::verdict::admitted);
    EXPECT_EQ(a.open(), 2u);
}

TEST(Admission, PerAddressLimit) {
    admission a;
    EXPECT_EQ(a.admit("10.0.0.1", 100, 2), admission::verdict::admitted);
    EXPECT_EQ(a.admit("10.0.0.1", 100, 2), admission::verdict::admitted);
    EXPECT_EQ(a.admit("10.0.0.1", 100, 2), admission::verdict::too_many_from_ip);
    EXPECT_EQ(a.admit("10.0.0.2", 100, 2), admission::verdict::admitted);  // another address
    EXPECT_EQ(a.open_from("10.0.0.1"), 2u);
    EXPECT_EQ(a.open(), 3u);
    a.release("10.0.0.1");
    EXPECT_EQ(a.open_from("10.0.0.1"), 1u);
    EXPECT_EQ(a.admit("10.0.0.1", 100, 2), admission::verdict::admitted);
}

TEST(Admission, RefusedConnectionsAreNotCounted) {
    admission a;
    EXPECT_EQ(a.admit("10.0.0.1", 1, 1), admission::verdict::admitted);
    EXPECT_EQ(a.admit("10.0.0.1", 1, 1), admission::verdict::too_many);
    EXPECT_EQ(a.admit("10.0.0.2", 5, 0), admission::verdict::too_many_from_ip);
    EXPECT_EQ(a.open(), 1u);
    EXPECT_EQ(a.open_from("10.0.0.2"), 0u);
    a.release("10.0.0.9");  // never admitted: changes nothing
    EXPECT_EQ(a.open(), 1u);
    a.release("10.0.0.1");
    EXPECT_EQ(a.open(), 0u);
    EXPECT_EQ(a.open_from("10.0.0.1"), 0u);
}

TEST(Admission, ConcurrentAdmitAndRelease) {
    admission a;
    constexpr int threads = 4, rounds = 5000;
    std::atomic<int> refused{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            const std::string ip = "10.0.0." + std::to_string(t % 2);
            for (int i = 0; i < rounds; ++i) {
                if (a.admit(ip, 1000, 1000) == admission::verdict::admitted) a.release(ip);
                else ++refused;
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(refused.load(), 0);
    EXPECT_EQ(a.open(), 0u);
    EXPECT_EQ(a.open_from("10.0.0.0"), 0u);
    EXPECT_EQ(a.open_from("10.0.0.1"), 0u);
}

// A session's place is given back exactly once: by release() (before its socket closes), or
// by the slot's destruction when release() never ran; a moved-from slot gives back nothing.
TEST(Admission, SlotGivesThePlaceBackOnce) {
    admission a;
    ASSERT_EQ(a.admit("10.0.0.1", 10, 1), admission::verdict::admitted);
    {
        admission::slot s(a, "10.0.0.1");
        s.release();
        EXPECT_EQ(a.open_from("10.0.0.1"), 0u);
        EXPECT_EQ(a.admit("10.0.0.1", 10, 1), admission::verdict::admitted);  // free at once
        s.release();  // no second release: the new connection keeps its place
        EXPECT_EQ(a.open_from("10.0.0.1"), 1u);
    }
    EXPECT_EQ(a.open_from("10.0.0.1"), 1u);  // destruction after release(): nothing more
    {
        admission::slot s(a, "10.0.0.1");
        admission::slot moved(std::move(s));
    }  // only `moved` gives it back
    EXPECT_EQ(a.open(), 0u);
}
