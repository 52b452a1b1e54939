// queue/committer.hpp - one thread that commits the messages of many sessions in batches
// (issue 6; used with spool.sync = "filesystem").
// A session hands its message over with submit() and is called back when the message is
// durable (or failed): the thread takes every message submitted meanwhile as one batch
// (spool::commit_batch: the files written, one syncfs, the renames, one directory fsync) and
// then waits for the next. Under load a batch holds about one message per active session, and
// no thread blocks per message: the disk pool's thread-per-commit cost several context switches
// per message (waking a pool thread, waiting for the shared syncs, handing the result back).
// The callback runs on the committer's thread: it must only hand the result over (post it to
// the session's event loop). The destructor commits what was submitted, then stops.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "queue/spool.hpp"

namespace postern::queue {

class committer {
public:
    using done_fn = std::function<void(std::optional<spool_failure>)>;

    explicit committer(spool& sp);
    ~committer();
    committer(const committer&) = delete;
    committer& operator=(const committer&) = delete;

    // `env` and the memory `parts` point into must stay valid until `done` has been called.
    void submit(const envelope& env, std::vector<std::string_view> parts, area where, done_fn done);

    // Batches committed so far (messages / batches = the batching factor).
    std::uint64_t batches() const;

private:
    void run();

    spool& spool_;
    mutable std::mutex m_;
    std::condition_variable cv_;
    std::vector<commit_item> pending_;
    std::vector<done_fn> pending_done_;
    bool stop_ = false;
    std::uint64_t batches_ = 0;
    std::thread thread_;  // last: starts after the members above exist
};

}  // namespace postern::queue
