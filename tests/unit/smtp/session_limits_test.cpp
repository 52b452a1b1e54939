// tests/unit/smtp/session_limits_test.cpp - error limit, command line length, timeout, EOF
// (RFC 5321 4.5.3.1.4, 4.5.3.2; Postfix-like "too many errors").
#include <gtest/gtest.h>

#include "session_driver.hpp"

namespace postern::smtp::test {
namespace {

TEST(SmtpSessionLimits, TooManyErrorsCloses) {
    auto st = test_settings();
    st.max_errors = 3;
    driver d(st);
    EXPECT_EQ(d.feed("BAD1\r\nBAD2\r\nBAD3\r\n"),
              "500 5.5.2 Error: command not recognized\r\n"
              "500 5.5.2 Error: command not recognized\r\n"
              "500 5.5.2 Error: command not recognized\r\n");
    EXPECT_FALSE(d.closed);
    EXPECT_EQ(d.feed("BAD4\r\nNOOP\r\n"),
              "500 5.5.2 Error: command not recognized\r\n"
              "421 4.7.0 mx.example.test Error: too many errors\r\n");
    EXPECT_TRUE(d.closed);
    EXPECT_EQ(d.s.error_count(), 4u);
    EXPECT_EQ(d.s.current_state(), state::closed);
}

TEST(SmtpSessionLimits, PolicyRefusalsCountAsErrors) {
    auto st = test_settings();
    st.max_errors = 1;
    driver d(st);
    d.ehlo();
    d.feed("MAIL FROM:<a@s.test>\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<x@elsewhere.test>\r\n"), "554 5.7.1 Relay access denied\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<x@greylist.test>\r\n"),
              "450 4.7.1 Try again later\r\n421 4.7.0 mx.example.test Error: too many errors\r\n");
    EXPECT_TRUE(d.closed);
}

TEST(SmtpSessionLimits, PositiveRepliesDoNotCount) {
    driver d;
    for (int i = 0; i < 50; ++i) d.feed("NOOP\r\n");
    EXPECT_EQ(d.s.error_count(), 0u);
    EXPECT_FALSE(d.closed);
}

TEST(SmtpSessionLimits, LineExactlyAtLimitAccepted) {
    driver d;  // max_line_length 512 including CRLF
    const std::string noop = "NOOP " + std::string(512 - 5 - 2, 'x') + "\r\n";
    ASSERT_EQ(noop.size(), 512u);
    EXPECT_EQ(d.feed(noop), "250 2.0.0 Ok\r\n");
}

TEST(SmtpSessionLimits, LineOverLimitRefusedAndSkipped) {
    driver d;
    const std::string noop = "NOOP " + std::string(512 - 5 - 1, 'x') + "\r\n";
    ASSERT_EQ(noop.size(), 513u);
    EXPECT_EQ(d.feed(noop + "NOOP\r\n"), "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n");
    EXPECT_EQ(d.s.error_count(), 1u);
}

TEST(SmtpSessionLimits, OverlongLineDiscardedBeforeItsEndArrives) {
    driver d;
    d.ehlo();
    // A long "MAIL" line sent in pieces: nothing is answered until its LF, and the tail
    // after the limit is never parsed as a command.
    EXPECT_EQ(d.feed("MAIL FROM:<a@s.test> "), "");
    for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(d.feed(std::string(100, 'y')), "");
        EXPECT_LT(d.s.buffered(), 512u);  // memory stays bounded
    }
    EXPECT_EQ(d.feed("\r\nNOOP\r\n"), "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n");
    EXPECT_TRUE(d.policy.senders_seen.empty());
    EXPECT_EQ(d.s.current_state(), state::ready);
}

// Found by review: a line that never ends was read and dropped forever (each read restarts
// the command timeout), holding the connection. Past (max_errors + 1) maximal lines, at least
// 16 KiB, the session answers and closes, as Postfix does at its error limit.
TEST(SmtpSessionLimits, ALineThatNeverEndsClosesTheSession) {
    driver d;  // max_line_length 512, max_errors 10: the floor, 16 KiB
    d.ehlo();
    std::string replies = d.feed(std::string(512, 'A'));  // a line of 512 octets is too long: dropped from here
    for (int i = 0; i < 15 && !d.closed; ++i) replies += d.feed(std::string(1024, 'A'));
    EXPECT_EQ(replies, "");
    EXPECT_FALSE(d.closed);
    EXPECT_EQ(d.feed(std::string(1024, 'A')),
              "500 5.5.2 Error: line too long\r\n421 4.7.0 mx.example.test Error: line too long, closing connection\r\n");
    EXPECT_TRUE(d.closed);
}

TEST(SmtpSessionLimits, LongLinesThatEndAreAnsweredOnceEach) {
    driver d;
    for (int i = 0; i < 3; ++i) {  // 12 KiB each in 1 KiB pieces, under the cap: one reply per line
        for (int k = 0; k < 12; ++k) EXPECT_EQ(d.feed(std::string(1024, 'A')), "");
        EXPECT_EQ(d.feed("\r\n"), "500 5.5.2 Error: line too long\r\n");  // the count starts again
    }
    EXPECT_FALSE(d.closed);
    EXPECT_EQ(d.feed("NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

// Found by review: 451/452 after the end of data (the spool failed: our fault) counted towards
// max_errors, so a client retrying while the disk was full was cut off with 421.
TEST(SmtpSessionLimits, SpoolFailuresAreNotTheClientsErrors) {
    auto st = test_settings();
    st.max_errors = 1;
    driver d(st);
    d.store_reply = make_reply(452, "4.3.1", "Error: insufficient system storage");
    d.ehlo();
    for (int i = 0; i < 3; ++i) {
        d.feed("MAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\n");
        EXPECT_EQ(d.feed("DATA\r\nx\r\n.\r\n"),
                  "354 End data with <CR><LF>.<CR><LF>\r\n452 4.3.1 Error: insufficient system storage\r\n");
    }
    d.store_reply = make_reply(451, "4.3.0", "Error: queue file write error");
    d.feed("MAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\n");
    EXPECT_EQ(d.feed("BDAT 1 LAST\r\nx"), "451 4.3.0 Error: queue file write error\r\n");
    EXPECT_EQ(d.s.error_count(), 0u);
    EXPECT_FALSE(d.closed);
}

TEST(SmtpSessionLimits, PartialLineAtLimitIsAlreadyTooLong) {
    driver d;
    EXPECT_EQ(d.feed("NOOP " + std::string(507, 'x')), "");  // 512 octets, no LF yet
    EXPECT_EQ(d.feed("\nNOOP\r\n"), "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n");
}

TEST(SmtpSessionLimits, A421FromPolicyClosesTheSession) {
    driver d;
    d.ehlo();
    EXPECT_EQ(d.feed("MAIL FROM:<a@shutdown.test>\r\nNOOP\r\n"),
              "421 4.3.2 mx.example.test Service shutting down\r\n");
    EXPECT_TRUE(d.closed);
}

TEST(SmtpSessionLimits, A421FromMessageDoneClosesTheSession) {
    driver d;
    d.store_reply = make_reply(421, "4.3.0", "mx.example.test Error: queue unavailable");
    d.envelope();
    EXPECT_EQ(d.feed("DATA\r\nx\r\n.\r\nNOOP\r\n"),
              "354 End data with <CR><LF>.<CR><LF>\r\n421 4.3.0 mx.example.test Error: queue unavailable\r\n");
    EXPECT_TRUE(d.closed);
}

TEST(SmtpSessionLimits, TimeoutWhileStoringThenMessageDoneIsIgnored) {
    fake_policy p;
    server_session s(test_settings(), p);
    s.start();
    s.feed("EHLO c\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nx\r\n.\r\n");
    ASSERT_EQ(s.next(), event::message);
    (void)s.take_output();
    s.timeout();
    s.message_done(make_reply(250, "2.0.0", "Ok: queued as X"));
    EXPECT_EQ(s.next(), event::close);
    EXPECT_EQ(s.take_output(), "421 4.4.2 mx.example.test Error: timeout exceeded\r\n");
}

TEST(SmtpSessionLimits, Timeout) {
    driver d;
    d.ehlo();
    d.s.timeout();
    EXPECT_EQ(d.run(), "421 4.4.2 mx.example.test Error: timeout exceeded\r\n");
    EXPECT_TRUE(d.closed);
    EXPECT_EQ(d.s.error_count(), 0u);
}

TEST(SmtpSessionLimits, EofClosesWithoutReply) {
    driver d;
    d.ehlo();
    EXPECT_EQ(d.eof(), "");
    EXPECT_TRUE(d.closed);
    EXPECT_EQ(d.s.current_state(), state::closed);
}

TEST(SmtpSessionLimits, EofAfterCompleteCommandsProcessesThemFirst) {
    driver d;
    d.s.feed("NOOP\r\nNOO");
    EXPECT_EQ(d.eof(), "250 2.0.0 Ok\r\n");  // the partial "NOO" is dropped
    EXPECT_TRUE(d.closed);
}

TEST(SmtpSessionLimits, EofInsideDataDeliversNothing) {
    driver d;
    d.envelope();
    d.feed("DATA\r\nhalf a message\r\n");
    EXPECT_EQ(d.eof(), "");
    EXPECT_TRUE(d.closed);
    EXPECT_TRUE(d.messages.empty());
}

TEST(SmtpSessionLimits, EofInsideBdatChunkDeliversNothing) {
    driver d;
    d.envelope();
    d.feed("BDAT 10 LAST\r\nabc");
    EXPECT_EQ(d.eof(), "");
    EXPECT_TRUE(d.closed);
    EXPECT_TRUE(d.messages.empty());
}

}  // namespace
}  // namespace postern::smtp::test
