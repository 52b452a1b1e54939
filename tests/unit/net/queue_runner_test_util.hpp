// tests/unit/net/queue_runner_test_util.hpp - what the runtime::queue_runner tests share: a
// resolver that answers nothing (local delivery and IP-literal routes look nothing up), a
// message committed to the spool as an inbound session commits it (and the copy it hands over
// in memory), the count of messages in a maildir folder, and a fixture with a real spool in a
// temporary directory, localhost hosted into a maildir, and a runner whose event loop the
// test thread runs (so the order of the posted steps is exact); a gate that holds both
// disk-pool threads, and a wait for the tasks posted to the pool; a peer that never greets.
#pragma once
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <future>
#include <latch>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "dns/resolver.hpp"
#include "queue/spool.hpp"
#include "runtime/queue_runner.hpp"
#include "../test_util.hpp"

namespace postern::test {

struct no_dns final : dns::resolver {
    asio::awaitable<dns::mx_answer> mx(std::string) override { co_return dns::mx_answer{}; }
    asio::awaitable<dns::address_answer> addresses(std::string) override { co_return dns::address_answer{}; }
    asio::awaitable<dns::name_answer> ptr(std::string) override { co_return dns::name_answer{}; }
};

// From alice@example.test to `rcpts`, under `id` (a new one when empty), committed to queue/;
// `data` is the content (a short message when empty).
inline queue::loaded_message commit_message(queue::spool& spool, std::vector<std::string> rcpts,
                                            std::string id = {}, std::string data = {}) {
    queue::loaded_message m;
    m.env.id = id.empty() ? spool.new_id() : std::move(id);
    m.env.arrived =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    m.env.sender = "alice@example.test";
    m.env.recipients = std::move(rcpts);
    m.env.client_ip = "127.0.0.1";
    m.env.helo = "client.test";
    m.data = data.empty() ? "Subject: t\r\n\r\nhello\r\n" : std::move(data);
    m.env.size = m.data.size();
    EXPECT_FALSE(spool.commit(m.env, {m.data}, queue::area::active));
    return m;
}

// Messages in MAILDIR/USER/new/.
inline std::size_t maildir_count(const std::string& maildir, const std::string& user) {
    const std::filesystem::path dir = std::filesystem::path(maildir) / user / "new";
    if (!std::filesystem::is_directory(dir)) return 0;
    return static_cast<std::size_t>(
        std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()));
}

// Both disk-pool threads are held until open() (the test knows what is queued behind them).
// The tasks share the state rather than point into the gate: a task may still be leaving
// count_down() or wait() after the gate's owner has moved on and destroyed it.
struct pool_gate {
    explicit pool_gate(asio::thread_pool& pool) {
        for (int i = 0; i < 2; ++i)
            asio::post(pool, [s = state] {
                s->inside.count_down();
                s->opened.wait();
            });
        state->inside.wait();
    }
    void open() { state->go.set_value(); }
    struct shared {
        std::latch inside{2};
        std::promise<void> go;
        std::shared_future<void> opened = go.get_future().share();
    };
    std::shared_ptr<shared> state = std::make_shared<shared>();
};

// Returns once every task posted to `pool` before the call has finished: two markers meet
// inside, one per thread, so the tasks queued ahead of them (FIFO) are done. The latch is
// shared with the markers: wait() here returns as soon as the count reaches zero, while the
// last marker is still inside arrive_and_wait() reading it (ASan caught the stack version).
inline void drain_pool(asio::thread_pool& pool) {
    auto both = std::make_shared<std::latch>(2);
    for (int i = 0; i < 2; ++i) asio::post(pool, [both] { both->arrive_and_wait(); });
    both->wait();
}

// A TCP listener on 127.0.0.1 that never sends a greeting. The kernel completes the clients'
// connections; accept_pending() takes those that arrived (to count them), close_one() ends one
// (the client sees the connection closed before any greeting: a deferral).
struct silent_peer {
    int fd = -1;
    std::uint16_t port = 0;
    std::vector<int> accepted;
    silent_peer() {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 64) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            ADD_FAILURE() << "silent peer: cannot listen";
        port = ntohs(a.sin_port);
    }
    ~silent_peer() {
        for (int c : accepted) ::close(c);
        ::close(fd);
    }
    std::size_t accept_pending() {
        for (int c; (c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) accepted.push_back(c);
        return accepted.size();
    }
    void close_one() {
        ASSERT_FALSE(accepted.empty());
        ::close(accepted.front());
        accepted.erase(accepted.begin());
    }
};

struct runner_fixture_base : ::testing::Test {
    temp_dir tmp;
    std::shared_ptr<const config::config> cfg;
    std::unique_ptr<queue::spool> spool;
    asio::io_context io{1};
    asio::thread_pool pool{2};
    no_dns dns;
    std::unique_ptr<runtime::queue_runner> runner;
    std::function<void()> on_settings;  // called each time the runner reads its settings

    // The config: hostname, spool, localhost -> TMP/mail, then `extra` (TOML).
    void start_runner(const std::string& extra = {},
                      std::size_t active_limit = runtime::queue_runner::default_active_limit) {
        const std::string text = "hostname = \"mx.test\"\n[spool]\ndir = \"" + tmp.path + "/spool\"\n" +
                                 "[[domain]]\nname = \"localhost\"\nmaildir = \"" + tmp.path + "/mail\"\n" + extra;
        auto c = config::parse(text, tmp.path + "/postern.toml");
        ASSERT_TRUE(c) << c.error_message();
        cfg = *c;
        auto s = queue::spool::open(tmp.path + "/spool");
        ASSERT_TRUE(s) << s.error_message();
        spool = std::move(*s);
        runner = std::make_unique<runtime::queue_runner>(
            io, pool, *spool, dns,
            [this] {
                if (on_settings) on_settings();  // a test may throw here
                return runtime::queue_runner::settings{cfg, nullptr};
            },
            active_limit);
    }
    std::size_t delivered() const { return maildir_count(tmp.path + "/mail", "bob"); }
};

// A runner whose remote.test goes to a silent_peer, with the test thread's loop helpers.
struct pass_fixture : test::runner_fixture_base {
    silent_peer peer;

    // localhost -> maildir, remote.test -> the silent peer; retries after `retry`; then `more`.
    void start(std::size_t active_limit = runtime::queue_runner::default_active_limit, std::string retry = "1s",
               const std::string& more = {}) {
        start_runner("[queue]\nretry_schedule = [\"" + retry + "\"]\n[[route]]\ndomain = \"remote.test\"\n" +
                         "hosts = [\"127.0.0.1:" + std::to_string(peer.port) + "\"]\n" + more,
                     active_limit);
    }
    // Stopped, every connection closed: the passes under way end (no frame outlives the runner).
    void TearDown() override {
        if (runner) {
            runner->stop();
            peer.accept_pending();
            while (!peer.accepted.empty()) peer.close_one();
            run_until([&] { return runner->passes_under_way() == 0; }, std::chrono::seconds(5));
        }
        pool.join();
    }

    queue::loaded_message commit(std::vector<std::string> rcpts, std::string id = {}) {
        return test::commit_message(*spool, std::move(rcpts), std::move(id));
    }
    // To carol@remote.test, `kib` KiB of content.
    queue::loaded_message commit_kib(std::size_t kib) {
        return test::commit_message(*spool, {"carol@remote.test"}, {},
                                    "Subject: big\r\n\r\n" + std::string(kib * 1024, 'x') + "\r\n");
    }
    // Runs the event loop in small steps until `done` holds (or `limit` has passed).
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            io.restart();
            io.run_for(std::chrono::milliseconds(20));
        }
        return true;
    }
    void run_for(std::chrono::milliseconds d) {
        io.restart();
        io.run_for(d);
    }
    std::filesystem::path state_path(const std::string& id) const { return std::filesystem::path(tmp.path) / "spool" / "state" / id; }
};

}  // namespace postern::test
