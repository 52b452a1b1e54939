// queue/group_sync.hpp - group commit (issue 6): many committers, one sync for all of them
// (the spool's syncfs of the file system, and its fsync of the queue directory).
// A message is durable once its file is synced, renamed into queue/ (or hold/), and the
// directory is fsynced after the rename (spool.hpp). When several sessions commit at once,
// one sync that STARTS after all their writes (or renames) covers them all; sync() waits for
// exactly that: it returns the result of the first sync that began after the call, running it
// itself if none is running, or waiting for the one in flight to end and then for (or running)
// the next. Never does a caller return success from a sync that began before its write.
// Thread-safe; callers block (they run on the disk thread pool, never on the event loop).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

namespace postern::queue {

class group_sync {
public:
    // `do_sync` performs one fsync of the directory and returns 0 or an errno.
    explicit group_sync(std::function<int()> do_sync) : do_sync_(std::move(do_sync)) {}

    // 0 when an fsync that started after this call succeeded; else its errno.
    int sync();

    // How many fsyncs ran (for tests and benchmarks): callers / syncs = the batching factor.
    std::uint64_t syncs_run() const;

private:
    struct failed_batch {
        std::uint64_t from, to;  // tickets (from, to] had this error
        int err;
        std::uint64_t unread;    // callers of the batch yet to read it; dropped at 0
    };
    std::function<int()> do_sync_;
    mutable std::mutex m_;
    std::condition_variable cv_;
    std::uint64_t issued_ = 0;     // tickets handed out so far
    std::uint64_t completed_ = 0;  // every ticket <= completed_ has its result
    bool running_ = false;
    std::uint64_t syncs_ = 0;
    std::deque<failed_batch> failures_;  // failed batches not yet read by all their callers
};

}  // namespace postern::queue
