// tests/unit/queue/committer_test.cpp - batch commits: spool::commit_batch (one content sync and
// one directory fsync per area for a whole batch; per-message outcomes) and queue::committer
// (every submitted message is committed and called back once; batches form under load; the
// destructor finishes what was submitted).
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "queue/committer.hpp"
#include "queue/spool.hpp"
#include "../test_util.hpp"

using namespace postern;

namespace {

queue::envelope one_byte_message(queue::spool& sp) {
    queue::envelope e;
    e.id = sp.new_id();
    e.arrived = 1732800000;
    e.sender = "alice@example.test";
    e.recipients = {"bob@localhost"};
    e.size = 1;
    return e;
}

// `n` one-byte messages with fresh ids.
std::vector<queue::envelope> messages(queue::spool& sp, int n) {
    std::vector<queue::envelope> envs;
    for (int i = 0; i < n; ++i) envs.push_back(one_byte_message(sp));
    return envs;
}

std::vector<queue::commit_item> items_for(const std::vector<queue::envelope>& envs, queue::area where) {
    std::vector<queue::commit_item> items;
    for (const auto& e : envs) items.push_back({&e, {"x"}, where, std::nullopt});
    return items;
}

// A fresh spool (default durability: syncfs) in a temporary directory; the fault hook is
// cleared after each test.
class batch : public ::testing::Test {
protected:
    void SetUp() override {
        auto r = queue::spool::open(d.path);
        ASSERT_TRUE(r.ok()) << r.error_message();
        sp = std::move(*r);
    }
    void TearDown() override { queue::spool::set_fsync_fault(nullptr); }
    test::temp_dir d;
    std::unique_ptr<queue::spool> sp;
};

}  // namespace

TEST_F(batch, commit_batch_one_content_sync_and_one_directory_sync_per_area) {
    auto envs = messages(*sp, 6);
    auto items = items_for(envs, queue::area::active);
    items[4].where = items[5].where = queue::area::hold;
    sp->commit_batch(items);
    for (const auto& it : items) EXPECT_FALSE(it.failure) << it.failure->message;
    EXPECT_EQ(sp->content_syncs(), 1u);
    EXPECT_EQ(sp->directory_syncs(), 2u);  // queue/ and hold/
    EXPECT_EQ(sp->list(queue::area::active).size(), 4u);
    EXPECT_EQ(sp->list(queue::area::hold).size(), 2u);
    auto m = sp->load(envs[0].id, queue::area::active);
    ASSERT_TRUE(m.ok()) << m.error_message();
    EXPECT_EQ(m->content(), "x");
    EXPECT_TRUE(std::filesystem::is_empty(d.path + "/tmp"));
}

TEST_F(batch, commit_batch_failed_content_sync_fails_every_message_and_leaves_nothing) {
    queue::spool::set_fsync_fault([](const std::string& p) { return p.ends_with("/queue") ? 0 : ENOSPC; });
    auto envs = messages(*sp, 3);
    auto items = items_for(envs, queue::area::active);
    sp->commit_batch(items);  // every content sync fails
    for (const auto& it : items) {
        ASSERT_TRUE(it.failure);
        EXPECT_EQ(it.failure->errnum, ENOSPC);
        EXPECT_TRUE(it.failure->message.starts_with("syncfs ")) << it.failure->message;
    }
    EXPECT_EQ(sp->directory_syncs(), 0u) << "renamed into queue/ before the content was synced";
    EXPECT_TRUE(sp->list(queue::area::active).empty());
    EXPECT_TRUE(std::filesystem::is_empty(d.path + "/tmp"));
}

TEST_F(batch, commit_batch_failed_directory_fsync_fails_only_that_area) {
    queue::spool::set_fsync_fault([](const std::string& p) { return p.ends_with("/hold") ? EIO : 0; });
    auto envs = messages(*sp, 4);
    auto items = items_for(envs, queue::area::active);
    items[2].where = items[3].where = queue::area::hold;
    sp->commit_batch(items);
    EXPECT_FALSE(items[0].failure);
    EXPECT_FALSE(items[1].failure);
    ASSERT_TRUE(items[2].failure && items[3].failure);
    EXPECT_EQ(items[2].failure->errnum, EIO);
    EXPECT_TRUE(items[2].failure->message.starts_with("fsync ")) << items[2].failure->message;
    EXPECT_EQ(sp->list(queue::area::active).size(), 2u);
    EXPECT_TRUE(sp->list(queue::area::hold).empty()) << "an unacknowledged message was left in hold/";
}

TEST_F(batch, commit_batch_an_invalid_message_fails_alone) {
    std::vector<queue::envelope> envs{one_byte_message(*sp), one_byte_message(*sp)};
    envs[0].id = "../escape";
    auto items = items_for(envs, queue::area::active);
    sp->commit_batch(items);
    ASSERT_TRUE(items[0].failure);
    EXPECT_EQ(items[0].failure->errnum, EINVAL);
    EXPECT_FALSE(items[1].failure);
    EXPECT_EQ(sp->list(queue::area::active), std::vector<std::string>{envs[1].id});
}

TEST_F(batch, committer_commits_every_message_once_in_batches) {
    // The first sync waits (up to 2 s) until every message is submitted: what arrives while a
    // batch is being committed must form the next batch, not one batch each.
    constexpr int n = 40;
    std::atomic<int> submitted{0};
    queue::spool::set_fsync_fault([&](const std::string&) {
        for (int i = 0; i < 2000 && submitted.load() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return 0;
    });
    auto envs = messages(*sp, n);
    std::vector<std::promise<std::optional<queue::spool_failure>>> results(n);
    std::atomic<int> calls{0};
    {
        queue::committer c(*sp);
        std::vector<std::thread> th;
        for (int t = 0; t < 4; ++t)
            th.emplace_back([&, t] {
                for (int i = t; i < n; i += 4) {
                    c.submit(envs[i], {"x"}, queue::area::active, [&, i](std::optional<queue::spool_failure> f) {
                        ++calls;
                        results[i].set_value(std::move(f));
                    });
                    ++submitted;
                }
            });
        for (auto& t : th) t.join();
        for (auto& r : results) {
            auto f = r.get_future().get();
            EXPECT_FALSE(f) << f->message;
        }
        EXPECT_LE(c.batches(), 3u);  // the first message alone at most, then the rest together
    }
    EXPECT_EQ(calls.load(), n);
    EXPECT_EQ(sp->list(queue::area::active).size(), static_cast<std::size_t>(n));
    EXPECT_LE(sp->content_syncs(), 3u);
}

TEST_F(batch, committer_destructor_finishes_what_was_submitted) {
    auto envs = messages(*sp, 10);
    std::atomic<int> ok{0};
    {
        queue::committer c(*sp);
        for (auto& e : envs)
            c.submit(e, {"x"}, queue::area::hold, [&](std::optional<queue::spool_failure> f) { ok += !f; });
    }
    EXPECT_EQ(ok.load(), 10);
    EXPECT_EQ(sp->list(queue::area::hold).size(), 10u);
}

TEST_F(batch, committer_reports_each_failure_to_its_own_caller) {
    queue::spool::set_fsync_fault([](const std::string&) { return EIO; });
    auto e = one_byte_message(*sp);
    std::promise<std::optional<queue::spool_failure>> r;
    {
        queue::committer c(*sp);
        c.submit(e, {"x"}, queue::area::active, [&](std::optional<queue::spool_failure> f) { r.set_value(std::move(f)); });
        auto f = r.get_future().get();
        ASSERT_TRUE(f);
        EXPECT_EQ(f->errnum, EIO);
    }
    EXPECT_TRUE(sp->list(queue::area::active).empty());
}
