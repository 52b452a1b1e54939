// tests/unit/queue/group_sync_test.cpp - group commit of directory fsyncs: every caller's result
// comes from an fsync that started after its call (never an earlier one), failures reach every
// caller they cover, and concurrent callers share fsyncs.
#include "queue/group_sync.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

using postern::queue::group_sync;

TEST(GroupSync, OneCallerOneSync) {
    int runs = 0;
    group_sync g([&] { return ++runs, 0; });
    EXPECT_EQ(g.sync(), 0);
    EXPECT_EQ(g.sync(), 0);
    EXPECT_EQ(runs, 2);  // alone, every call runs its own fsync
    EXPECT_EQ(g.syncs_run(), 2u);
}

TEST(GroupSync, FailureIsReturnedToItsCaller) {
    int err = EIO;
    group_sync g([&] { return err; });
    EXPECT_EQ(g.sync(), EIO);
    err = 0;
    EXPECT_EQ(g.sync(), 0);  // the next fsync succeeds: no stale failure
    err = ENOSPC;
    EXPECT_EQ(g.sync(), ENOSPC);
}

// The durability property under contention: a caller "renames" (takes a sequence number), then
// syncs; the fsync its result comes from must have started after that rename.
TEST(GroupSync, ConcurrentCallersAreCoveredByALaterSyncAndShareIt) {
    std::atomic<std::uint64_t> renamed{0};          // renames done so far
    std::atomic<std::uint64_t> covered_done{0};     // renames covered by a completed fsync
    std::atomic<bool> fail_next{false};
    group_sync g([&] {
        const std::uint64_t covers = renamed.load();  // what this fsync makes durable
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        const int err = fail_next.exchange(false) ? EIO : 0;
        if (err == 0) {
            std::uint64_t cur = covered_done.load();
            while (cur < covers && !covered_done.compare_exchange_weak(cur, covers)) {
            }
        }
        return err;
    });
    constexpr int threads = 8, calls = 40;
    std::atomic<int> violations{0}, failures{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            for (int i = 0; i < calls; ++i) {
                const std::uint64_t mine = ++renamed;
                if (t == 0 && i == calls / 2) fail_next = true;  // one failing fsync somewhere
                const int err = g.sync();
                if (err == 0 && covered_done.load() < mine) ++violations;  // success before coverage
                if (err != 0) ++failures;
            }
        });
    for (auto& th : pool) th.join();
    EXPECT_EQ(violations.load(), 0);
    EXPECT_GE(failures.load(), 1);  // the failed fsync's callers were told
    EXPECT_LT(g.syncs_run(), static_cast<std::uint64_t>(threads * calls));  // shared fsyncs
}

// A caller marks before it writes; a sync that fails after the mark (another caller's, which
// met this caller's writeback error and consumed it) fails this caller too, even though the
// caller's own later sync succeeds. A mark taken after the failure is not affected.
TEST(GroupSync, FailureSinceTheMarkFailsTheCaller) {
    int err = 0;
    group_sync g([&] { return err; });
    const auto before = g.mark();
    err = EIO;
    EXPECT_EQ(g.sync(), EIO);  // another caller's sync meets the error
    err = 0;
    const auto after = g.mark();
    EXPECT_EQ(g.sync(before), EIO);  // our own sync succeeded; the one since our mark did not
    EXPECT_EQ(g.sync(after), 0);
    EXPECT_EQ(g.sync(), 0);
}

// A mark taken while a sync runs includes that sync: it may write back what the caller writes
// from then on.
TEST(GroupSync, MarkDuringARunningSyncIncludesIt) {
    std::atomic<bool> entered{false}, release{false};
    std::atomic<int> calls{0};
    group_sync g([&] {
        if (calls++ == 0) {
            entered = true;
            while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            return EIO;
        }
        return 0;
    });
    int first = -1;
    std::thread t([&] { first = g.sync(); });
    while (!entered) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const auto m = g.mark();  // the failing sync is running
    release = true;
    t.join();
    EXPECT_EQ(first, EIO);
    EXPECT_EQ(g.sync(m), EIO);
    EXPECT_EQ(calls.load(), 2);
}
