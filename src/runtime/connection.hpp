// runtime/connection.hpp - a TCP connection with an optional TLS layer and a per-operation
// deadline (Beast-style): arm(d) before an operation; when the deadline passes, the watchdog
// cancels the socket, so the pending read/write/handshake completes with an error and
// `timed_out` says why. Shared by inbound sessions and outbound attempts.
// Deadlines are lazy: arm() and disarm() only write `deadline`; the watchdog's timer is moved
// only when a deadline comes *earlier* than the one it sleeps for. A timer that wakes for a
// deadline since pushed back goes to sleep again until the current one. (Moving the timer on
// every operation meant a cancelled wait, a resumed coroutine and a timerfd_settime(2) per
// read and write: about 4% of the server's CPU, issue 6.)
#pragma once
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>

namespace postern::runtime {

struct timed_connection {
    using clock = asio::steady_timer::clock_type;

    explicit timed_connection(asio::ip::tcp::socket s)
        : sock(std::move(s)), timer(sock.get_executor(), clock::time_point::max()) {}
    explicit timed_connection(asio::any_io_executor ex) : sock(ex), timer(ex, clock::time_point::max()) {}

    asio::ip::tcp::socket sock;
    std::optional<asio::ssl::stream<asio::ip::tcp::socket&>> tls;
    asio::steady_timer timer;                         // the watchdog's; expiry <= deadline when armed
    clock::time_point deadline = clock::time_point::max();  // of the operation in progress
    bool timed_out = false;
    bool closed = false;

    void arm(asio::steady_timer::duration d) {
        deadline = clock::now() + d;
        if (deadline < timer.expiry()) timer.expires_at(deadline);  // wakes the watchdog to sleep less
    }
    void disarm() { deadline = clock::time_point::max(); }
    void shutdown() {
        closed = true;
        timer.cancel();
        asio::error_code ig;
        sock.shutdown(asio::ip::tcp::socket::shutdown_both, ig);
        sock.close(ig);
    }

    // Start the watchdog for `c`. It does not keep `c` alive: when the last owner lets go
    // (shutdown() or not: a session ended by an exception), the socket is closed, the timer's
    // wait ends with operation_aborted, and so does the watchdog.
    static void watch(const std::shared_ptr<timed_connection>& c) {
        asio::co_spawn(c->sock.get_executor(), watchdog(c), asio::detached);
    }

    // Write all of `data` (through TLS when active) within `limit`.
    asio::awaitable<asio::error_code> write(std::string_view data, std::chrono::seconds limit) {
        if (data.empty()) co_return asio::error_code{};
        constexpr auto tok = asio::experimental::as_tuple(asio::use_awaitable);
        arm(limit);
        asio::error_code ec;
        if (tls) std::tie(ec, std::ignore) = co_await asio::async_write(*tls, asio::buffer(data), tok);
        else std::tie(ec, std::ignore) = co_await asio::async_write(sock, asio::buffer(data), tok);
        disarm();
        co_return ec;
    }

    // TLS only: encrypt `data` into the TLS layer's output without sending it, so that the
    // next operation sends it with its own records in one segment (the 221 reply to QUIT with
    // the close_notify of async_shutdown: one send(2) per TLS session fewer, issue 6). Returns
    // how much was taken (all of it unless the layer's buffer was full); write() the rest.
    std::size_t stage(std::string_view data) {
        if (!tls || data.empty()) return 0;
        ::ERR_clear_error();
        const int n = ::SSL_write(tls->native_handle(), data.data(), static_cast<int>(data.size()));
        return n > 0 ? static_cast<std::size_t>(n) : 0;
    }

    // Best effort, never waits: `bye` (a QUIT) and, on TLS, the close_notify alert (RFC 8446
    // 6.1: each party MUST send one before closing its write side; Postfix's client sends it
    // too) go out in one segment if the socket's send buffer takes them, then the connection
    // is closed. The socket is made non-blocking first, so a peer that stopped reading costs
    // the QUIT, not the event loop; the peer's own close_notify is not waited for (the
    // synchronous shutdown's read for it ends at once with would_block).
    void close_with(std::string_view bye) {
        asio::error_code ec;
        sock.non_blocking(true, ec);
        if (!ec && tls) {
            const std::size_t staged = stage(bye);
            if (staged < bye.size()) asio::write(*tls, asio::buffer(bye.substr(staged)), ec);
            if (!ec) tls->shutdown(ec);
        } else if (!ec && !bye.empty()) {
            asio::write(sock, asio::buffer(bye), ec);
        }
        shutdown();
    }

    // Read what is available (at most `len`) within `limit`.
    asio::awaitable<std::size_t> read_some(char* buf, std::size_t len, asio::steady_timer::duration limit,
                                           asio::error_code& ec) {
        constexpr auto tok = asio::experimental::as_tuple(asio::use_awaitable);
        arm(limit);
        std::size_t n = 0;
        if (tls) std::tie(ec, n) = co_await tls->async_read_some(asio::buffer(buf, len), tok);
        else std::tie(ec, n) = co_await sock.async_read_some(asio::buffer(buf, len), tok);
        disarm();
        co_return n;
    }

    // Plaintext only: wait until the socket is readable (within `limit`), then read what is
    // there into `buf` without blocking. The caller's buffer is only touched after the wait,
    // never across a suspension, so many idle connections can share one buffer: an idle
    // session then holds no read buffer at all (issue 6: 10,000 idle connections).
    asio::awaitable<std::size_t> read_when_ready(char* buf, std::size_t len, std::chrono::seconds limit,
                                                 asio::error_code& ec) {
        constexpr auto tok = asio::experimental::as_tuple(asio::use_awaitable);
        arm(limit);
        std::size_t n = 0;
        for (;;) {
            std::tie(ec) = co_await sock.async_wait(asio::ip::tcp::socket::wait_read, tok);
            if (ec) break;
            // MSG_DONTWAIT: never blocks, without switching the socket to non-blocking mode
            // (one ioctl(2) per connection fewer).
            const ssize_t r = ::recv(sock.native_handle(), buf, len, MSG_DONTWAIT);
            if (r > 0) {
                n = static_cast<std::size_t>(r);
                break;
            }
            if (r == 0) {
                ec = asio::error::eof;
                break;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                ec = asio::error_code(errno, asio::error::get_system_category());
                break;
            }
        }
        disarm();
        co_return n;
    }

private:
    // Holds `c` only between two waits (all of it runs on the connection's executor).
    static asio::awaitable<void> watchdog(std::weak_ptr<timed_connection> weak) {
        constexpr auto tok = asio::experimental::as_tuple(asio::use_awaitable);
        for (;;) {
            asio::steady_timer* timer = nullptr;
            {
                const auto c = weak.lock();
                if (!c || c->closed) co_return;
                timer = &c->timer;
            }
            co_await timer->async_wait(tok);  // expired, moved earlier by arm(), or destroyed
            const auto c = weak.lock();
            if (!c || c->closed) co_return;
            const auto now = clock::now();
            if (c->deadline <= now) {
                c->timed_out = true;
                asio::error_code ig;
                c->sock.cancel(ig);
                c->disarm();
                c->timer.expires_at(clock::time_point::max());
            } else if (c->timer.expiry() <= now) {
                c->timer.expires_at(c->deadline);  // the deadline moved on (or none): sleep until it
            }
        }
    }
};

}  // namespace postern::runtime
