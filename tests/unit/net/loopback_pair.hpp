// tests/unit/net/loopback_pair.hpp - a connected TCP pair on 127.0.0.1 for the tests of
// runtime::timed_connection: the side under test, watched, and the raw peer.
#pragma once
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <memory>

#include "runtime/connection.hpp"

namespace postern::test {

struct loopback_pair {
    asio::io_context io{1};
    std::shared_ptr<runtime::timed_connection> conn;  // with its watchdog started
    asio::ip::tcp::socket peer{io};

    loopback_pair() {
        asio::ip::tcp::acceptor acc(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        asio::ip::tcp::socket client(io);
        client.connect(acc.local_endpoint());
        peer = acc.accept();
        conn = std::make_shared<runtime::timed_connection>(std::move(client));
        runtime::timed_connection::watch(conn);
    }
};

}  // namespace postern::test
