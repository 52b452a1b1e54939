// runtime/queue_runner.hpp - the queue manager: delivery passes over queued messages,
// per-recipient state, retries on queue.retry_schedule, expiry at queue.max_age (bounce),
// DSNs, hold/release/delete/retry, recovery of the whole spool at start-up (SPEC §3).
// Storage is queue::spool (blocking, run on the disk pool); transports are
// delivery::deliver_maildir and outbound::deliverer; this file only schedules and records.
// Bounds: at most `active_limit` messages loaded in memory by passes at once (Postfix's
// qmgr_message_active_limit) and at most server.max_buffered_size bytes of their content (a
// larger message alone); the others wait, unloaded, in a FIFO. Then outbound delivery slots in
// total and per destination; a pass takes its message slot before any delivery slot. When
// message slots are short (half taken), a pass that would wait for a delivery slot while a
// tenth of them already wait for its destination (half for all destinations), or behind
// messages parked for it, is parked instead (runtime/parking.hpp): it gives its message slot
// back and waits, unloaded, for that destination, so a dead or slow destination cannot take
// every message slot and starve the others.
// A message whose recipients go to several destinations records the ones sent after each
// destination but the last: a crash or a stop in between does not deliver them again.
#pragma once
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>

#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "config/config.hpp"
#include "control/control.hpp"
#include "dns/resolver.hpp"
#include "outbound/connection_cache.hpp"
#include "policy/unreachable.hpp"
#include "queue/spool.hpp"
#include "runtime/parking.hpp"

namespace postern::runtime {

class queue_runner final : public control::queue_control {
public:
    struct settings {
        std::shared_ptr<const config::config> cfg;
        std::shared_ptr<asio::ssl::context> client_tls;  // outbound STARTTLS
    };
    using settings_source = std::function<settings()>;

    // Messages held in memory by delivery passes at once (loaded or handed over): with a
    // backlog (100,000 files in queue/ at start-up) the rest wait without their content. Their
    // bytes are bounded too, by server.max_buffered_size (read at each decision: a reload
    // applies): a pass is let in only while what the passes hold plus its message fits, or
    // when no pass holds any content (a message larger than the budget goes alone).
    static constexpr std::size_t default_active_limit = 1000;

    queue_runner(asio::io_context& io, asio::thread_pool& pool, queue::spool& sp, dns::resolver& resolver,
                 settings_source src, std::size_t active_limit = default_active_limit);

    void submit(const std::string& id);  // event-loop thread: attempt now
    // submit() for a message just committed by an inbound session, handed over in memory: its
    // first pass needs no read of the queue file (nor of a state file, which it cannot have
    // yet). `fresh.env.id` is the queue id. Never waits: when active_limit messages, or the
    // byte budget, are already in memory the copy is dropped and the message waits its turn
    // from the spool.
    void submit(queue::loaded_message fresh);
    void recover();                      // event-loop thread: pick up everything in queue/
    // Starts nothing more (timers cancelled, passes waiting for a message slot dropped, passes
    // waiting for a delivery slot end without it); transactions under way finish and are
    // recorded. A drain waits for passes_under_way() to reach 0.
    void stop();
    std::size_t passes_under_way() const { return loaded_; }
    std::size_t passes_waiting() const { return waiting_.size(); }  // for a message slot
    std::size_t passes_parked() const { return parking_.parked(); }  // for their destination
    std::uint64_t content_held() const { return held_bytes_; }     // by the passes under way

    // control::queue_control (event-loop thread)
    std::vector<control::message_view> list() override;
    result<control::message_view> show(const std::string& id) override;
    result<unsigned> retry(const std::string& id, bool all) override;
    result<void> remove(const std::string& id) override;
    result<void> hold(const std::string& id) override;
    result<void> release(const std::string& id) override;

private:
    // Why `id` was not found where a command looked: "no queued message ID" / "no held message
    // ID", or where it is instead when it is in the other area, `instead`.
    std::string absent(const std::string& id, queue::area instead) const;
    asio::awaitable<void> run(std::string id, bool force, std::optional<queue::loaded_message> fresh = {});
    // A pass for `id` (already in active_) now if a message slot is free, else in turn.
    void start(const std::string& id, bool force);
    // A pass holding `size` more bytes of content may start now: a message slot is free and
    // the content budget has room for it (or no pass holds any content).
    bool fits(std::uint64_t size) const;
    // Takes a message slot and `size` bytes of the budget for `id`, and starts its pass.
    void launch(std::string id, bool force, std::uint64_t size, std::optional<queue::loaded_message> fresh = {});
    // The pass of `id` holds `size` bytes (what it read, not what the queue file's size said).
    void recount(const std::string& id, std::uint64_t size);
    // A pass that ended by an exception (bad_alloc reading a large file, say) before its
    // end_pass(): logged, its slot and bytes given back, the message tried again after the
    // first retry step. Without this the slot and bytes stayed taken for good, and with the
    // byte budget every waiting pass behind a large message waited for ever.
    void pass_threw(const std::string& id, std::uint64_t pass, std::exception_ptr e);
    // The pass of `id` ended: its message slot and bytes go to the oldest waiting passes.
    void end_pass(const std::string& id);
    void schedule(const std::string& id, std::int64_t when);
    bool slot_free(const std::string& dest) const;
    // Waits FIFO for a delivery slot; false (no slot taken) once stop() was called.
    asio::awaitable<bool> acquire(const std::string& dest);
    void release_slot(const std::string& dest);               // wakes one waiter that can use it

    asio::io_context& io_;
    asio::thread_pool& pool_;
    queue::spool& spool_;
    dns::resolver& resolver_;
    settings_source src_;
    std::unordered_set<std::string> active_;          // a pass runs or waits for a message slot
    std::unordered_map<std::string, bool> resubmit_;  // id -> force
    // Message slots: passes holding one (their message in memory), and the ones waiting for
    // one, oldest first, with their `force` (id -> force, in waiting_force_).
    std::size_t active_limit_;
    std::size_t loaded_ = 0;
    // Content bytes the passes holding a message slot hold (queue file or copy handed over),
    // in all and per pass.
    std::uint64_t held_bytes_ = 0;
    struct holding {
        std::uint64_t bytes;
        std::uint64_t pass;  // which launch() (a pass that threw releases only its own slot)
    };
    std::unordered_map<std::string, holding> held_;
    std::uint64_t passes_launched_ = 0;
    std::deque<std::string> waiting_;
    std::unordered_map<std::string, bool> waiting_force_;
    // Messages whose queue or state file could not be read (EMFILE, EIO...): retried on the
    // first retry_schedule step, logged when they become unreadable, not at every retry.
    std::unordered_set<std::string> unreadable_;
    // Recipient states whose write to state/ID failed (full disk, EMFILE): newer than the file.
    // The next pass writes them first and attempts nothing until that succeeds, so a recipient
    // already sent is never taken for queued again (which delivered it once per retry).
    struct unsaved_state {
        std::vector<queue::rcpt_state> st;
        std::set<std::string> tls_failed;
    };
    std::unordered_map<std::string, unsaved_state> unsaved_;
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
    parking parking_;  // passes that would wait for a delivery slot beyond its limits
    outbound::connection_cache cache_;
    // Next-hop addresses whose connections failed lately: not connected to again before the
    // first retry step; `queue retry` clears it (policy/unreachable.hpp).
    policy::unreachable_addresses unreachable_;
    bool stopped_ = false;
};

}  // namespace postern::runtime
