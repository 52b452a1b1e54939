// runtime/parking.hpp - which delivery passes may wait for a destination's delivery slot while
// holding their message (and its message slot), and which are parked without it until the
// destination can take them (runtime::queue_runner; no I/O, no Asio).
//
// Without it, 1,000 due messages for one dead or slow destination took every message slot
// while they waited for its 20 delivery slots, and held every other destination's mail, local
// maildir included (Postfix keeps a queue per destination for this). Now a pass that finds no
// free slot waits only while its destination has fewer than `per_destination` passes waiting
// (or on their way, see below) and all destinations together fewer than `total`; else it is
// parked: it gives its message slot back and keeps no content, no pass and no timer.
//
// Demand of a destination: the passes waiting for one of its slots, plus the parked ones
// started again that have not reached it yet ("on their way": loading the message, or
// delivering to the destinations before it). Parked passes start again, oldest first, as soon
// as their destination's and the total demand leave room; a parked pass always has a future
// event that does that (its destination's demand, or the total demand, is at its limit, and
// each pass counted in it ends its wait, reaches the destination or ends).
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace postern::runtime {

class parking {
public:
    // start(id, force): begin a delivery pass of a parked message (its `force` as parked).
    using starter = std::function<void(const std::string& id, bool force)>;

    parking(std::size_t per_destination, std::size_t total, starter start);

    // A pass reached `dest` and `slot_free` says whether it can take a delivery slot now: true
    // when it must park instead of waiting (it then calls park() at the end of its pass).
    // `slots_short`: message slots are getting scarce (the runner's call: half of them taken,
    // or passes waiting for one). While they are not, a pass waits whatever the demand: a
    // message parked then would only be read again later, for nobody's benefit (a burst for a
    // single relay host, say) - unless messages are parked for `dest` already: a new pass
    // parks behind them (arrival order), or it would overtake them for as long as it lasts.
    bool arrive(const std::string& dest, const std::string& id, bool slot_free, bool slots_short = true);
    void wait_begins(const std::string& dest);  // the pass waits for a slot: counted
    void wait_ends(const std::string& dest);    // it got one (or the runner stops)
    // The message of `id` waits, unloaded, for the first of `dests` with room (its pass has
    // ended; one place in each destination's queue, the first taken makes the others stale).
    void park(const std::string& id, const std::vector<std::string>& dests, bool force);
    void park(const std::string& id, const std::string& dest, bool force) { park(id, std::vector{dest}, force); }
    // A pass of `id` starts by any other way (`queue retry`, a release), or the message left
    // the queue (hold, delete): it is no longer parked.
    void forget(const std::string& id) { parked_of_.erase(id); }
    // The pass of `id` ended: if it had been started from here and never reached its
    // destination (held, deleted, delivered by now, rerouted by a reload), it counts no more.
    void pass_ended(const std::string& id);
    void slot_released(const std::string&) { wake(); }
    void clear();  // the runner stops: parked messages stay queued, due at the restart

    std::size_t parked() const { return parked_of_.size(); }

private:
    bool room(const std::string& dest) const;
    bool has_parked(const std::string& dest) const;  // a message (not a stale entry) waits for it
    void drop(const std::string& dest);  // one fewer counted for dest
    bool wake_one(const std::string& dest);
    // Starts parked messages while there is room: one per destination in turn (the ring), so
    // that a destination parked by the total limit alone is not passed over for good by a
    // saturated one whose own waits keep ending (found by review).
    void wake();

    struct entry {
        std::string id;
        bool force;    // a `queue retry` pass stays forced when it starts again
        std::uint64_t seq;  // which park() (an older entry of the same id is skipped)
    };
    std::size_t per_destination_;
    std::size_t total_;
    starter start_;
    std::unordered_map<std::string, std::deque<entry>> parked_;  // dest -> oldest first
    std::deque<std::string> ring_;  // the destinations in parked_, each once, next to serve first
    std::unordered_map<std::string, std::uint64_t> parked_of_;   // id -> the seq of its current entries
    std::unordered_map<std::string, std::string> on_way_;        // id -> dest: started, not there yet
    std::unordered_map<std::string, std::size_t> demand_;        // dest -> waiting + on their way
    std::size_t total_demand_ = 0;
    std::uint64_t seq_ = 0;
};

}  // namespace postern::runtime
