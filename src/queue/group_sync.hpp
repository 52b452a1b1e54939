// queue/group_sync.hpp - group commit (issue 6): many committers, one sync for all of them
// (the spool's syncfs of the file system, and its fsync of the queue directory).
// A message is durable once its file is synced, renamed into queue/ (or hold/), and the
// directory is fsynced after the rename (spool.hpp). When several sessions commit at once,
// one sync that STARTS after all their writes (or renames) covers them all; sync() waits for
// exactly that: it returns the result of the first sync that began after the call, running it
// itself if none is running, or waiting for the one in flight to end and then for (or running)
// the next. Never does a caller return success from a sync that began before its write.
// Nor from one after a sync that failed while its writes were under way: Linux reports a
// writeback error once per open file description (syncfs: per super block, since 5.8), so the
// sync that meets the error of a caller's file may be another caller's, and the next sync on
// the shared descriptor returns 0 although that data never reached the disk. A caller
// therefore takes mark() before it writes (or renames) and passes it to sync(): any sync that
// was running at the mark or started after it and failed, fails this caller too.
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

    // The first sync that can see writes made from now on: the one running, else the next.
    std::uint64_t mark() const;
    // 0 when an fsync that started after this call succeeded and no fsync since `since` (a
    // mark() taken before this caller's writes) failed; else the errno.
    int sync(std::uint64_t since);
    int sync() { return sync(mark()); }

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
    std::uint64_t syncs_ = 0;          // syncs started (the running one included); its index = syncs_ - 1
    std::uint64_t last_failed_ = 0;    // index + 1 of the latest failed sync; 0: none yet
    int last_failed_err_ = 0;
    std::deque<failed_batch> failures_;  // failed batches not yet read by all their callers
};

}  // namespace postern::queue
