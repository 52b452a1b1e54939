// runtime/parking.cpp - delivery passes parked per destination (see parking.hpp).
#include "runtime/parking.hpp"

#include <algorithm>
#include <utility>
#include <vector>

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

bool parking::arrive(const std::string& dest, const std::string& id, bool slot_free) {
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
        if (arrived) wake(dest);
        return false;
    }
    return !room(dest);
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
    wake(dest);
}

void parking::park(const std::string& id, const std::string& dest, bool force) {
    const std::uint64_t seq = ++seq_;
    parked_[dest].push_back({id, force, seq});
    parked_of_[id] = {dest, seq};
    // The pass decided to park at its group but parks at its end: the passes that left no
    // room may have got their slots meanwhile, and then nothing else would start it.
    wake(dest);
}

void parking::pass_ended(const std::string& id) {
    const auto u = on_way_.find(id);
    if (u == on_way_.end()) return;
    const std::string dest = std::move(u->second);
    on_way_.erase(u);
    drop(dest);
}

bool parking::wake_one(const std::string& dest) {
    while (room(dest)) {
        // Looked up each time: start_() may have changed the map.
        const auto q = parked_.find(dest);
        if (q == parked_.end()) return false;
        if (q->second.empty()) {
            parked_.erase(q);
            return false;
        }
        entry e = std::move(q->second.front());
        q->second.pop_front();
        const auto of = parked_of_.find(e.id);
        if (of == parked_of_.end() || of->second.seq != e.seq) continue;  // started otherwise meanwhile
        parked_of_.erase(of);
        on_way_[e.id] = dest;
        ++demand_[dest];
        ++total_demand_;
        start_(e.id, e.force);
        return true;
    }
    return false;
}

void parking::wake(const std::string& dest) {
    while (wake_one(dest)) {
    }
    // Destinations parked by the total limit alone have no event of their own: each wakes one
    // at a time, in turn, while the total has room.
    if (total_demand_ >= total_ || parked_.empty() || (parked_.size() == 1 && parked_.count(dest))) return;
    std::vector<std::string> others;
    for (const auto& [d, q] : parked_)
        if (d != dest) others.push_back(d);
    for (bool any = true; any && total_demand_ < total_;) {
        any = false;
        for (const auto& d : others)
            if (wake_one(d)) any = true;
    }
}

void parking::clear() {
    parked_.clear();
    parked_of_.clear();
}

}  // namespace postern::runtime
