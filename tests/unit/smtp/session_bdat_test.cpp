// tests/unit/smtp/session_bdat_test.cpp - BDAT / CHUNKING (RFC 3030): chunks, LAST, binary
// transparency, refusals that still consume their chunk, size limit, no mixing with DATA.
#include <gtest/gtest.h>

#include "session_driver.hpp"

namespace postern::smtp::test {
namespace {

TEST(SmtpSessionBdat, ChunksThenLast) {
    driver d;
    d.envelope();
    EXPECT_EQ(d.feed("BDAT 5\r\nhello"), "250 2.0.0 5 octets received\r\n");
    EXPECT_EQ(d.s.current_state(), state::in_mail);
    EXPECT_EQ(d.feed("BDAT 6 LAST\r\n world"), "250 2.0.0 Ok: queued as 4F2A\r\n");
    ASSERT_EQ(d.messages.size(), 1u);
    EXPECT_EQ(d.messages[0].body, "hello world");
    EXPECT_EQ(d.messages[0].envelope.recipients.size(), 1u);
    EXPECT_EQ(d.s.current_state(), state::ready);
}

TEST(SmtpSessionBdat, ChunkSplitAcrossFeeds) {
    driver d;
    d.envelope();
    EXPECT_EQ(d.feed("BDAT 10 last\r\n01234"), "");
    EXPECT_EQ(d.s.current_state(), state::in_bdat);
    EXPECT_EQ(d.feed("567"), "");
    EXPECT_EQ(d.feed("89NOOP\r\n"), "250 2.0.0 Ok: queued as 4F2A\r\n250 2.0.0 Ok\r\n");
    ASSERT_EQ(d.messages.size(), 1u);
    EXPECT_EQ(d.messages[0].body, "0123456789");
}

TEST(SmtpSessionBdat, BinaryTransparentNoDotStuffing) {
    driver d;
    d.envelope();
    const std::string chunk("a\r\n.\r\nQUIT\r\n\0\xff\n.\n..x\r", 20);
    ASSERT_EQ(chunk.size(), 20u);
    d.feed("BDAT 20 LAST\r\n" + chunk);
    ASSERT_EQ(d.messages.size(), 1u);
    // No dot-unstuffing; bare LF / bare CR become CRLF (BINARYMIME is not offered, and a
    // "\n.\n" must never reach a later DATA relay as an end-of-data).
    EXPECT_EQ(d.messages[0].body, std::string("a\r\n.\r\nQUIT\r\n\0\xff\r\n.\r\n..x", 22));
    EXPECT_FALSE(d.closed);                // the QUIT inside the chunk was data
}

TEST(SmtpSessionBdat, ZeroLastEndsMessage) {
    driver d;
    d.envelope();
    d.feed("BDAT 3\r\nabcBDAT 0 LAST\r\n");
    ASSERT_EQ(d.messages.size(), 1u);
    EXPECT_EQ(d.messages[0].body, "abc");
    d.feed("MAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nBDAT 0 LAST\r\n");
    ASSERT_EQ(d.messages.size(), 2u);
    EXPECT_EQ(d.messages[1].body, "");
}

TEST(SmtpSessionBdat, DataAfterBdatRefused) {
    driver d;
    d.envelope();
    d.feed("BDAT 3\r\nabc");
    EXPECT_EQ(d.feed("DATA\r\n"), "503 5.5.1 Error: DATA cannot be mixed with BDAT\r\n");
    EXPECT_EQ(d.feed("BDAT 3 LAST\r\ndef"), "250 2.0.0 Ok: queued as 4F2A\r\n");
    ASSERT_EQ(d.messages.size(), 1u);
    EXPECT_EQ(d.messages[0].body, "abcdef");
}

TEST(SmtpSessionBdat, RcptAfterBdatRefused) {
    driver d;
    d.envelope();
    d.feed("BDAT 1\r\na");
    EXPECT_EQ(d.feed("RCPT TO:<c@example.test>\r\n"), "503 5.5.1 Error: RCPT not allowed after BDAT\r\n");
}

TEST(SmtpSessionBdat, RefusedChunksAreStillConsumed) {
    driver d;
    // Before HELO: the chunk's "QUIT\r\n" must not be executed.
    EXPECT_EQ(d.feed("BDAT 6\r\nQUIT\r\n"), "503 5.5.1 Error: send HELO/EHLO first\r\n");
    EXPECT_FALSE(d.closed);
    d.ehlo();
    EXPECT_EQ(d.feed("BDAT 6 LAST\r\nQUIT\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
    EXPECT_FALSE(d.closed);
    d.feed("MAIL FROM:<a@s.test>\r\n");
    EXPECT_EQ(d.feed("BDAT 6\r\nQUIT\r\n"), "554 5.5.1 Error: no valid recipients\r\n");
    EXPECT_FALSE(d.closed);
    EXPECT_TRUE(d.messages.empty());
}

// After MAIL and `setup` (answered as given), `first` (a BDAT with its chunk) is refused with
// `refusal`: the message has lost that chunk and fails like one too big, never stored with a
// hole: RCPT gets 503, BDAT LAST gets `later`, nothing is stored, the transaction is over, and
// a new one works.
void expect_refused_chunk_fails_the_message(const std::string& setup, const std::string& setup_reply,
                                            const std::string& first, const std::string& refusal,
                                            const std::string& later) {
    driver d;
    d.ehlo();
    d.feed("MAIL FROM:<a@s.test>\r\n");
    EXPECT_EQ(d.feed(setup), setup_reply);
    EXPECT_EQ(d.feed(first), refusal);
    EXPECT_EQ(d.feed("RCPT TO:<b@example.test>\r\n"), "503 5.5.1 Error: RCPT not allowed after BDAT\r\n");
    EXPECT_EQ(d.feed("BDAT 6 LAST\r\nchunk2"), later);
    EXPECT_TRUE(d.messages.empty());
    EXPECT_EQ(d.feed("RCPT TO:<b@example.test>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
    d.feed("MAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\n");
    EXPECT_EQ(d.feed("BDAT 3 LAST\r\nabc"), "250 2.0.0 Ok: queued as 4F2A\r\n");
    ASSERT_EQ(d.messages.size(), 1u);
    EXPECT_EQ(d.messages[0].body, "abc");
}

// Found by review: a BDAT refused for want of recipients left the transaction open for RCPT
// and a later chunk, so the message was stored without the refused chunk.
TEST(SmtpSessionBdat, AChunkRefusedForWantOfRecipientsFailsTheMessage) {
    const std::string none = "554 5.5.1 Error: no valid recipients\r\n";
    expect_refused_chunk_fails_the_message("RCPT TO:<x@elsewhere.test>\r\n", "554 5.7.1 Relay access denied\r\n",
                                           "BDAT 6\r\nchunk1", none, none);
}

// Found by review of the fix above: the same hole through a bad end-marker before any
// recipient was accepted.
TEST(SmtpSessionBdat, ABadBdatBeforeRecipientsFailsTheMessage) {
    expect_refused_chunk_fails_the_message("NOOP\r\n", "250 2.0.0 Ok\r\n", "BDAT 6 FIRST\r\nchunk1",
                                           "501 5.5.4 Syntax: BDAT count [LAST]\r\n",
                                           "554 5.5.0 Error: message incomplete, a BDAT chunk was refused\r\n");
}

// Found by review: BDAT was accepted after HELO, though CHUNKING is only offered to EHLO.
TEST(SmtpSessionBdat, RefusedAfterHeloButChunkConsumed) {
    driver d;
    d.feed("HELO client.test\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\n");
    const std::string need_ehlo = "503 5.5.1 Error: send EHLO first (BDAT is an ESMTP extension)\r\n";
    EXPECT_EQ(d.feed("BDAT 6 LAST\r\nQUIT\r\n"), need_ehlo);
    EXPECT_FALSE(d.closed);  // the chunk's QUIT was content
    EXPECT_EQ(d.feed("BDAT 6 FIRST\r\nQUIT\r\n"), "501 5.5.4 Syntax: BDAT count [LAST]\r\n");
    EXPECT_FALSE(d.closed);
    EXPECT_TRUE(d.messages.empty());
    // The transaction is intact: DATA works, as it always does after HELO.
    EXPECT_EQ(d.feed("DATA\r\nx\r\n.\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 4F2A\r\n");
    ASSERT_EQ(d.messages.size(), 1u);
    // EHLO makes BDAT available.
    d.feed("EHLO client.test\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\n");
    EXPECT_EQ(d.feed("BDAT 1 LAST\r\ny"), "250 2.0.0 Ok: queued as 4F2A\r\n");
    EXPECT_EQ(d.messages.size(), 2u);
}

TEST(SmtpSessionBdat, SyntaxErrors) {
    driver d;
    d.envelope();
    // No chunk size to read: nothing can be skipped, the next line is a command.
    EXPECT_EQ(d.feed("BDAT\r\n"), "501 5.5.4 Syntax: BDAT count [LAST]\r\n");
    EXPECT_EQ(d.feed("BDAT x\r\n"), "501 5.5.4 Syntax: BDAT count [LAST]\r\n");
    EXPECT_EQ(d.feed("BDAT -1\r\n"), "501 5.5.4 Syntax: BDAT count [LAST]\r\n");
    EXPECT_EQ(d.feed("BDAT 5x LAST\r\nNOOP\r\n"), "501 5.5.4 Syntax: BDAT count [LAST]\r\n250 2.0.0 Ok\r\n");
    EXPECT_EQ(d.s.current_state(), state::in_mail);
    EXPECT_EQ(d.feed("BDAT 2 LAST\r\nok"), "250 2.0.0 Ok: queued as 4F2A\r\n");  // the transaction is intact
}

// Found by review: a size that parsed with a bad end-marker left the chunk to be executed as
// commands ("BDAT 6 FIRST\r\nQUIT\r\n" -> 501, then 221 for the chunk's QUIT).
TEST(SmtpSessionBdat, BadMarkerChunkIsConsumedNotExecuted) {
    driver d;
    d.envelope();
    EXPECT_EQ(d.feed("BDAT 6 FIRST\r\nQUIT\r\n"), "501 5.5.4 Syntax: BDAT count [LAST]\r\n");
    EXPECT_FALSE(d.closed);
    EXPECT_EQ(d.feed("BDAT 5 LAST LAST\r\nRSET\r"), "501 5.5.4 Syntax: BDAT count [LAST]\r\n");
    // The transaction lost a chunk: never stored with a hole; refused until LAST (or RSET).
    const std::string incomplete = "554 5.5.0 Error: message incomplete, a BDAT chunk was refused\r\n";
    EXPECT_EQ(d.feed("BDAT 3\r\nabc"), incomplete);
    EXPECT_EQ(d.feed("DATA\r\n"), "503 5.5.1 Error: DATA cannot be mixed with BDAT\r\n");
    EXPECT_EQ(d.feed("BDAT 3 LAST\r\ndef"), incomplete);
    EXPECT_TRUE(d.messages.empty());
    EXPECT_EQ(d.s.current_state(), state::ready);
    // Outside a transaction the chunk is consumed all the same.
    EXPECT_EQ(d.feed("BDAT 6 FIRST\r\nQUIT\r\n"), "501 5.5.4 Syntax: BDAT count [LAST]\r\n");
    EXPECT_FALSE(d.closed);
    EXPECT_EQ(d.feed("MAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nBDAT 1 LAST\r\nz"),
              "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued as 4F2A\r\n");
    ASSERT_EQ(d.messages.size(), 1u);
    EXPECT_EQ(d.messages[0].body, "z");
}

// Found by review: a size of digits past 2^64-1 got 501 and what followed (the chunk, which
// cannot be skipped) ran as commands. The session cannot resynchronise: 552 and close.
TEST(SmtpSessionBdat, UnskippableChunkSizeClosesTheSession) {
    for (const char* marker : {" LAST", "", " FIRST"}) {
        driver d;
        d.envelope();
        EXPECT_EQ(d.feed(std::string("BDAT 99999999999999999999999") + marker +
                         "\r\nRSET\r\nMAIL FROM:<evil@x.test>\r\n"),
                  "552 5.3.4 Error: message too big; the BDAT chunk cannot be skipped, closing connection\r\n")
            << marker;
        EXPECT_TRUE(d.closed) << marker;
        EXPECT_TRUE(d.messages.empty());
        EXPECT_EQ(d.policy.senders_seen.size(), 1u);  // only the envelope's MAIL
    }
    driver d;  // 2^64-1 itself is a size like any other: its chunk is read and dropped
    d.envelope();
    EXPECT_EQ(d.feed("BDAT 18446744073709551615 LAST\r\nRSET\r\n"), "");
    EXPECT_EQ(d.s.current_state(), state::in_bdat);
    driver e;  // under a refusal of every command too
    e.s.refuse_commands(make_reply(554, "5.7.0", "TLS version too old"));
    EXPECT_EQ(e.feed("BDAT 99999999999999999999999\r\nQUIT\r\n").substr(0, 4), "552 ");
    EXPECT_TRUE(e.closed);
}

TEST(SmtpSessionBdat, TooBigRefusesEveryChunkUntilLast) {
    driver d;  // max_message_size 10000
    d.envelope();
    const std::string big(6000, 'x');
    EXPECT_EQ(d.feed("BDAT 6000\r\n" + big), "250 2.0.0 6000 octets received\r\n");
    EXPECT_EQ(d.feed("BDAT 6000\r\n" + big), "552 5.3.4 Error: message too big\r\n");
    EXPECT_EQ(d.s.body().size(), 6000u);  // the refused chunk was not stored
    EXPECT_EQ(d.feed("BDAT 1\r\nx"), "552 5.3.4 Error: message too big\r\n");
    EXPECT_EQ(d.feed("BDAT 1 LAST\r\nx"), "552 5.3.4 Error: message too big\r\n");
    EXPECT_TRUE(d.messages.empty());
    EXPECT_EQ(d.s.current_state(), state::ready);  // LAST ended the failed transaction
    EXPECT_TRUE(d.s.body().empty());
    EXPECT_EQ(d.feed("MAIL FROM:<a@s.test>\r\n"), "250 2.1.0 Ok\r\n");
}

TEST(SmtpSessionBdat, HugeDeclaredChunkIsDiscardedNotBuffered) {
    driver d;
    d.envelope();
    EXPECT_EQ(d.feed("BDAT 1000000000000\r\n"), "");
    for (int i = 0; i < 100; ++i) {
        d.feed(std::string(1000, 'z'));
        EXPECT_EQ(d.s.buffered(), 0u);
    }
    EXPECT_EQ(d.s.current_state(), state::in_bdat);
    EXPECT_TRUE(d.s.body().empty());
}

TEST(SmtpSessionBdat, ExactlyMaxSizeAccepted) {
    driver d;
    d.envelope();
    std::string body;
    for (int i = 0; i < 100; ++i) body += std::string(98, 'q') + "\r\n";  // text lines, 10000 octets
    d.feed("BDAT 10000 LAST\r\n" + body);
    ASSERT_EQ(d.messages.size(), 1u);
    EXPECT_EQ(d.messages[0].body.size(), 10000u);
}

TEST(SmtpSessionBdat, RsetBetweenChunksAbandonsMessage) {
    driver d;
    d.envelope();
    d.feed("BDAT 3\r\nabc");
    EXPECT_EQ(d.feed("RSET\r\n"), "250 2.0.0 Ok\r\n");
    EXPECT_TRUE(d.s.body().empty());
    EXPECT_EQ(d.feed("BDAT 1 LAST\r\nx"), "503 5.5.1 Error: need MAIL command\r\n");
    EXPECT_TRUE(d.messages.empty());
}

TEST(SmtpSessionBdat, PipelinedChunksAnsweredInOrder) {
    driver d;
    d.ehlo();
    d.events.clear();
    EXPECT_EQ(d.feed("MAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nBDAT 2\r\nabBDAT 2\r\ncdBDAT 1 LAST\r\ne"),
              "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 2 octets received\r\n"
              "250 2.0.0 2 octets received\r\n250 2.0.0 Ok: queued as 4F2A\r\n");
    ASSERT_EQ(d.messages.size(), 1u);
    EXPECT_EQ(d.messages[0].body, "abcde");
    EXPECT_EQ(d.count(event::need_input), 1u);
}

TEST(SmtpSessionBdat, BareLineEndsAcrossChunksAreNormalised) {
    driver d;
    d.envelope();
    d.feed("BDAT 3\r\na\r\r");  // CR at the end of a chunk, LF at the start of the next: one CRLF
    d.feed("BDAT 4 LAST\r\n\nb\nc");
    ASSERT_EQ(d.messages.size(), 1u);
    EXPECT_EQ(d.messages[0].body, "a\r\n\r\nb\r\nc");
}

TEST(SmtpSessionBdat, OverlongLineRefusedLikeData) {
    driver d;
    d.envelope();
    const std::string line(999, 'x');
    EXPECT_EQ(d.feed("BDAT 1001 LAST\r\n" + line + "\r\n"),
              "554 5.6.0 Error: message line longer than 998 octets\r\n");
    EXPECT_TRUE(d.messages.empty());
    EXPECT_EQ(d.s.current_state(), state::ready);
    d.envelope();
    EXPECT_EQ(d.feed("BDAT 1000 LAST\r\n" + std::string(998, 'x') + "\r\n"), "250 2.0.0 Ok: queued as 4F2A\r\n");
}

}  // namespace
}  // namespace postern::smtp::test
