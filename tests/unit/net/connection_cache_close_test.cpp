// tests/unit/net/connection_cache_close_test.cpp - closing a parked outbound session never
// blocks the event loop: a hostile next hop that took the last transaction and then stopped
// reading leaves the session's send buffer full, and the QUIT that connection_cache writes when
// it closes the session (idle timer, take(), a full cache, close_all()) must be given up, not
// waited for. Plaintext and TLS alike, on a loopback pair with small socket buffers whose peer
// never reads. close_all() runs in another thread; the test closes the peer after its wait, so
// a close that blocks fails the test instead of hanging it.
// Asio first (see dns_resolver_test.cpp).
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "../test_util.hpp"
#include "outbound/connection_cache.hpp"
#include "tls/certgen.hpp"

using namespace postern;
using namespace std::chrono_literals;
using tcp = asio::ip::tcp;

namespace {

struct wedged_peer {
    asio::io_context io{1};
    asio::ssl::context client_ctx{asio::ssl::context::tls_client};  // outlives conn->tls
    tcp::socket peer{io};  // accepts, then never reads
    std::shared_ptr<runtime::timed_connection> conn = std::make_shared<runtime::timed_connection>(io.get_executor());

    wedged_peer() {
        tcp::acceptor acc(io);
        acc.open(tcp::v4());
        acc.set_option(asio::socket_base::receive_buffer_size(4096));  // inherited by `peer`
        acc.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        acc.listen();
        conn->sock.open(tcp::v4());
        conn->sock.set_option(asio::socket_base::send_buffer_size(4096));
        conn->sock.connect(acc.local_endpoint());
        peer = acc.accept();
    }

    // TLS on the pair (a self-signed certificate; the client does not check it): the peer
    // takes part in the handshake, and reads nothing after it.
    void start_tls(const std::string& dir) {
        const std::string cert = dir + "/cert.pem", key = dir + "/key.pem";
        ASSERT_TRUE(tls::write_self_signed(cert, key, "peer.test", 1).ok());
        asio::ssl::context server_ctx(asio::ssl::context::tls_server);
        server_ctx.use_certificate_chain_file(cert);
        server_ctx.use_private_key_file(key, asio::ssl::context::pem);
        asio::ssl::stream<tcp::socket&> server(peer, server_ctx);
        asio::error_code server_ec;
        std::thread t([&] { server.handshake(asio::ssl::stream_base::server, server_ec); });
        client_ctx.set_verify_mode(asio::ssl::verify_none);
        conn->tls.emplace(conn->sock, client_ctx);
        asio::error_code ec;
        conn->tls->handshake(asio::ssl::stream_base::client, ec);
        t.join();
        ASSERT_FALSE(ec) << ec.message();
        ASSERT_FALSE(server_ec) << server_ec.message();
    }
    // Write to the client's socket until the kernel takes no more (the peer reads nothing): until
    // EAGAIN, again after a pause (segments in flight when it first said EAGAIN are acknowledged
    // meanwhile, making room), until a pause made no room.
    void fill() {
        const std::string block(16384, 'x');
        int blocks = 0;
        for (int round = 0; round < 100; ++round) {
            int taken = 0;
            for (; blocks < 4096; ++blocks, ++taken) {  // 64 MiB at most
                const ssize_t n = ::send(conn->sock.native_handle(), block.data(), block.size(), MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                ASSERT_GT(n, 0) << std::strerror(errno);
            }
            ASSERT_LT(blocks, 4096) << "the send buffer never filled";
            if (round > 0 && taken == 0) return;
            std::this_thread::sleep_for(100ms);
        }
        FAIL() << "the send buffer kept draining";
    }
};

// A session at `ready`, as after a transaction (the replies are fed, what it wrote dropped).
std::unique_ptr<smtp::client_session> ready_session() {
    auto s = std::make_unique<smtp::client_session>(smtp::client_settings{});
    s->feed("220 peer.test ESMTP\r\n");
    EXPECT_EQ(s->next(), smtp::client_event::need_input);
    s->feed("250 peer.test\r\n");
    EXPECT_EQ(s->next(), smtp::client_event::ehlo_done);
    s->proceed();
    EXPECT_EQ(s->next(), smtp::client_event::ready);
    s->take_output();
    return s;
}

void expect_close_all_does_not_block(wedged_peer& w) {
    outbound::connection_cache cache(w.io.get_executor());
    outbound::parked_session p;
    p.conn = w.conn;
    p.session = ready_session();
    p.established = std::chrono::steady_clock::now();
    cache.put("k", std::move(p));
    ASSERT_EQ(cache.size(), 1u);
    auto closing = std::async(std::launch::async, [&] { cache.close_all(); });
    const auto status = closing.wait_for(2s);
    asio::error_code ig;
    w.peer.close(ig);  // unblocks a close() stuck in its write, so the test ends either way
    closing.wait();
    EXPECT_EQ(status, std::future_status::ready) << "close_all() blocked writing QUIT to a peer that does not read";
    EXPECT_EQ(cache.size(), 0u);
    EXPECT_FALSE(w.conn->sock.is_open());
}

TEST(ConnectionCacheClose, PlaintextPeerThatStoppedReadingDoesNotBlock) {
    wedged_peer w;
    w.fill();
    expect_close_all_does_not_block(w);
}

TEST(ConnectionCacheClose, TlsPeerThatStoppedReadingDoesNotBlock) {
    test::temp_dir d;
    wedged_peer w;
    w.start_tls(d.path);
    w.fill();
    expect_close_all_does_not_block(w);
}

}  // namespace
