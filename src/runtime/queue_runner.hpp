// runtime/queue_runner.hpp - the queue manager: delivery passes over queued messages,
// per-recipient state, retries on queue.retry_schedule, expiry at queue.max_age (bounce),
// DSNs, hold/release/delete/retry, recovery of the whole spool at start-up (SPEC §3).
// Storage is queue::spool (blocking, run on the disk pool); transports are
// delivery::deliver_maildir and outbound::deliverer; this file only schedules and records.
#pragma once
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "config/config.hpp"
#include "control/control.hpp"
#include "dns/resolver.hpp"
#include "outbound/connection_cache.hpp"
#include "queue/spool.hpp"

namespace postern::runtime {

class queue_runner final : public control::queue_control {
public:
    struct settings {
        std::shared_ptr<const config::config> cfg;
        std::shared_ptr<asio::ssl::context> client_tls;  // outbound STARTTLS
    };
    using settings_source = std::function<settings()>;

    queue_runner(asio::io_context& io, asio::thread_pool& pool, queue::spool& sp, dns::resolver& resolver,
                 settings_source src);

    void submit(const std::string& id);  // event-loop thread: attempt now
    // submit() for a message just committed by an inbound session, handed over in memory: its
    // first pass needs no read of the queue file (nor of a state file, which it cannot have
    // yet). `fresh.env.id` is the queue id.
    void submit(queue::loaded_message fresh);
    void recover();                      // event-loop thread: pick up everything in queue/
    void stop();                         // cancel timers; in-flight attempts finish

    // control::queue_control (event-loop thread)
    std::vector<control::message_view> list() override;
    result<control::message_view> show(const std::string& id) override;
    result<unsigned> retry(const std::string& id, bool all) override;
    result<void> remove(const std::string& id) override;
    result<void> hold(const std::string& id) override;
    result<void> release(const std::string& id) override;

private:
    asio::awaitable<void> run(std::string id, bool force, std::optional<queue::loaded_message> fresh = {});
    void schedule(const std::string& id, std::int64_t when);
    bool slot_free(const std::string& dest) const;
    asio::awaitable<void> acquire(const std::string& dest);  // waits FIFO for a delivery slot
    void release_slot(const std::string& dest);               // wakes one waiter that can use it

    asio::io_context& io_;
    asio::thread_pool& pool_;
    queue::spool& spool_;
    dns::resolver& resolver_;
    settings_source src_;
    std::unordered_set<std::string> active_;
    std::unordered_map<std::string, bool> resubmit_;  // id -> force
    std::unordered_map<std::string, std::unique_ptr<asio::steady_timer>> timers_;
    // Outbound concurrency: in total and per destination (recipient domain).
    unsigned busy_ = 0;
    std::unordered_map<std::string, unsigned> busy_per_dest_;
    struct waiter {
        asio::steady_timer* timer;
        const std::string* dest;
        bool woken = false;  // its slot is on the way: not woken twice
    };
    std::deque<waiter> waiters_;  // deliveries waiting for a slot, oldest first
    outbound::connection_cache cache_;
    bool stopped_ = false;
};

}  // namespace postern::runtime
