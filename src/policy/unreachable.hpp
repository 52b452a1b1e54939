// policy/unreachable.hpp - next-hop addresses found unreachable, and for how long they are not
// tried again (Postfix's dead destinations, Exim's host retry data). When a TCP connection to
// "ip:port" fails (refused, timed out) and no connection to that address succeeded since the
// failed one was started, the address is marked down for `hold` (the first step of
// queue.retry_schedule): deliveries in that time defer their recipients to it at once with the
// failure's reason instead of connecting again. Without it, 1,000 queued messages for a host
// that drops SYNs each held a delivery slot for the 30 s connect timeout, at every retry.
// A success clears the mark; so does `postern queue retry` (clear(), like Postfix's flush of
// dead destinations). A failure while another connection to the address succeeded (a full
// listen backlog under load) marks nothing. Pure data, no I/O; one thread (the queue runner's
// event loop).
#pragma once
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>

namespace postern::policy {

class unreachable_addresses {
public:
    using clock = std::chrono::steady_clock;

    // A connection to `key` started at `started` failed at `now` with `reason` ("connect to
    // mx[192.0.2.1]:25: Connection refused"): the address is down until now + hold, unless a
    // connection to it succeeded at or after `started`.
    void failed(const std::string& key, clock::time_point started, clock::time_point now, std::string reason,
                std::chrono::seconds hold);
    // A connection to `key` was established at `now`: not down.
    void reached(const std::string& key, clock::time_point now);
    // Why `key` is down at `now` (the failure's reason), or nothing: try it.
    std::optional<std::string> down(const std::string& key, clock::time_point now) const;
    void clear() { entries_.clear(); }
    std::size_t size() const { return entries_.size(); }

    // Entries that can no longer matter (not down, and no success recent enough for a connection
    // attempt still running to have started before it) are dropped once there are this many.
    static constexpr std::size_t prune_above = 1024;
    static constexpr std::chrono::seconds longest_attempt{60};  // > the 30 s connect timeout

private:
    struct entry {
        clock::time_point reached{};     // the last successful connection (epoch: none)
        clock::time_point down_until{};  // marked down before this (epoch: not marked)
        std::string reason;
    };
    void prune(clock::time_point now);
    std::unordered_map<std::string, entry> entries_;
};

}  // namespace postern::policy
