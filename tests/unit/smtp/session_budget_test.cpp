// tests/unit/smtp/session_budget_test.cpp - the memory shared by all sessions for message
// content being received (smtp::content_budget, server.max_buffered_size): many clients
// sending large or endless bodies at once cannot make the server hold N x max_message_size.
// Past content_budget::free_per_message a body needs room in the shared budget, else the
// message gets 452 4.3.1 at its end (RFC 5321 4.2.2, RFC 3463 4.3.1); smaller messages
// always fit; every octet taken is given back when the message ends, however it ends.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "session_driver.hpp"

namespace postern::smtp::test {
namespace {

constexpr std::uint64_t mib = 1 << 20;
const std::string no_storage = "452 4.3.1 Error: insufficient system storage, try again later\r\n";

server_settings budget_settings(const std::shared_ptr<content_budget>& b) {
    auto st = test_settings();
    st.max_message_size = 64 * mib;
    st.budget = b;
    return st;
}

// `n` octets of DATA content in 100-octet lines (dot-free).
std::string lines(std::uint64_t n) {
    std::string line(98, 'x');
    line += "\r\n";
    std::string out;
    out.reserve(n);
    while (out.size() + line.size() <= n) out += line;
    return out;
}

TEST(SmtpSessionBudget, GrowthPastTheFreeShareNeedsRoom) {
    content_budget b(3 * mib);
    EXPECT_TRUE(b.grow(0, mib));  // within the free share: always
    EXPECT_TRUE(b.grow(mib, 3 * mib));
    EXPECT_EQ(b.used(), 3 * mib);
    EXPECT_FALSE(b.grow(3 * mib, 3 * mib + 1));  // past the limit
    EXPECT_EQ(b.used(), 3 * mib);                // nothing taken
    EXPECT_TRUE(b.grow(0, mib));                 // small messages still fit, over the limit
    EXPECT_EQ(b.used(), 4 * mib);
    EXPECT_FALSE(b.grow(mib, mib + 1));  // but cannot grow past the free share
    EXPECT_TRUE(b.grow(5, 5));           // no growth
    b.release(4 * mib);
    EXPECT_EQ(b.used(), 0u);
    b.release(10);  // never below zero
    EXPECT_EQ(b.used(), 0u);
    b.set_limit(10 * mib);
    EXPECT_EQ(b.limit(), 10 * mib);
}

// Session threads (server.threads) share one budget: what they take past the free share never
// passes the limit at any moment, and everything taken is given back.
TEST(SmtpSessionBudget, ThreadsSharingTheBudgetNeverPassTheLimit) {
    content_budget b(8 * mib);
    std::atomic<std::uint64_t> big_held{0}, worst{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 2000; ++i) {
                // Grow past the free share (3 MiB each); only grows that fit are taken.
                if (!b.grow(0, 3 * mib)) continue;
                const auto now = big_held.fetch_add(3 * mib) + 3 * mib;
                for (auto w = worst.load(); now > w && !worst.compare_exchange_weak(w, now);) {
                }
                big_held.fetch_sub(3 * mib);
                b.release(3 * mib);
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_LE(worst.load(), 8 * mib);  // at most two 3 MiB messages at once
    EXPECT_EQ(b.used(), 0u);
}

// After a refused message, the session's next one of `size` octets is stored whole (the
// session's first stored message).
void expect_next_message_stored(driver& d, std::uint64_t size) {
    d.feed("MAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
    const std::string content = lines(size);
    EXPECT_EQ(d.feed(content + ".\r\n"), "250 2.0.0 Ok: queued as 4F2A\r\n");
    ASSERT_EQ(d.messages.size(), 1u);
    EXPECT_EQ(d.messages[0].body, content);
}

TEST(SmtpSessionBudget, MessageThatDoesNotFitGets452AndSessionGoesOn) {
    auto b = std::make_shared<content_budget>(2 * mib);
    driver hog(budget_settings(b));  // another session holding most of the budget
    hog.envelope();
    hog.feed("DATA\r\n" + lines(mib + mib / 2));
    EXPECT_GE(b->used(), mib + mib / 3);

    driver d(budget_settings(b));
    d.envelope();
    d.feed("DATA\r\n");
    EXPECT_EQ(d.feed(lines(mib)), "");               // the free share: fits whatever the total
    EXPECT_EQ(d.feed(lines(mib)), "");               // past it: no room; read on, stored no more
    EXPECT_LT(b->used(), 2 * mib);                   // d gave back what it had taken
    EXPECT_EQ(d.feed(".\r\n"), no_storage);          // at the end of data, temporary failure
    EXPECT_TRUE(d.messages.empty());
    EXPECT_EQ(d.s.error_count(), 0u);                // our shortage, not the client's error
    EXPECT_EQ(d.feed("RCPT TO:<bob@example.test>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
    // The hog's message ends: its share comes back, and d's next message fits.
    hog.feed(".\r\n");
    ASSERT_EQ(hog.messages.size(), 1u);
    EXPECT_EQ(b->used(), 0u);
    expect_next_message_stored(d, 2 * mib - 1000);
    EXPECT_EQ(b->used(), 0u);  // released at message_done
}

// The budget counts the memory a body holds, not only its content: a string that doubles holds
// up to twice its size (before: 20 sessions of endless DATA at 650 MiB for a 512 MiB budget).
TEST(SmtpSessionBudget, TheBudgetCountsTheMemoryABodyHolds) {
    auto b = std::make_shared<content_budget>(64 * mib);
    driver d(budget_settings(b));
    d.envelope();
    d.feed("DATA\r\n");
    const std::string chunk = lines(4096);
    for (int i = 0; i < 800; ++i) {  // about 3 MiB in reads of 4 KB
        d.feed(chunk);
        ASSERT_GE(b->used(), d.s.body().capacity()) << "after read " << i;
    }
    EXPECT_EQ(d.feed(".\r\n"), "250 2.0.0 Ok: queued as 4F2A\r\n");
    EXPECT_EQ(b->used(), 0u);
}

// ... so a growing body never holds more memory than the budget, even for a moment before the
// charge; the message that does not fit is refused at its end, and a later one fits again.
TEST(SmtpSessionBudget, ABodyNeverHoldsMoreThanTheBudget) {
    auto b = std::make_shared<content_budget>(3 * mib);
    driver d(budget_settings(b));
    d.envelope();
    d.feed("DATA\r\n");
    const std::string chunk = lines(64 * 1024);
    std::size_t most = 0;
    for (int i = 0; i < 128; ++i) {  // 8 MiB in reads of 64 KB
        d.feed(chunk);
        most = std::max(most, d.s.body().capacity());
        ASSERT_LE(b->used(), 3 * mib) << "after read " << i;
    }
    EXPECT_LE(most, 3 * mib);
    EXPECT_GT(most, 2 * mib);  // it did grow to the budget: tighter than doubling where needed
    EXPECT_EQ(d.feed(".\r\n"), no_storage);
    EXPECT_EQ(b->used(), 0u);
    expect_next_message_stored(d, 3 * mib - 1000);
}

TEST(SmtpSessionBudget, SmallMessagesAlwaysFit) {
    auto b = std::make_shared<content_budget>(mib);
    driver hog(budget_settings(b));
    hog.envelope();
    hog.feed("DATA\r\n" + lines(mib - 200));
    for (int i = 0; i < 3; ++i) {  // the total goes over the limit: small ones still pass
        driver d(budget_settings(b));
        d.envelope();
        EXPECT_EQ(d.feed("DATA\r\n" + lines(500 * 1024) + ".\r\n"),
                  "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 4F2A\r\n");
    }
    EXPECT_EQ(b->used(), mib - 200 - (mib - 200) % 100);
}

TEST(SmtpSessionBudget, EveryEndGivesTheShareBack) {
    auto b = std::make_shared<content_budget>(8 * mib);
    {
        driver d(budget_settings(b));  // client vanishes mid-DATA: the session is destroyed
        d.envelope();
        d.feed("DATA\r\n" + lines(2 * mib));
        EXPECT_GT(b->used(), mib);
        d.eof();
    }
    EXPECT_EQ(b->used(), 0u);
    {
        driver d(budget_settings(b));  // a message stored, then RSET in the middle of BDAT
        d.envelope();
        d.feed("DATA\r\n" + lines(mib + 100) + ".\r\n");
        EXPECT_EQ(b->used(), 0u);
        d.feed("MAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@example.test>\r\n");
        d.feed("BDAT 2000000\r\n" + std::string(2000000, 'z'));
        EXPECT_GE(b->used(), 2000000u);
        EXPECT_EQ(d.feed("RSET\r\n"), "250 2.0.0 Ok\r\n");
        EXPECT_EQ(b->used(), 0u);
    }
    {
        driver d(budget_settings(b));  // a timeout mid-BDAT
        d.envelope();
        d.feed("BDAT 3000000 LAST\r\n" + std::string(1500000, 'z'));
        EXPECT_GT(b->used(), mib);
        d.s.timeout();
        d.run();
    }
    EXPECT_EQ(b->used(), 0u);
}

TEST(SmtpSessionBudget, BdatChunkThatDoesNotFitGets452ThenLaterChunksToo) {
    auto b = std::make_shared<content_budget>(2 * mib);
    driver d(budget_settings(b));
    d.envelope();
    EXPECT_EQ(d.feed("BDAT 1500000\r\n" + std::string(1500000, 'a')), "250 2.0.0 1500000 octets received\r\n");
    // The next chunk passes the limit: 452 once it is read, and for every later chunk.
    EXPECT_EQ(d.feed("BDAT 1000000\r\n" + std::string(1000000, 'b')), no_storage);
    EXPECT_EQ(b->used(), 0u);
    EXPECT_EQ(d.feed("BDAT 10 LAST\r\n0123456789"), no_storage);
    EXPECT_TRUE(d.messages.empty());
    EXPECT_EQ(d.s.error_count(), 0u);
    // The transaction is over; a new one fits again.
    EXPECT_EQ(d.feed("MAIL FROM:<alice@sender.test>\r\n"), "250 2.1.0 Ok\r\n");
    d.feed("RCPT TO:<bob@example.test>\r\n");
    const std::string big = lines(1900000);  // BDAT content is text too: lines of at most 998
    EXPECT_EQ(d.feed("BDAT " + std::to_string(big.size()) + " LAST\r\n" + big), "250 2.0.0 Ok: queued as 4F2A\r\n");
    ASSERT_EQ(d.messages.size(), 1u);
    EXPECT_EQ(d.messages[0].body, big);
    EXPECT_EQ(b->used(), 0u);
}

TEST(SmtpSessionBudget, BdatLineEndingsRewrittenAreCharged) {
    // BDAT content is stored like DATA's: bare LF becomes CR LF, a copy up to twice the chunk's
    // size. The budget counts that copy too, as it counts DATA's growth.
    auto b = std::make_shared<content_budget>(64 * mib);
    driver d(budget_settings(b));
    std::uint64_t used_at_message = 0, held_at_message = 0;
    d.on_message = [&] {
        used_at_message = b->used();
        held_at_message = d.s.body().capacity();
    };
    d.envelope();
    const std::string bare(3 * mib, '\n');
    EXPECT_EQ(d.feed("BDAT " + std::to_string(bare.size()) + " LAST\r\n" + bare), "250 2.0.0 Ok: queued as 4F2A\r\n");
    ASSERT_EQ(d.messages.size(), 1u);
    EXPECT_EQ(d.messages[0].body.size(), 6 * mib);
    EXPECT_GE(held_at_message, 6 * mib);
    EXPECT_GE(used_at_message, held_at_message);
    EXPECT_EQ(b->used(), 0u);
}

TEST(SmtpSessionBudget, BdatRewriteThatDoesNotFitGets452) {
    // The chunk fits (3 MiB of 4), its rewritten copy does not: 452 4.3.1, not the client's
    // error, and the share given back.
    auto b = std::make_shared<content_budget>(4 * mib);
    driver d(budget_settings(b));
    d.envelope();
    const std::string bare(3 * mib, '\n');
    EXPECT_EQ(d.feed("BDAT " + std::to_string(bare.size()) + " LAST\r\n" + bare), no_storage);
    EXPECT_TRUE(d.messages.empty());
    EXPECT_EQ(d.s.error_count(), 0u);
    EXPECT_EQ(b->used(), 0u);
    // Content with CR LF only needs no copy and fits.
    d.feed("MAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@example.test>\r\n");
    const std::string text = lines(3 * mib);
    EXPECT_EQ(d.feed("BDAT " + std::to_string(text.size()) + " LAST\r\n" + text), "250 2.0.0 Ok: queued as 4F2A\r\n");
    EXPECT_EQ(b->used(), 0u);
}

TEST(SmtpSessionBudget, TooBigStaysPermanent) {
    // Over max_message_size and over the budget: the permanent 552 wins over the 452.
    auto b = std::make_shared<content_budget>(mib);
    auto st = budget_settings(b);
    st.max_message_size = 2 * mib;
    driver d(st);
    d.envelope();
    EXPECT_EQ(d.feed("DATA\r\n" + lines(3 * mib) + ".\r\n"),
              "354 End data with <CR><LF>.<CR><LF>\r\n552 5.3.4 Error: message too big\r\n");
    EXPECT_EQ(b->used(), 0u);
}

TEST(SmtpSessionBudget, WithoutABudgetNothingChanges) {
    auto st = test_settings();
    st.max_message_size = 64 * mib;
    driver d(st);
    d.envelope();
    EXPECT_EQ(d.feed("DATA\r\n" + lines(5 * mib) + ".\r\n"),
              "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 4F2A\r\n");
}

}  // namespace
}  // namespace postern::smtp::test
