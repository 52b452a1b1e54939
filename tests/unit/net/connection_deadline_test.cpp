// tests/unit/net/connection_deadline_test.cpp - runtime::timed_connection's lazy deadlines on a
// loopback socket pair: a silent peer times the operation out; a deadline pushed back again
// and again (arm per operation) does not fire for the earlier ones; a deadline brought
// *earlier* than the one the watchdog sleeps for still fires; disarm() means no deadline.
// The durations are generous and only ordered against each other (no timing thresholds):
// what is asserted is whether an operation timed out, never how fast anything ran.
// Asio first (see dns_resolver_test.cpp).
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "loopback_pair.hpp"
#include "runtime/connection.hpp"

using namespace postern;
using namespace std::chrono_literals;

namespace {

// A connected pair on 127.0.0.1: `conn` (the side under test) and the raw `peer`.
struct pair : test::loopback_pair {
    // Peer writes `s` after `after`.
    void send_later(std::string s, asio::steady_timer::duration after) {
        asio::co_spawn(
            io,
            [this, s = std::move(s), after]() -> asio::awaitable<void> {
                asio::steady_timer t(io, after);
                co_await t.async_wait(asio::use_awaitable);
                co_await asio::async_write(peer, asio::buffer(s), asio::use_awaitable);
            },
            asio::detached);
    }
    // Runs `body` to completion on the loop, then closes the connection (ends the watchdog).
    template <class F>
    void run(F body) {
        asio::co_spawn(
            io,
            [this, body]() -> asio::awaitable<void> {
                co_await body();
                conn->shutdown();
            },
            asio::detached);
        io.run_for(30s);
        EXPECT_TRUE(io.stopped()) << "did not finish";
    }
};

TEST(ConnectionDeadline, SilentPeerTimesOut) {
    pair p;
    asio::error_code ec;
    p.run([&]() -> asio::awaitable<void> {
        char buf[16];
        co_await p.conn->read_some(buf, sizeof buf, 200ms, ec);
    });
    EXPECT_TRUE(ec);
    EXPECT_TRUE(p.conn->timed_out);
}

TEST(ConnectionDeadline, DeadlinePushedBackPerOperationDoesNotFireEarly) {
    pair p;
    int reads = 0;
    asio::error_code ec;
    // Ten reads of 1 byte, one every 100 ms (1 s in all), each armed for 400 ms: the first
    // deadline (400 ms) passes long before the last read, but each read rearms.
    for (int i = 1; i <= 10; ++i) p.send_later("x", i * 100ms);
    p.run([&]() -> asio::awaitable<void> {
        char buf[1];
        for (int i = 0; i < 10 && !ec; ++i) {
            if (co_await p.conn->read_some(buf, 1, 400ms, ec) == 1) ++reads;
        }
    });
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(reads, 10);
    EXPECT_FALSE(p.conn->timed_out);
}

TEST(ConnectionDeadline, EarlierDeadlineAfterALongOneStillFires) {
    pair p;
    asio::error_code first, second;
    p.send_later("x", 50ms);
    p.run([&]() -> asio::awaitable<void> {
        char buf[1];
        co_await p.conn->read_some(buf, 1, std::chrono::hours(1), first);  // watchdog sleeps ~1 h
        co_await p.conn->read_some(buf, 1, 200ms, second);                 // then must wake in 200 ms
    });
    EXPECT_FALSE(first) << first.message();
    EXPECT_TRUE(second);
    EXPECT_TRUE(p.conn->timed_out);
}

TEST(ConnectionDeadline, DisarmedMeansNoDeadline) {
    pair p;
    asio::error_code ec;
    bool late_read = false;
    p.send_later("x", 600ms);
    p.run([&]() -> asio::awaitable<void> {
        char buf[1];
        p.conn->arm(100ms);
        p.conn->disarm();  // as after an operation: the 100 ms deadline no longer applies
        std::size_t n = 0;
        std::tie(ec, n) = co_await p.conn->sock.async_read_some(
            asio::buffer(buf, 1), asio::experimental::as_tuple(asio::use_awaitable));
        late_read = n == 1;
    });
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(late_read);
    EXPECT_FALSE(p.conn->timed_out);
}

}  // namespace
