// tests/unit/net/queue_runner_park_test.cpp - runtime::queue_runner's parking: a destination
// whose delivery slots are all taken (here a silent peer holding its 20 connections) keeps at
// most a tenth of the message slots waiting for them; the passes beyond that give their slot
// back and wait, unloaded, for the destination. Found by review: before, 1,000 due messages
// for one dead or slow destination took every message slot and held every other
// destination's mail, local maildir included, until they drained.
//   - local mail is delivered while the remote destination is saturated;
//   - every parked message is attempted once, in turn, as the destination's transactions end;
//   - a message with a local and a remote recipient is delivered locally at once, recorded,
//     and parked for the remote one (not delivered locally again later);
//   - a parked message deleted is not attempted; a `queue retry` of one starts it at once;
//   - a `queue retry` pass parked before any attempt stores its recipients due now (a restart
//     attempts them at once);
//   - a `queue retry` pass parked after it attempted another destination is not forced any
//     more when it starts again (that destination is not attempted twice), and the recipients
//     it took for the parked destination are attempted then;
//   - the other recipients of a parked message are retried on their own schedule;
//   - nothing parks while at least half the message slots are free;
//   - a message parked on two destinations starts with the first that has room.
// The event loop is run by the test thread. Asio first (see dns_resolver_test.cpp).
#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "queue/spool.hpp"
#include "runtime/queue_runner.hpp"
#include "queue_runner_test_util.hpp"

using namespace postern;
using namespace std::chrono_literals;
using test::pass_fixture;
using test::silent_peer;

namespace {

// 30 message slots: 20 transactions with the silent peer, 3 (a tenth) waiting for one of them.
constexpr std::size_t slots = 30;
constexpr std::size_t per_destination = 20;
constexpr std::size_t waiting = slots / 10;

struct park_fixture : pass_fixture {
    std::size_t closed = 0;  // connections the test ended (each a deferred attempt)

    // Fills remote.test: `n` messages, each attempted once (retry after an hour).
    std::vector<std::string> saturate(std::size_t n, const std::string& more = {}, const std::string& retry = "1h") {
        start(slots, retry, more);
        std::vector<std::string> ids;
        for (std::size_t i = 0; i < n; ++i) ids.push_back(commit({"carol@remote.test"}).env.id);
        runner->recover();
        EXPECT_TRUE(run_until([&] { return peer.accept_pending() >= per_destination; }));
        EXPECT_TRUE(run_until([&] { return runner->passes_parked() == n - per_destination - waiting; }))
            << "parked: " << runner->passes_parked();
        run_for(200ms);
        return ids;
    }
    static std::int64_t unix_now() {
        return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
    // Records `n` recipients of `id` as attempted once and deferred for an hour.
    bool deferred_for_an_hour(const std::string& id, std::size_t n) {
        std::vector<queue::rcpt_state> st(n);
        for (auto& r : st) {
            r.status = queue::rcpt_status::deferred;
            r.attempts = 1;
            r.next_attempt = unix_now() + 3600;
        }
        return !spool->write_state(id, st, {});
    }
    // Ends the peer's connections one at a time until `total` were made, or nothing new comes.
    void drain(std::size_t total) {
        while (closed < total) {
            if (!run_until([&] { return peer.accept_pending() > 0; }, 3s)) return;
            peer.close_one();
            ++closed;
        }
    }
};

TEST_F(park_fixture, local_mail_is_delivered_while_a_destination_is_saturated) {
    saturate(slots);
    EXPECT_EQ(peer.accept_pending(), per_destination);
    EXPECT_EQ(runner->passes_under_way(), per_destination + waiting);
    EXPECT_EQ(runner->passes_parked(), slots - per_destination - waiting);
    EXPECT_EQ(runner->passes_waiting(), 0u);

    runner->submit(commit({"bob@localhost"}).env.id);
    ASSERT_TRUE(run_until([&] { return delivered() == 1; }, 3s))
        << "local mail waited behind the saturated destination (" << runner->passes_waiting()
        << " passes waiting for a message slot)";
}

TEST_F(park_fixture, every_parked_message_is_attempted_once_in_turn) {
    const auto ids = saturate(slots + 10);
    drain(ids.size());
    EXPECT_EQ(closed, ids.size()) << "parked messages left unattempted: " << runner->passes_parked();
    run_for(300ms);
    EXPECT_EQ(peer.accept_pending(), 0u) << "a message was attempted twice";
    ASSERT_TRUE(run_until([&] { return runner->passes_under_way() == 0; }, 3s));
    EXPECT_EQ(runner->passes_parked(), 0u);
    for (const auto& id : ids) {
        auto st = spool->read_state(id, 1);
        ASSERT_TRUE(st) << id << ": " << st.error_message();
        EXPECT_EQ((*st)[0].status, queue::rcpt_status::deferred) << id;
        EXPECT_EQ((*st)[0].attempts, 1u) << id;
    }
}

TEST_F(park_fixture, local_recipient_of_a_parked_message_is_delivered_once) {
    saturate(slots);
    const std::string id = commit({"bob@localhost", "carol@remote.test"}).env.id;
    runner->submit(id);
    ASSERT_TRUE(run_until([&] { return delivered() == 1; }, 3s)) << "the local recipient waited";
    ASSERT_TRUE(run_until([&] { return runner->passes_parked() == slots - per_destination - waiting + 1; }, 3s))
        << "the message was not parked for its remote recipient";
    auto st = spool->read_state(id, 2);
    ASSERT_TRUE(st) << st.error_message();
    EXPECT_EQ((*st)[0].status, queue::rcpt_status::sent);
    EXPECT_EQ((*st)[1].status, queue::rcpt_status::queued);
    EXPECT_EQ((*st)[1].attempts, 0u);

    drain(slots + 1);
    EXPECT_EQ(closed, slots + 1) << "the parked message's remote recipient was not attempted";
    ASSERT_TRUE(run_until([&] { return runner->passes_under_way() == 0; }, 3s));
    EXPECT_EQ(delivered(), 1u) << "the local recipient was delivered again";
    st = spool->read_state(id, 2);
    ASSERT_TRUE(st) << st.error_message();
    EXPECT_EQ((*st)[0].status, queue::rcpt_status::sent);
    EXPECT_EQ((*st)[1].status, queue::rcpt_status::deferred);
    EXPECT_EQ((*st)[1].attempts, 1u);
}

TEST_F(park_fixture, parked_message_deleted_is_not_attempted_and_one_retried_starts_at_once) {
    saturate(per_destination + waiting);  // nothing parked yet: the next two are
    const std::string gone = commit({"carol@remote.test"}).env.id;
    const std::string retried = commit({"carol@remote.test"}).env.id;
    runner->submit(gone);
    runner->submit(retried);
    ASSERT_TRUE(run_until([&] { return runner->passes_parked() == 2; }, 3s));
    ASSERT_TRUE(runner->remove(gone));
    EXPECT_EQ(runner->passes_parked(), 1u);
    ASSERT_TRUE(runner->retry(retried, false));
    EXPECT_EQ(runner->passes_parked(), 0u) << "a retried message stayed parked";
    drain(per_destination + waiting + 1);
    EXPECT_EQ(closed, per_destination + waiting + 1) << "the deleted message was attempted, or one was left";
    run_for(300ms);
    EXPECT_EQ(peer.accept_pending(), 0u);
    auto st = spool->read_state(retried, 1);
    ASSERT_TRUE(st) << st.error_message();
    EXPECT_EQ((*st)[0].attempts, 1u);
}

// Found by review: a forced pass parked at its end stayed forced, so when it started again it
// attempted dave (deferred for an hour, just attempted by the forced pass) once more.
TEST_F(park_fixture, a_retried_message_parked_after_another_destination_does_not_attempt_it_twice) {
    silent_peer other;
    saturate(per_destination + waiting, "[[route]]\ndomain = \"other.test\"\nhosts = [\"127.0.0.1:" +
                                            std::to_string(other.port) + "\"]\n");
    const std::string id = commit({"carol@remote.test", "dave@other.test"}).env.id;
    // Both deferred for an hour: the retry takes both; carol's destination is full.
    ASSERT_TRUE(deferred_for_an_hour(id, 2));
    ASSERT_TRUE(runner->retry(id, false));  // forced: dave too, though not due
    ASSERT_TRUE(run_until([&] { return other.accept_pending() == 1; }, 3s)) << "dave not attempted by the retry";
    other.close_one();  // dave deferred again; carol's destination is full: parked
    ASSERT_TRUE(run_until([&] { return runner->passes_parked() == 1; }, 3s));

    drain(per_destination + waiting + 1);
    EXPECT_EQ(closed, per_destination + waiting + 1) << "carol, taken by the retry, was not attempted";
    ASSERT_TRUE(run_until([&] { return runner->passes_under_way() == 0; }, 3s));
    run_for(200ms);
    EXPECT_EQ(other.accept_pending(), 0u) << "dave was attempted again when the parked pass started";
    auto after = spool->read_state(id, 2);
    ASSERT_TRUE(after) << after.error_message();
    EXPECT_EQ((*after)[0].attempts, 2u);
    EXPECT_EQ((*after)[1].attempts, 2u);
}

// A `queue retry` pass parked before it attempted anything used to be forced in memory only:
// after a restart its recipient waited for its old retry time (an hour here) again. The
// recipients it took are now stored due, so the state a restart reads says "due now"; and the
// parked pass, started again, attempts carol once.
TEST_F(park_fixture, a_retried_message_parked_before_any_attempt_is_stored_due) {
    saturate(per_destination + waiting);  // nothing parked yet: the retried message will be
    const std::string id = commit({"carol@remote.test"}).env.id;
    ASSERT_TRUE(deferred_for_an_hour(id, 1));
    const auto asked = unix_now();
    ASSERT_TRUE(runner->retry(id, false));  // forced: carol, though not due; her destination is full
    ASSERT_TRUE(run_until([&] { return runner->passes_parked() == 1; }, 3s));
    ASSERT_TRUE(run_until([&] {
        auto now_st = spool->read_state(id, 1);
        return now_st && (*now_st)[0].next_attempt <= asked + 1;
    }, 3s)) << "the retry is not stored: a restart would wait for the old retry time";
    auto stored = spool->read_state(id, 1);
    ASSERT_TRUE(stored) << stored.error_message();
    EXPECT_EQ((*stored)[0].status, queue::rcpt_status::deferred);
    EXPECT_EQ((*stored)[0].attempts, 1u) << "counted as an attempt, though nothing was attempted";

    drain(per_destination + waiting + 1);
    EXPECT_EQ(closed, per_destination + waiting + 1) << "carol, taken by the retry, was not attempted";
    ASSERT_TRUE(run_until([&] { return runner->passes_under_way() == 0; }, 3s));
    run_for(200ms);
    EXPECT_EQ(peer.accept_pending(), 0u) << "carol was attempted twice";
    auto after = spool->read_state(id, 1);
    ASSERT_TRUE(after) << after.error_message();
    EXPECT_EQ((*after)[0].attempts, 2u);
}

// Found by review: a parked message waited only for its destination, so its other recipients'
// retries (dave, deferred for a second here, greylisted in real life) waited until the
// saturated destination had drained, and their expiry with them.
TEST_F(park_fixture, other_recipients_of_a_parked_message_are_retried_on_time) {
    silent_peer other;
    saturate(per_destination + waiting, "[[route]]\ndomain = \"other.test\"\nhosts = [\"127.0.0.1:" +
                                            std::to_string(other.port) + "\"]\n", "1s");
    const std::string id = commit({"carol@remote.test", "dave@other.test"}).env.id;
    runner->submit(id);
    ASSERT_TRUE(run_until([&] { return other.accept_pending() == 1; }, 3s)) << "dave not attempted";
    other.close_one();  // dave deferred (a second); carol parked
    ASSERT_TRUE(run_until([&] { return runner->passes_parked() == 1; }, 3s));
    ASSERT_TRUE(run_until([&] { return other.accept_pending() == 1; }, 4s))
        << "dave was not retried while carol's destination stayed full";
    EXPECT_EQ(peer.accept_pending(), per_destination) << "the saturating transactions ended: the test shows nothing";
}

// While at least half the message slots are free nothing parks: a burst for one relay host
// waits in memory (parking it would only read those messages again later).
TEST_F(park_fixture, nothing_parks_while_message_slots_are_plentiful) {
    start(100, "1h");  // parks beyond 10 waiting, but only with 50 passes under way
    for (int i = 0; i < 40; ++i) commit({"carol@remote.test"});
    runner->recover();
    ASSERT_TRUE(run_until([&] { return peer.accept_pending() >= per_destination; }));
    run_for(300ms);
    EXPECT_EQ(runner->passes_parked(), 0u);
    EXPECT_EQ(runner->passes_under_way(), 40u);
}

// Found by review: a message parked on two destinations waited for the first one only, so a
// recipient whose destination drained waited for the other's (still full).
TEST_F(park_fixture, a_message_parked_on_two_destinations_goes_to_the_first_with_room) {
    silent_peer other;
    start(60, "1h", "[[route]]\ndomain = \"other.test\"\nhosts = [\"127.0.0.1:" + std::to_string(other.port) + "\"]\n");
    const std::size_t each = per_destination + 6;  // 20 transactions and a tenth of 60 waiting
    for (std::size_t i = 0; i < each; ++i) commit({"carol@remote.test"});
    for (std::size_t i = 0; i < each; ++i) commit({"dave@other.test"});
    runner->recover();
    ASSERT_TRUE(run_until([&] {
        return peer.accept_pending() >= per_destination && other.accept_pending() >= per_destination;
    }));
    run_for(200ms);
    ASSERT_EQ(runner->passes_parked(), 0u);
    const std::string id = commit({"carol@remote.test", "dave@other.test"}).env.id;
    runner->submit(id);
    ASSERT_TRUE(run_until([&] { return runner->passes_parked() == 1; }, 3s));

    // The destination of the later group (groups go in the order of their keys, which name
    // the host and port) drains; the other stays full. Parked on its first group only, the
    // message would wait for the full one.
    const bool other_later = "127.0.0.1:" + std::to_string(other.port) > "127.0.0.1:" + std::to_string(peer.port);
    silent_peer& drains = other_later ? other : peer;
    silent_peer& full = other_later ? peer : other;
    const std::size_t drained = other_later ? 1 : 0, stayed = 1 - drained;  // recipient index
    std::size_t closed_there = 0;
    while (closed_there < each + 1 && run_until([&] { return drains.accept_pending() > 0; }, 3s)) {
        drains.close_one();
        ++closed_there;
    }
    EXPECT_EQ(closed_there, each + 1) << "not attempted while its other destination stayed full";
    EXPECT_EQ(full.accept_pending(), per_destination);
    ASSERT_TRUE(run_until([&] {
        auto st = spool->read_state(id, 2);
        return st && (*st)[drained].attempts == 1;
    }, 3s)) << "the attempt was not recorded";
    auto st = spool->read_state(id, 2);
    ASSERT_TRUE(st) << st.error_message();
    EXPECT_EQ((*st)[stayed].attempts, 0u) << "attempted at the destination that never had room";
}

}  // namespace
