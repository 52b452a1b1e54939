// policy/loop_choice.hpp - which session event loop (server.threads) takes a new inbound
// connection. Connections are packed onto the first loop that is not busy, and spill over to
// the next only when it is: under light or moderate load one thread does all the work, which
// saves the cross-thread wakeups and context switches that spreading every connection costs
// (issue 6: with the load generator on the same 2 cores, one session thread used ~20% less CPU
// per TLS message than two dealt round-robin). When every loop is busy, connections are dealt
// round-robin, so the capacity of all the threads is still there under full load.
// Pure logic, no clock and no threads: the main loop feeds it each loop's busy fraction
// (runtime/loop_load.hpp samples the threads' CPU time) and asks it for a loop per connection.
#pragma once
#include <cstddef>
#include <span>
#include <vector>

namespace postern::policy {

class loop_choice {
public:
    // A loop that used this fraction of a core or more over the last interval is busy.
    static constexpr double busy = 0.75;

    explicit loop_choice(std::size_t loops);

    // Each loop's share of one core over the last interval (CPU time / wall time), in loop
    // order; values beyond the number of loops are ignored, missing ones count as idle.
    void observe(std::span<const double> busy_fraction);

    // The loop for the next connection: the first one not busy, else the next in turn.
    std::size_t pick();

    std::size_t loops() const { return load_.size(); }

private:
    std::vector<double> load_;
    std::size_t next_ = 0;  // round-robin position when every loop is busy
};

}  // namespace postern::policy
