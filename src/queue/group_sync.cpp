// queue/group_sync.cpp - one directory fsync for many committers (see group_sync.hpp).
#include "queue/group_sync.hpp"

namespace postern::queue {

int group_sync::sync() {
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
            return 0;
        }
        if (!running_) {
            // Start a batch: it covers every ticket issued so far (their renames are done).
            running_ = true;
            const std::uint64_t from = completed_, to = issued_;
            lock.unlock();
            const int err = do_sync_();
            lock.lock();
            running_ = false;
            ++syncs_;
            completed_ = to;
            if (err != 0) failures_.push_back({from, to, err, to - from});
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
