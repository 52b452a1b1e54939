// runtime/thread_name.hpp - names the server's threads (pthread_setname_np, at most 15
// characters), so that `top -H`, `ps -L` and `perf stat --per-thread` (bench/profile.sh stat)
// tell the session loops, the committer, the disk pool and the control reader apart; the main
// loop keeps the process's name.
#pragma once
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>

#include <pthread.h>

#include <latch>
#include <memory>
#include <string>

namespace postern::runtime {

inline void name_this_thread(const std::string& name) {
    ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
}

// Names each of the `n` threads of `pool` `name`: n tasks that each wait until all n have
// started, so that each runs on a thread of its own. Returns once all are named; call it
// before the pool is given any other work.
inline void name_pool_threads(asio::thread_pool& pool, int n, const std::string& name) {
    struct gate {
        explicit gate(int n) : started(n), named(n) {}
        std::latch started;
        std::latch named;
    };
    auto g = std::make_shared<gate>(n);  // held by every task: the last may still be leaving
    for (int i = 0; i < n; ++i)
        asio::post(pool, [g, name] {
            name_this_thread(name);
            g->started.arrive_and_wait();
            g->named.count_down();
        });
    g->named.wait();
}

}  // namespace postern::runtime
