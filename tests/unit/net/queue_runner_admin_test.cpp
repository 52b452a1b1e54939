// tests/unit/net/queue_runner_admin_test.cpp - runtime::queue_runner against the admin's queue
// commands that land between a message's commit and its first delivery pass, or during that
// pass (local maildir delivery, a real spool in a temporary directory, no sockets):
//   - a message held, deleted or retried (and delivered) before the session's in-memory
//     hand-over reaches the queue runner is not delivered from memory (a held one is
//     delivered once, on release);
//   - a message held while its pass delivers it is not delivered a second time on release;
//   - a hold and a release while a pass reads the message (its read finds queue/ID gone) leave
//     the message with a pass, not stranded until a restart;
//   - hold and release fail (and leave the message where it was) when the new folder's fsync
//     fails, and report a failed fsync of the old folder after the move (a release then still
//     delivers the message it moved back).
// The event loop is run by the test thread, so the order of the posted steps is exact.
// Asio first (see dns_resolver_test.cpp).
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <future>
#include <latch>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "queue/spool.hpp"
#include "runtime/queue_runner.hpp"
#include "../test_util.hpp"
#include "queue_runner_test_util.hpp"

using namespace postern;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct runner_fixture : test::runner_fixture_base {
    void SetUp() override { start_runner(); }
    void TearDown() override {
        runner->stop();
        pool.join();
    }

    // A message to bob@localhost committed to queue/ as a session commits it, and the copy the
    // session hands over in memory.
    queue::loaded_message commit() { return test::commit_message(*spool, {"bob@localhost"}); }
    // Runs the event loop until nothing is left to do (the passes and their disk-pool steps).
    void settle() {
        io.restart();
        io.run_for(10s);
    }
};

TEST_F(runner_fixture, hand_over_of_a_message_held_since_is_not_delivered_until_released) {
    auto m = commit();
    const std::string id = m.env.id;
    ASSERT_TRUE(runner->hold(id));
    runner->submit(std::move(m));
    settle();
    EXPECT_EQ(delivered(), 0u) << "a held message was delivered from the in-memory hand-over";
    EXPECT_TRUE(spool->exists(id, queue::area::hold));

    ASSERT_TRUE(runner->release(id));
    settle();
    EXPECT_EQ(delivered(), 1u);
    EXPECT_FALSE(spool->exists(id, queue::area::active));
    EXPECT_FALSE(spool->exists(id, queue::area::hold));
}

TEST_F(runner_fixture, hand_over_of_a_message_deleted_since_is_not_delivered) {
    auto m = commit();
    ASSERT_TRUE(runner->remove(m.env.id));
    runner->submit(std::move(m));
    settle();
    EXPECT_EQ(delivered(), 0u) << "a deleted message was delivered from the in-memory hand-over";
}

TEST_F(runner_fixture, hand_over_after_a_retry_delivers_once) {
    // `queue retry --all` between the commit and the hand-over: its pass from the spool
    // delivers the message and removes it; the hand-over must not deliver it again.
    auto m = commit();
    ASSERT_TRUE(runner->retry("", /*all=*/true));
    settle();
    EXPECT_EQ(delivered(), 1u);
    runner->submit(std::move(m));
    settle();
    EXPECT_EQ(delivered(), 1u) << "the in-memory hand-over delivered a message already delivered";
}

TEST_F(runner_fixture, message_held_while_its_pass_delivers_it_is_not_delivered_again_on_release) {
    auto m = commit();
    const std::string id = m.env.id;
    runner->submit(std::move(m));  // the pass starts when the loop runs, then waits on the disk pool
    asio::post(io, [&] { ASSERT_TRUE(runner->hold(id)); });  // runs while the pass is under way
    settle();
    EXPECT_EQ(delivered(), 1u);
    ASSERT_TRUE(spool->exists(id, queue::area::hold));

    ASSERT_TRUE(runner->release(id));
    settle();
    EXPECT_EQ(delivered(), 1u) << "released after a completed delivery, the message went out again";
    EXPECT_FALSE(spool->exists(id, queue::area::active));
    EXPECT_FALSE(spool->exists(id, queue::area::hold));
    EXPECT_FALSE(fs::exists(fs::path(tmp.path) / "spool" / "state" / id));
}

TEST_F(runner_fixture, message_deleted_while_its_pass_delivers_it_leaves_no_state_behind) {
    auto m = commit();
    const std::string id = m.env.id;
    runner->submit(std::move(m));
    asio::post(io, [&] { ASSERT_TRUE(runner->remove(id)); });
    settle();
    EXPECT_EQ(delivered(), 1u);
    EXPECT_FALSE(fs::exists(fs::path(tmp.path) / "spool" / "state" / id));
}


using test::drain_pool;
using test::pool_gate;

TEST_F(runner_fixture, hold_and_release_while_a_pass_reads_the_message_leave_it_a_pass) {
    auto m = commit();
    const std::string id = m.env.id;
    pool_gate gate(pool);
    runner->submit(id);  // a pass from the spool: its read waits behind the gate
    io.restart();
    io.poll();
    ASSERT_TRUE(runner->hold(id));  // the read will find queue/ID gone
    gate.open();
    drain_pool(pool);  // the read is done; its result waits for the loop
    ASSERT_TRUE(runner->release(id));  // back in queue/ while that pass still runs: once more after it
    settle();
    EXPECT_EQ(delivered(), 1u) << "released during a pass that found it gone, the message got no pass";
    EXPECT_FALSE(spool->exists(id, queue::area::active));
}

// A move links the file into its new folder, fsyncs that folder, unlinks the old name, fsyncs
// the old folder (spool::move). A failed fsync of the new folder undoes the move: the command
// fails and the message stays where it was. A failed fsync of the old folder comes after the
// move: the command did happen, and says it is not durable yet.
TEST_F(runner_fixture, hold_and_release_report_a_failed_directory_fsync) {
    auto m = commit();
    const std::string id = m.env.id;
    const std::string hold_dir = tmp.path + "/spool/hold", queue_dir = tmp.path + "/spool/queue";
    std::string failing = hold_dir;
    queue::spool::set_fsync_fault([&failing](const std::string& path) { return path == failing ? EIO : 0; });
    auto held = runner->hold(id);
    EXPECT_FALSE(held);
    EXPECT_NE(held.error_message().find("not held " + id + ": fsync"), std::string::npos) << held.error_message();
    EXPECT_TRUE(spool->exists(id, queue::area::active));
    EXPECT_FALSE(spool->exists(id, queue::area::hold));

    failing = queue_dir;
    held = runner->hold(id);
    EXPECT_FALSE(held);
    EXPECT_NE(held.error_message().find("held " + id + ", but not durably yet"), std::string::npos)
        << held.error_message();
    EXPECT_TRUE(spool->exists(id, queue::area::hold));
    EXPECT_FALSE(spool->exists(id, queue::area::active));

    auto released = runner->release(id);  // queue/ is the new folder now
    EXPECT_FALSE(released);
    EXPECT_NE(released.error_message().find("not released " + id + ": fsync"), std::string::npos)
        << released.error_message();
    EXPECT_TRUE(spool->exists(id, queue::area::hold));
    settle();
    EXPECT_EQ(delivered(), 0u) << "a message still held was delivered";

    failing = hold_dir;
    released = runner->release(id);
    EXPECT_FALSE(released);
    EXPECT_NE(released.error_message().find("released " + id + ", but not durably yet"), std::string::npos)
        << released.error_message();
    failing.clear();
    settle();
    queue::spool::set_fsync_fault(nullptr);
    EXPECT_EQ(delivered(), 1u) << "a message moved back to queue/ got no pass";
    EXPECT_FALSE(spool->exists(id, queue::area::active));
}

}  // namespace
