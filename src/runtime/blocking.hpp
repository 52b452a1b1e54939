// runtime/blocking.hpp - run blocking work (fsync, file I/O) on the disk pool from a coroutine,
// resuming on the caller's executor. The event loop never blocks on the disk.
#pragma once
#include <asio/co_spawn.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>

namespace postern::runtime {

template <class F>
auto run_blocking(asio::thread_pool& pool, F f) -> asio::awaitable<decltype(f())> {
    using R = decltype(f());
    co_return co_await asio::co_spawn(
        pool.get_executor(), [f = std::move(f)]() mutable -> asio::awaitable<R> { co_return f(); },
        asio::use_awaitable);
}

}  // namespace postern::runtime
