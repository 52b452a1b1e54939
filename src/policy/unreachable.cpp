// policy/unreachable.cpp - the table of next-hop addresses marked down (see the header).
#include "policy/unreachable.hpp"

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <utility>

namespace postern::policy {

bool says_unreachable(const std::error_code& ec, bool timed_out) {
    if (timed_out) return true;
    // errno values: the system and generic categories, and standalone Asio's own "asio.system",
    // whose codes are errno values but which maps none of them to std::errc (Asio 1.22 without
    // ASIO_HAS_STD_ERROR_CODE), so `ec == std::errc::...` would never hold for its errors.
    const std::string_view category = ec.category().name();
    if (category != "system" && category != "generic" && category != "asio.system") return false;
    switch (ec.value()) {
        case ECONNREFUSED:
        case ETIMEDOUT:
        case EHOSTUNREACH:
        case ENETUNREACH:
            return true;
        default:
            return false;
    }
}

void unreachable_addresses::failed(const std::string& key, clock::time_point started, clock::time_point now,
                                   std::string reason, std::chrono::seconds hold) {
    last_hold_ = hold;
    prune(now);
    entry& e = entries_[key];
    if (e.reached != clock::time_point{} && e.reached >= started) return;  // reached meanwhile: alive
    if (e.failed != clock::time_point{} && e.failed + hold > now) return;  // down already: not longer
    e.failed = now;
    e.reason = std::move(reason);
}

void unreachable_addresses::reached(const std::string& key, clock::time_point at) {
    prune(at);
    entry& e = entries_[key];
    e.reached = std::max(e.reached, at);
    if (e.failed <= at) {
        e.failed = {};
        e.reason.clear();
    }
}

std::optional<std::string> unreachable_addresses::down(const std::string& key, clock::time_point now,
                                                       std::chrono::seconds hold) const {
    const auto it = entries_.find(key);
    if (it == entries_.end() || it->second.failed == clock::time_point{} || it->second.failed + hold <= now)
        return std::nullopt;
    return it->second.reason;
}

void unreachable_addresses::prune(clock::time_point now) {
    if (entries_.size() < prune_at_) return;
    for (auto it = entries_.begin(); it != entries_.end();) {
        const entry& e = it->second;
        const bool marked = e.failed != clock::time_point{} && e.failed + last_hold_ > now;
        const bool recent = e.reached != clock::time_point{} && now - e.reached < longest_attempt;
        if (!marked && !recent) it = entries_.erase(it);
        else ++it;
    }
    prune_at_ = std::max(prune_above, 2 * entries_.size());
}

}  // namespace postern::policy
