// tests/unit/queue/spool_test_util.hpp - what the spool tests share: a sample envelope, a
// one-byte commit, sample recipient states, the spool's fsync hook set for one scope, and a fixture with a spool open
// in a temporary directory.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "queue/spool.hpp"
#include "../test_util.hpp"

namespace postern::test {

inline queue::envelope sample(const std::string& id) {
    queue::envelope e;
    e.id = id;
    e.arrived = 1732800000;
    e.sender = "alice@example.test";
    e.recipients = {"bob@localhost", "\"carol x\"@localhost"};
    e.eight_bit = true;
    e.smtputf8 = false;
    e.client_ip = "127.0.0.1";
    e.helo = "client.test";
    e.tls = "TLSv1.3 TLS_AES_256_GCM_SHA384";
    return e;
}

// Commits a one-byte message to `where`; returns its id.
inline std::string commit_one(queue::spool& sp, queue::area where) {
    auto e = sample(sp.new_id());
    e.size = 1;
    EXPECT_FALSE(sp.commit(e, {"x"}, where));
    return e.id;
}

// Two recipients' states: bob sent at the first attempt, carol deferred after one.
inline std::vector<queue::rcpt_state> bob_sent_carol_deferred() {
    std::vector<queue::rcpt_state> st(2);
    st[0].status = queue::rcpt_status::sent;
    st[0].attempts = 1;
    st[0].last_reply = "250 2.0.0 ok";
    st[1].status = queue::rcpt_status::deferred;
    st[1].attempts = 1;
    st[1].next_attempt = 1732800600;
    return st;
}

// queue::spool::set_fsync_fault(hook) until the end of the scope, even when an assertion fails.
struct fsync_hook {
    explicit fsync_hook(std::function<int(const std::string&)> hook) {
        queue::spool::set_fsync_fault(std::move(hook));
    }
    ~fsync_hook() { queue::spool::set_fsync_fault(nullptr); }
    fsync_hook(const fsync_hook&) = delete;
    fsync_hook& operator=(const fsync_hook&) = delete;
};

// A spool open in `d.path` (its directory) as `sp`.
struct spool_fixture : ::testing::Test {
    temp_dir d;
    std::unique_ptr<queue::spool> sp;
    void SetUp() override {
        auto s = queue::spool::open(d.path);
        ASSERT_TRUE(s.ok()) << s.error_message();
        sp = std::move(*s);
    }
};

}  // namespace postern::test
