// policy/admission.hpp - how many inbound connections are open, in all and per client IP
// address, against server.max_connections and server.max_connections_per_ip. The accept loop
// admits (main event loop); a session releases on its own thread when it ends, with no hop to
// the main loop (issue 6: one wakeup of the main loop per connection fewer). Thread-safe.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace postern::policy {

class admission {
public:
    enum class verdict { admitted, too_many, too_many_from_ip };

    // Counts the connection in when both limits allow it (the caller must release() it later).
    verdict admit(const std::string& ip, std::uint32_t max_total, std::uint32_t max_per_ip);
    void release(const std::string& ip);
    std::uint32_t open() const;                       // connections admitted and not released
    std::uint32_t open_from(const std::string& ip) const;

    // One admitted connection's place, given back once: by release() (a session does it as
    // soon as its SMTP dialogue is over, before the TLS close_notify exchange and the close,
    // so that a client reconnecting the moment it has the 221 or sees the close finds the
    // place free, even at the per-IP limit) or, at the latest, when destroyed.
    class slot {
    public:
        slot(admission& a, std::string ip) : a_(&a), ip_(std::move(ip)) {}
        slot(slot&& o) noexcept : a_(std::exchange(o.a_, nullptr)), ip_(std::move(o.ip_)) {}
        slot(const slot&) = delete;
        slot& operator=(const slot&) = delete;
        slot& operator=(slot&&) = delete;
        ~slot() { release(); }
        void release() {
            if (admission* a = std::exchange(a_, nullptr)) a->release(ip_);
        }

    private:
        admission* a_;
        std::string ip_;
    };

private:
    mutable std::mutex mu_;
    std::uint32_t total_ = 0;
    std::unordered_map<std::string, std::uint32_t> per_ip_;  // only addresses with connections open
};

}  // namespace postern::policy
