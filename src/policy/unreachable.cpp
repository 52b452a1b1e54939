// policy/unreachable.cpp - the table of next-hop addresses marked down (see the header).
#include "policy/unreachable.hpp"

#include <utility>

namespace postern::policy {

void unreachable_addresses::failed(const std::string& key, clock::time_point started, clock::time_point now,
                                   std::string reason, std::chrono::seconds hold) {
    prune(now);
    entry& e = entries_[key];
    if (e.reached != clock::time_point{} && e.reached >= started) return;  // reached meanwhile: alive
    if (now + hold <= e.down_until) return;  // an earlier failure holds it longer
    e.down_until = now + hold;
    e.reason = std::move(reason);
}

void unreachable_addresses::reached(const std::string& key, clock::time_point now) {
    prune(now);
    entry& e = entries_[key];
    e.reached = now;
    e.down_until = {};
    e.reason.clear();
}

std::optional<std::string> unreachable_addresses::down(const std::string& key, clock::time_point now) const {
    const auto it = entries_.find(key);
    if (it == entries_.end() || it->second.down_until <= now) return std::nullopt;
    return it->second.reason;
}

void unreachable_addresses::prune(clock::time_point now) {
    if (entries_.size() < prune_above) return;
    for (auto it = entries_.begin(); it != entries_.end();) {
        const entry& e = it->second;
        const bool marked = e.down_until > now;
        const bool recent = e.reached != clock::time_point{} && now - e.reached < longest_attempt;
        if (!marked && !recent) it = entries_.erase(it);
        else ++it;
    }
}

}  // namespace postern::policy
