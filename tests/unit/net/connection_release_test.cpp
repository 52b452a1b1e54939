// tests/unit/net/connection_release_test.cpp - runtime::timed_connection is freed, and its
// socket closed, as soon as its last owner lets it go, whether or not shutdown() was called:
// the watchdog does not keep it alive. A session coroutine that ends with an exception (no
// shutdown()) must not leave its descriptor open and its watchdog waiting forever.
// Durations only bound "did not hang": nothing asserts how fast anything ran.
// Asio first (see dns_resolver_test.cpp).
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <memory>
#include <stdexcept>

#include "loopback_pair.hpp"
#include "runtime/connection.hpp"

using namespace postern;
using namespace std::chrono_literals;
namespace {

// A connected pair on 127.0.0.1: a watched `conn` and the raw `peer`.
struct pair : test::loopback_pair {
    // True when the peer sees the connection closed (end of file), without blocking.
    bool peer_sees_close() {
        peer.non_blocking(true);
        char buf[16];
        asio::error_code ec;
        for (int i = 0; i < 16; ++i) {  // skip anything written before the close
            peer.read_some(asio::buffer(buf), ec);
            if (ec) break;
        }
        return ec == asio::error::eof;
    }
};

TEST(ConnectionRelease, DroppedWithoutShutdownIsFreedAndClosed) {
    pair p;
    p.conn->arm(50ms);
    p.conn->disarm();
    p.io.run_for(100ms);  // the watchdog woke for the 50 ms deadline and sleeps for none
    std::weak_ptr<runtime::timed_connection> weak = p.conn;
    p.conn.reset();
    p.io.run_for(1s);
    EXPECT_TRUE(weak.expired()) << "the watchdog kept the connection alive";
    EXPECT_TRUE(p.io.stopped()) << "the watchdog is still waiting";
    EXPECT_TRUE(p.peer_sees_close());
}

TEST(ConnectionRelease, SessionEndingWithAnExceptionFreesItsConnection) {
    pair p;
    std::weak_ptr<runtime::timed_connection> weak = p.conn;
    std::exception_ptr thrown;
    bool got_request = false;
    // Like server::run_session: the coroutine holds the only owner, reads with a deadline,
    // then fails (bad_alloc, an asio exception, ...) without reaching shutdown().
    asio::co_spawn(
        p.io,
        [&got_request, c = std::move(p.conn)]() mutable -> asio::awaitable<void> {
            char buf[16];
            asio::error_code ec;
            got_request = co_await c->read_some(buf, sizeof buf, 30s, ec) > 0;
            throw std::runtime_error("session failed");
        },
        [&thrown](std::exception_ptr e) { thrown = e; });
    asio::write(p.peer, asio::buffer("EHLO a\r\n", 8));
    p.io.run_for(2s);
    ASSERT_TRUE(thrown);
    EXPECT_TRUE(got_request);
    EXPECT_TRUE(weak.expired()) << "the watchdog kept the connection alive";
    EXPECT_TRUE(p.io.stopped()) << "the watchdog is still waiting";
    EXPECT_TRUE(p.peer_sees_close());
}

}  // namespace
