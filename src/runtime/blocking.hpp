// runtime/blocking.hpp - run blocking work (fsync, file I/O) on the disk pool, or hand a
// message to the spool's committer thread, from a coroutine, resuming on the caller's
// executor. The event loop never blocks on the disk.
#pragma once
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "queue/committer.hpp"

namespace postern::runtime {

// Capture by reference in `f` (every caller does). g++ 12.2 destroys twice an aggregate
// temporary (a braced struct, or a lambda with a by-value capture such as [s] of a
// std::string) passed by value to a coroutine inside a co_await expression: checked on
// 2026-11-30 under ASan with `co_await run_blocking(pool, [s] { ... })` and
// `co_await h(L{s})` (double free); a class built by a constructor, or an awaitable made first
// and awaited afterwards, is destroyed once.
template <class F>
auto run_blocking(asio::thread_pool& pool, F f) -> asio::awaitable<decltype(f())> {
    using R = decltype(f());
    co_return co_await asio::co_spawn(
        pool.get_executor(), [f = std::move(f)]() mutable -> asio::awaitable<R> { co_return f(); },
        asio::use_awaitable);
}

// Commits one message through `c` (queue/committer.hpp); completes with its failure, or
// nullopt once it is durable, on the executor associated with the completion token.
template <class Token>
auto async_commit(queue::committer& c, const queue::envelope& env, std::vector<std::string_view> parts,
                  queue::area where, Token&& token) {
    using result = std::optional<queue::spool_failure>;
    return asio::async_initiate<Token, void(result)>(
        [&c, &env, where](auto handler, std::vector<std::string_view> parts) {
            auto ex = asio::get_associated_executor(handler);
            // std::function needs a copyable callable; the handler is move-only.
            auto h = std::make_shared<decltype(handler)>(std::move(handler));
            c.submit(env, std::move(parts), where, [h, ex](result r) {
                asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
            });
        },
        token, std::move(parts));
}

}  // namespace postern::runtime
