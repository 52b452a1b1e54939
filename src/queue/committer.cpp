// queue/committer.cpp - batch commits on one thread (see committer.hpp).
#include "queue/committer.hpp"

#include <pthread.h>

namespace postern::queue {

committer::committer(spool& sp) : spool_(sp), thread_([this] { run(); }) {}

committer::~committer() {
    {
        std::lock_guard lock(m_);
        stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
}

void committer::submit(const envelope& env, std::vector<std::string_view> parts, area where, done_fn done) {
    {
        std::lock_guard lock(m_);
        pending_.push_back(commit_item{&env, std::move(parts), where, std::nullopt});
        pending_done_.push_back(std::move(done));
    }
    cv_.notify_one();
}

std::uint64_t committer::batches() const {
    std::lock_guard lock(m_);
    return batches_;
}

void committer::run() {
    ::pthread_setname_np(::pthread_self(), "committer");  // for top -H, perf --per-thread
    std::vector<commit_item> batch;
    std::vector<done_fn> done;
    for (;;) {
        {
            std::unique_lock lock(m_);
            cv_.wait(lock, [this] { return stop_ || !pending_.empty(); });
            if (pending_.empty()) return;  // stopping, and nothing left to commit
            batch.swap(pending_);
            done.swap(pending_done_);
        }
        spool_.commit_batch(batch);
        for (std::size_t i = 0; i < batch.size(); ++i) done[i](std::move(batch[i].failure));
        batch.clear();
        done.clear();
        std::lock_guard lock(m_);
        ++batches_;
    }
}

}  // namespace postern::queue
