// queue/group_sync.cpp - one directory fsync for many committers (see group_sync.hpp).
#include "queue/group_sync.hpp"

namespace postern::queue {

std::uint64_t group_sync::mark() const {
    std::lock_guard lock(m_);
    return running_ ? syncs_ - 1 : syncs_;
}

int group_sync::sync(std::uint64_t since) {
    std::unique_lock lock(m_);
    const std::uint64_t ticket = ++issued_;  // needs an fsync that starts after this point
    for (;;) {
        if (completed_ >= ticket) {
            for (auto it = failures_.begin(); it != failures_.end(); ++it)
                if (ticket > it->from && ticket <= it->to) {
                    const int err = it->err;
                    if (--it->unread == 0) failures_.erase(it);
                    return err;
                }
            // Ours succeeded; one that ran while this caller wrote may have taken its error.
            if (last_failed_ > since) return last_failed_err_;
            return 0;
        }
        if (!running_) {
            // Start a batch: it covers every ticket issued so far (their renames are done).
            running_ = true;
            const std::uint64_t from = completed_, to = issued_;
            const std::uint64_t index = syncs_++;
            lock.unlock();
            const int err = do_sync_();
            lock.lock();
            running_ = false;
            completed_ = to;
            if (err != 0) {
                failures_.push_back({from, to, err, to - from});
                last_failed_ = index + 1;
                last_failed_err_ = err;
            }
            cv_.notify_all();
            continue;
        }
        cv_.wait(lock);  // the running fsync may have started before our rename: wait for the next
    }
}

std::uint64_t group_sync::syncs_run() const {
    std::lock_guard lock(m_);
    return syncs_;
}

}  // namespace postern::queue
