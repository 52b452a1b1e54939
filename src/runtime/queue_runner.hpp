// runtime/queue_runner.hpp - delivers committed messages and schedules retries (SPEC §3).
// Issue 2 scope: local maildir delivery for hosted domains; recipients that need SMTP
// (relay_to, routes, MX) stay deferred until the delivery engine lands. Storage is
// queue::spool; retry timing (queue.retry_schedule) lives here; the attempt itself runs on
// the disk pool.
#pragma once
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "config/config.hpp"
#include "queue/spool.hpp"

namespace postern::runtime {

// One delivery pass over one queued message: delivers every recipient that is due, updates
// the per-recipient state, removes the message when every recipient is final. Returns the
// unix time of the next attempt, or nullopt when the message is done (or gone). Blocking.
std::optional<std::int64_t> attempt_message(queue::spool& sp, const config::config& cfg, const std::string& id,
                                            std::int64_t now);

class queue_runner {
public:
    using config_source = std::function<std::shared_ptr<const config::config>()>;
    queue_runner(asio::io_context& io, asio::thread_pool& pool, queue::spool& sp, config_source cfg);

    void submit(const std::string& id);  // event-loop thread: attempt now
    void recover();                      // event-loop thread: submit everything in queue/
    void stop();                         // cancel timers; in-flight attempts finish

private:
    asio::awaitable<void> run(std::string id);
    void schedule(const std::string& id, std::int64_t when);

    asio::io_context& io_;
    asio::thread_pool& pool_;
    queue::spool& spool_;
    config_source cfg_;
    std::unordered_set<std::string> active_;
    std::unordered_set<std::string> resubmit_;
    std::unordered_map<std::string, std::unique_ptr<asio::steady_timer>> timers_;
    bool stopped_ = false;
};

}  // namespace postern::runtime
