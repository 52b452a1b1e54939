// tests/unit/net/unreachable_connect_test.cpp - policy::says_unreachable on the error codes Asio
// really reports: a refused loopback connect counts (the address is marked down); Asio's codes
// for a shortage of this machine's (descriptors, buffers) and an aborted attempt do not. Asio's
// "asio.system" category maps none of its codes to std::errc, so a test with std::errc alone
// cannot tell whether the outbound path would ever mark an address.
// Asio first (see dns_resolver_test.cpp).
#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <gtest/gtest.h>

#include "policy/unreachable.hpp"

using postern::policy::says_unreachable;

TEST(UnreachableConnect, ARefusedLoopbackConnectSaysUnreachable) {
    asio::io_context io;
    unsigned short port = 0;
    {
        asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        port = a.local_endpoint().port();
    }  // closed: nothing listens there now
    asio::ip::tcp::socket s(io);
    asio::error_code ec;
    s.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                    [&](const asio::error_code& e) { ec = e; });
    io.run();
    ASSERT_TRUE(ec) << "something listens on port " << port;
    EXPECT_EQ(ec, asio::error::connection_refused) << ec.message();
    EXPECT_TRUE(says_unreachable(ec, false)) << ec.category().name() << ": " << ec.message();
}

TEST(UnreachableConnect, AsiosOwnCodes) {
    EXPECT_TRUE(says_unreachable(asio::error::connection_refused, false));
    EXPECT_TRUE(says_unreachable(asio::error::timed_out, false));
    EXPECT_TRUE(says_unreachable(asio::error::host_unreachable, false));
    EXPECT_TRUE(says_unreachable(asio::error::network_unreachable, false));
    EXPECT_TRUE(says_unreachable(asio::error::operation_aborted, true));  // our connect timer
    EXPECT_FALSE(says_unreachable(asio::error::no_descriptors, false));
    EXPECT_FALSE(says_unreachable(asio::error::no_buffer_space, false));
    EXPECT_FALSE(says_unreachable(asio::error::operation_aborted, false));
}
