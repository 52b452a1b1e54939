// tests/unit/net/queue_runner_admin_test.cpp - runtime::queue_runner against the admin's queue
// commands that land between a message's commit and its first delivery pass, or during that
// pass (local maildir delivery, a real spool in a temporary directory, no sockets):
//   - a message held, deleted or retried (and delivered) before the session's in-memory
//     hand-over reaches the queue runner is not delivered from memory (a held one is
//     delivered once, on release);
//   - a message held while its pass delivers it is not delivered a second time on release.
// The event loop is run by the test thread, so the order of the posted steps is exact.
// Asio first (see dns_resolver_test.cpp).
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "dns/resolver.hpp"
#include "queue/spool.hpp"
#include "runtime/queue_runner.hpp"
#include "../test_util.hpp"

using namespace postern;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Local delivery never looks anything up.
struct no_dns final : dns::resolver {
    asio::awaitable<dns::mx_answer> mx(std::string) override { co_return dns::mx_answer{}; }
    asio::awaitable<dns::address_answer> addresses(std::string) override { co_return dns::address_answer{}; }
    asio::awaitable<dns::name_answer> ptr(std::string) override { co_return dns::name_answer{}; }
};

struct runner_fixture : ::testing::Test {
    test::temp_dir tmp;
    std::shared_ptr<const config::config> cfg;
    std::unique_ptr<queue::spool> spool;
    asio::io_context io{1};
    asio::thread_pool pool{2};
    no_dns dns;
    std::unique_ptr<runtime::queue_runner> runner;

    void SetUp() override {
        const std::string text = "hostname = \"mx.test\"\n[spool]\ndir = \"" + tmp.path + "/spool\"\n" +
                                 "[[domain]]\nname = \"localhost\"\nmaildir = \"" + tmp.path + "/mail\"\n";
        auto c = config::parse(text, tmp.path + "/postern.toml");
        ASSERT_TRUE(c) << c.error_message();
        cfg = *c;
        auto s = queue::spool::open(tmp.path + "/spool");
        ASSERT_TRUE(s) << s.error_message();
        spool = std::move(*s);
        runner = std::make_unique<runtime::queue_runner>(io, pool, *spool, dns, [this] {
            return runtime::queue_runner::settings{cfg, nullptr};
        });
    }
    void TearDown() override {
        runner->stop();
        pool.join();
    }

    // A message to bob@localhost committed to queue/ as a session commits it, and the copy the
    // session hands over in memory.
    queue::loaded_message commit() {
        queue::loaded_message m;
        m.env.id = spool->new_id();
        m.env.arrived = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
        m.env.sender = "alice@example.test";
        m.env.recipients = {"bob@localhost"};
        m.env.client_ip = "127.0.0.1";
        m.env.helo = "client.test";
        m.data = "Subject: t\r\n\r\nhello\r\n";
        m.env.size = m.data.size();
        EXPECT_FALSE(spool->commit(m.env, {m.data}, queue::area::active));
        return m;
    }
    // Runs the event loop until nothing is left to do (the passes and their disk-pool steps).
    void settle() {
        io.restart();
        io.run_for(10s);
    }
    std::size_t delivered() const {
        const fs::path dir = fs::path(tmp.path) / "mail" / "bob" / "new";
        if (!fs::is_directory(dir)) return 0;
        return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
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

}  // namespace
