// tests/unit/smtp/session_output_bound_test.cpp - server_settings::max_pending_output: pipelined
// commands are answered at most that many octets of replies at a time (RFC 2920 3: the server
// may stop reading); the rest wait in the session, in order, until the driver has taken the
// output. Every command is still answered exactly once.
#include <gtest/gtest.h>

#include <string>

#include "session_driver.hpp"

namespace postern::smtp::test {
namespace {

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
    return n;
}

std::string repeated(const std::string& line, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += line;
    return s;
}

TEST(SmtpSessionOutputBound, PipelinedRepliesComeInBoundedBatches) {
    auto st = test_settings();
    st.max_pending_output = 1024;
    fake_policy policy;
    server_session s(st, policy);
    s.start();
    s.take_output();
    const int commands = 2000;
    s.feed(repeated("EHLO a\r\n", commands));  // about 200 octets of reply each
    std::string all;
    int batches = 0;
    for (; batches < commands + 1; ++batches) {
        ASSERT_EQ(s.next(), event::need_input);
        const bool full = s.output_full();
        const std::string batch = s.take_output();
        all += batch;
        // at most the bound plus the one reply that crossed it
        EXPECT_LT(batch.size(), 1024u + 512u) << "batch " << batches;
        if (!full) break;  // every command received is answered: now read
        EXPECT_GE(batch.size(), 1024u);
    }
    EXPECT_GT(batches, 10);
    EXPECT_EQ(count_of(all, "250 CHUNKING\r\n"), std::size_t(commands));
    EXPECT_EQ(s.buffered(), 0u);
    EXPECT_FALSE(s.output_full());
    // and the session goes on normally
    s.feed("NOOP\r\n");
    EXPECT_EQ(s.next(), event::need_input);
    EXPECT_EQ(s.take_output(), "250 2.0.0 Ok\r\n");
}

TEST(SmtpSessionOutputBound, WithoutABoundEverythingIsAnsweredAtOnce) {
    driver d;  // max_pending_output = 0
    const std::string out = d.feed(repeated("NOOP\r\n", 5000));
    EXPECT_EQ(count_of(out, "250 2.0.0 Ok\r\n"), 5000u);
    EXPECT_FALSE(d.s.output_full());
}

TEST(SmtpSessionOutputBound, ATransactionPipelinedAcrossBatchesIsIntact) {
    auto st = test_settings();
    st.max_pending_output = 64;  // smaller than two replies: one command per batch or so
    fake_policy policy;
    server_session s(st, policy);
    s.start();
    s.feed("EHLO c.test\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
           "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    std::string all;
    bool stored = false, closed = false;
    for (int i = 0; i < 100 && !closed; ++i) {
        switch (s.next()) {
            case event::need_input:
                ASSERT_TRUE(s.output_full()) << "stopped with commands left: " << all;
                all += s.take_output();
                break;
            case event::message:
                EXPECT_EQ(s.body(), "Subject: x\r\n\r\nbody\r\n");
                stored = true;
                s.message_done(make_reply(250, "2.0.0", "Ok: queued as 1"));
                break;
            case event::close:
                all += s.take_output();
                closed = true;
                break;
            case event::start_tls:
                FAIL();
        }
    }
    EXPECT_TRUE(stored);
    EXPECT_TRUE(closed);
    EXPECT_EQ(count_of(all, "250 2.1.0"), 1u);  // MAIL
    EXPECT_EQ(count_of(all, "250 2.1.5"), 1u);  // RCPT
    EXPECT_EQ(count_of(all, "354 "), 1u);
    EXPECT_EQ(count_of(all, "250 2.0.0 Ok: queued as 1\r\n"), 1u);
    EXPECT_EQ(count_of(all, "221 "), 1u);
}

}  // namespace
}  // namespace postern::smtp::test
