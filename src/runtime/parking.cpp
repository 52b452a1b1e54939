// runtime/parking.cpp - delivery passes parked per destination (see parking.hpp).
#include "runtime/parking.hpp"

#include <algorithm>
#include <utility>

namespace postern::runtime {

parking::parking(std::size_t per_destination, std::size_t total, starter start)
    : per_destination_(std::max<std::size_t>(1, per_destination)),
      total_(std::max<std::size_t>(1, total)),
      start_(std::move(start)) {}

bool parking::room(const std::string& dest) const {
    if (total_demand_ >= total_) return false;
    const auto d = demand_.find(dest);
    return d == demand_.end() || d->second < per_destination_;
}

bool parking::arrive(const std::string& dest, const std::string& id, bool slot_free, bool slots_short) {
    // Started from here for this destination: it is here now, no longer on its way. Whatever
    // it does next keeps the count right without a wake-up, except taking a free slot at once
    // (then the next parked one may start): waiting counts it again (wait_begins), parking
    // happens only when there is no room anyway.
    bool arrived = false;
    if (auto u = on_way_.find(id); u != on_way_.end() && u->second == dest) {
        on_way_.erase(u);
        if (auto d = demand_.find(dest); d != demand_.end() && --d->second == 0) demand_.erase(d);
        --total_demand_;
        arrived = true;
    }
    if (slot_free) {
        if (arrived) wake();
        return false;
    }
    if (!arrived && has_parked(dest)) return true;  // behind those parked first
    return slots_short && !room(dest);
}

void parking::wait_begins(const std::string& dest) {
    ++demand_[dest];
    ++total_demand_;
}

void parking::wait_ends(const std::string& dest) { drop(dest); }

void parking::drop(const std::string& dest) {
    if (auto d = demand_.find(dest); d != demand_.end()) {
        if (--d->second == 0) demand_.erase(d);
        --total_demand_;
    }
    wake();
}

void parking::park(const std::string& id, const std::vector<std::string>& dests, bool force) {
    const std::uint64_t seq = ++seq_;
    parked_of_[id] = seq;
    for (const auto& dest : dests) {
        auto& q = parked_[dest];
        if (q.empty()) ring_.push_back(dest);  // new in parked_ (an empty queue is erased with its ring entry)
        // Parked there before and started otherwise since (its co-recipient's retry timer, or
        // another destination had room): it takes its old place again, not the last one, or
        // each such start would send it to the back for as long as that goes on.
        const auto old = std::find_if(q.begin(), q.end(), [&id](const entry& e) { return e.id == id; });
        if (old != q.end()) *old = {id, force, seq};
        else q.push_back({id, force, seq});
    }
    // The pass decided to park at its group but parks at its end: the passes that left no
    // room may have got their slots meanwhile, and then nothing else would start it.
    wake();
}

void parking::pass_ended(const std::string& id) {
    const auto u = on_way_.find(id);
    if (u == on_way_.end()) return;
    const std::string dest = std::move(u->second);
    on_way_.erase(u);
    drop(dest);
}

bool parking::has_parked(const std::string& dest) const {
    const auto q = parked_.find(dest);
    if (q == parked_.end()) return false;
    for (const entry& e : q->second) {  // stale entries (started otherwise) do not count
        const auto of = parked_of_.find(e.id);
        if (of != parked_of_.end() && of->second == e.seq) return true;
    }
    return false;
}

bool parking::wake_one(const std::string& dest) {
    const auto q = parked_.find(dest);
    if (q == parked_.end()) return false;
    while (room(dest) && !q->second.empty()) {
        entry e = std::move(q->second.front());
        q->second.pop_front();
        const auto of = parked_of_.find(e.id);
        if (of == parked_of_.end() || of->second != e.seq) continue;  // started otherwise, or from another queue
        parked_of_.erase(of);
        on_way_[e.id] = dest;
        ++demand_[dest];
        ++total_demand_;
        // Last: start_() may come back here (it does not today: a pass reads its message on
        // the disk pool before anything else), so nothing of `q` is used after it.
        start_(e.id, e.force);
        return true;
    }
    return false;
}

void parking::wake() {
    // One start per destination per turn of the ring; stops when the total has no room or a
    // whole turn started nothing (every destination left at its own limit, or empty).
    std::size_t idle = 0;
    while (!ring_.empty() && total_demand_ < total_ && idle < ring_.size()) {
        std::string dest = std::move(ring_.front());
        ring_.pop_front();
        const bool started = wake_one(dest);
        const auto q = parked_.find(dest);
        const bool left = q != parked_.end() && !q->second.empty();
        if (!left) {  // (skipped entries of messages started otherwise go with it)
            if (q != parked_.end()) parked_.erase(q);
            idle = 0;  // the ring is shorter: a full turn is counted again
            continue;
        }
        ring_.push_back(std::move(dest));
        idle = started ? 0 : idle + 1;
    }
}

void parking::clear() {
    parked_.clear();
    ring_.clear();
    parked_of_.clear();
}

}  // namespace postern::runtime
