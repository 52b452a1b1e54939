// policy/unreachable.hpp - next-hop addresses found unreachable, and for how long they are not
// tried again (Postfix's dead destinations, Exim's host retry data). When a TCP connection to
// "ip|port" fails for a reason of the peer's or the path's (refused, timed out, no route: see
// says_unreachable; never a local shortage such as EMFILE) and no connection to that address
// succeeded since the failed one was started, the address is down for `hold` (the first step of
// queue.retry_schedule, as it is when asked: a reload that shortens it shortens marks already
// set): deliveries in that time defer their recipients to it at once with the failure's reason
// instead of connecting again. Failures while it is down do not make it longer. A success
// clears the mark; so does `postern queue retry` (clear(), like Postfix's flush of dead
// destinations). A failure while another connection to the address succeeded (a full listen
// backlog under load) marks nothing. Pure data, no I/O; one thread (the queue runner's event
// loop).
#pragma once
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <system_error>
#include <unordered_map>

namespace postern::policy {

// Whether a failed connect says the address cannot be reached (refused, timed out: `timed_out`
// when our own timer ended it, host or network unreachable) rather than that this machine could
// not try (descriptors, local ports or buffers exhausted, an aborted attempt).
bool says_unreachable(const std::error_code& ec, bool timed_out);

class unreachable_addresses {
public:
    using clock = std::chrono::steady_clock;

    // A connection to `key` started at `started` failed at `now` with `reason` ("connect to
    // mx[192.0.2.1]:25: Connection refused"): the address is down from now, unless a connection
    // to it succeeded at or after `started`, or it is down already (under `hold`).
    void failed(const std::string& key, clock::time_point started, clock::time_point now, std::string reason,
                std::chrono::seconds hold);
    // A connection to `key` was established at `at`: not down (unless it failed again after).
    void reached(const std::string& key, clock::time_point at);
    // Why `key` is down at `now` when a mark lasts `hold` (the failure's reason), or nothing:
    // try it.
    std::optional<std::string> down(const std::string& key, clock::time_point now, std::chrono::seconds hold) const;
    void clear() { entries_.clear(); }
    std::size_t size() const { return entries_.size(); }

    // Entries that can no longer matter (not down, and no success recent enough for a connection
    // attempt still running to have started before it) are dropped once there are this many, and
    // then again only once the table has doubled (each prune reads every entry).
    static constexpr std::size_t prune_above = 1024;
    static constexpr std::chrono::seconds longest_attempt{60};  // > the 30 s connect timeout

private:
    struct entry {
        clock::time_point reached{};  // the last successful connection (epoch: none)
        clock::time_point failed{};   // when the mark was set (epoch: not marked)
        std::string reason;
    };
    void prune(clock::time_point now);
    std::unordered_map<std::string, entry> entries_;
    std::size_t prune_at_ = prune_above;
    std::chrono::seconds last_hold_{0};  // the hold of the last failure: what prune keeps
};

}  // namespace postern::policy
