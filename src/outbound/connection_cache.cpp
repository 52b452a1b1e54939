// outbound/connection_cache.cpp - park, take and expire idle outbound sessions.
#include "outbound/connection_cache.hpp"

#include <fmt/format.h>

namespace postern::outbound {

connection_cache::~connection_cache() { close_all(); }

std::string connection_cache::key(const std::string& host, const std::string& ip, std::uint16_t port) {
    return fmt::format("{}|{}|{}", host, ip, port);
}

void connection_cache::close(parked_session& s) {
    // Best effort: QUIT (and on TLS the close_notify) on the wire if it fits, then close;
    // nobody waits for the 221. This runs on the event loop: close_with never blocks, so a
    // peer that stopped reading (its send buffer full) costs the QUIT, not the loop.
    s.session->quit();
    s.conn->close_with(s.session->take_output());
}

std::optional<parked_session> connection_cache::take(const std::string& key,
                                                      const std::shared_ptr<const void>& config) {
    const auto now = std::chrono::steady_clock::now();
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->key != key) {
            ++it;
            continue;
        }
        parked_session s = std::move(it->s);
        it->timer->cancel();
        it = entries_.erase(it);
        if (s.checked_under == config && now - s.established < max_age_) return s;
        close(s);  // checked under a configuration since reloaded, or too old to reuse
    }
    return std::nullopt;
}

void connection_cache::put(const std::string& key, parked_session s) {
    if (entries_.size() >= max_total_) {
        close(s);
        return;
    }
    auto timer = std::make_shared<asio::steady_timer>(ex_);
    timer->expires_after(idle_);
    entries_.push_back({key, std::move(s), timer});
    asio::steady_timer* raw = timer.get();
    timer->async_wait([this, raw](asio::error_code ec) {
        if (ec) return;  // cancelled: taken or closed
        // The wait may have completed just before take() cancelled it: find the entry again.
        for (auto it = entries_.begin(); it != entries_.end(); ++it)
            if (it->timer.get() == raw) {
                close(it->s);
                entries_.erase(it);
                return;
            }
    });
}

void connection_cache::close_all() {
    for (auto& e : entries_) {
        e.timer->cancel();
        close(e.s);
    }
    entries_.clear();
}

}  // namespace postern::outbound
