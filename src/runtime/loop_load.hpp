// runtime/loop_load.hpp - measures how busy each session thread is: every 100 ms, on the main
// event loop, each thread's CPU time (its POSIX CPU-time clock) over the wall time elapsed,
// handed to policy::loop_choice, which picks the loop for each new connection.
#pragma once
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>

#include <thread>
#include <vector>

#include "policy/loop_choice.hpp"

namespace postern::runtime {

// Runs on the main loop until `stop` is set (draining); `threads` are the session threads, in
// the order of the loops `choice` picks from.
asio::awaitable<void> sample_loop_load(asio::io_context& main, const std::vector<std::thread>& threads,
                                       policy::loop_choice& choice, const bool& stop);

}  // namespace postern::runtime
