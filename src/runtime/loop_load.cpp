// runtime/loop_load.cpp - sampling the session threads' CPU time for policy::loop_choice
// (see the header).
#include "runtime/loop_load.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <pthread.h>
#include <time.h>

#include <chrono>

namespace postern::runtime {

namespace {

std::chrono::nanoseconds cpu_time(clockid_t clock) {
    timespec ts{};
    if (clock_gettime(clock, &ts) != 0) return {};
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

}  // namespace

asio::awaitable<void> sample_loop_load(asio::io_context& main, const std::vector<std::thread>& threads,
                                       policy::loop_choice& choice, const bool& stop) {
    constexpr auto interval = std::chrono::milliseconds(100);
    std::vector<clockid_t> clocks;
    for (const auto& t : threads) {
        clockid_t c{};
        // A thread whose clock cannot be read counts as idle (it stays a candidate).
        if (pthread_getcpuclockid(const_cast<std::thread&>(t).native_handle(), &c) != 0) c = CLOCK_THREAD_CPUTIME_ID;
        clocks.push_back(c);
    }
    std::vector<std::chrono::nanoseconds> before(clocks.size());
    std::vector<double> busy(clocks.size(), 0.0);
    for (std::size_t i = 0; i < clocks.size(); ++i) before[i] = cpu_time(clocks[i]);
    auto then = std::chrono::steady_clock::now();
    asio::steady_timer timer(main);
    while (!stop) {
        timer.expires_after(interval);
        auto [ec] = co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        if (ec || stop) co_return;
        const auto now = std::chrono::steady_clock::now();
        const double wall = std::chrono::duration<double>(now - then).count();
        then = now;
        for (std::size_t i = 0; i < clocks.size(); ++i) {
            const auto cpu = clocks[i] == CLOCK_THREAD_CPUTIME_ID ? before[i] : cpu_time(clocks[i]);
            busy[i] = wall > 0 ? std::chrono::duration<double>(cpu - before[i]).count() / wall : 0.0;
            before[i] = cpu;
        }
        choice.observe(busy);
    }
}

}  // namespace postern::runtime
