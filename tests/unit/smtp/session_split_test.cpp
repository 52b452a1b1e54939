// tests/unit/smtp/session_split_test.cpp - the same conversation fed at every split offset and
// byte by byte gives identical replies and messages; pipelining (RFC 2920) answers in order.
#include <gtest/gtest.h>

#include "session_driver.hpp"

namespace postern::smtp::test {
namespace {

struct outcome {
    std::string output;
    std::vector<std::string> messages;  // envelope summary + body
    bool closed = false;
};

std::string summary(const delivered& m) {
    std::string s = (m.envelope.sender.null ? "<>" : m.envelope.sender.box.str()) + " ->";
    for (const auto& r : m.envelope.recipients) s += " " + r.str();
    s += m.envelope.body == body_type::eight_bit_mime ? " 8bit" : " 7bit";
    return s + " | " + m.body;
}

outcome run_pieces(const std::vector<std::string_view>& pieces) {
    driver d;
    for (auto p : pieces) d.feed(p);
    outcome o;
    o.output = d.output;
    for (const auto& m : d.messages) o.messages.push_back(summary(m));
    o.closed = d.closed;
    return o;
}

// A full conversation with DATA (dot-stuffing, smuggling attempts, bare LF), BDAT with
// binary content, a refused recipient, STARTTLS-free. Every reply path is position-sensitive.
const std::string conversation =
    "EHLO client.test\r\n"
    "MAIL FROM:<alice@sender.test> BODY=8BITMIME\r\n"
    "RCPT TO:<bob@example.test>\r\n"
    "RCPT TO:<x@elsewhere.test>\r\n"
    "DATA\r\n"
    "Subject: t\r\n\r\n..stuffed\r\nfake\n.\nend\r.\rx\r\n.\rmore\r\n"
    ".\r\n"
    "MAIL FROM:<> \r\n"
    "RCPT TO:<Postmaster>\r\n"
    "BDAT 10\r\n\r\n.\r\nQUIT\rBDAT 0 LAST\r\n"
    "NOOP\n"
    "QUIT\r\n";

TEST(SmtpSessionSplit, ReferenceConversation) {
    const outcome ref = run_pieces({conversation});
    EXPECT_TRUE(ref.closed);
    ASSERT_EQ(ref.messages.size(), 2u);
    EXPECT_EQ(ref.messages[0],
              "alice@sender.test -> bob@example.test 8bit | "
              "Subject: t\r\n\r\n.stuffed\r\nfake\r\n.\r\nend\r\n.\r\nx\r\n.\r\nmore\r\n");
    EXPECT_EQ(ref.messages[1], "<> -> Postmaster@example.test 7bit | \r\n.\r\nQUIT\r\n");  // bare CR -> CRLF
    EXPECT_EQ(ref.output,
              "220 mx.example.test ESMTP Postern\r\n"
              "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n"
              "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
              "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n554 5.7.1 Relay access denied\r\n"
              "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 4F2A\r\n"
              "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 10 octets received\r\n"
              "250 2.0.0 Ok: queued as 4F2A\r\n250 2.0.0 Ok\r\n"
              "221 2.0.0 mx.example.test closing connection\r\n");
}

TEST(SmtpSessionSplit, EveryTwoWaySplitGivesTheSameResult) {
    const outcome ref = run_pieces({conversation});
    const std::string_view c = conversation;
    for (std::size_t k = 0; k <= c.size(); ++k) {
        const outcome o = run_pieces({c.substr(0, k), c.substr(k)});
        ASSERT_EQ(o.output, ref.output) << "split at " << k;
        ASSERT_EQ(o.messages, ref.messages) << "split at " << k;
        ASSERT_EQ(o.closed, ref.closed) << "split at " << k;
    }
}

TEST(SmtpSessionSplit, ByteByByteGivesTheSameResult) {
    const outcome ref = run_pieces({conversation});
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < conversation.size(); ++i)
        bytes.push_back(std::string_view(conversation).substr(i, 1));
    const outcome o = run_pieces(bytes);
    EXPECT_EQ(o.output, ref.output);
    EXPECT_EQ(o.messages, ref.messages);
    EXPECT_TRUE(o.closed);
}

TEST(SmtpSessionSplit, EveryThreeWaySplitOfTheDataEnd) {
    // The end-of-data sequence and its fakes cut everywhere, in three pieces.
    const std::string conv =
        "EHLO c\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
        "x\r\n.\ry\n.\r\n.\nz\r\n.\r\nNOOP\r\n";
    const outcome ref = run_pieces({conv});
    ASSERT_EQ(ref.messages.size(), 1u);
    EXPECT_EQ(ref.messages[0], "a@s.test -> b@example.test 7bit | x\r\n.\r\ny\r\n.\r\n.\r\nz\r\n");
    const std::string_view c = conv;
    const std::size_t from = conv.find("DATA");
    for (std::size_t i = from; i <= c.size(); ++i)
        for (std::size_t j = i; j <= c.size(); ++j) {
            const outcome o = run_pieces({c.substr(0, i), c.substr(i, j - i), c.substr(j)});
            ASSERT_EQ(o.output, ref.output) << i << "," << j;
            ASSERT_EQ(o.messages, ref.messages) << i << "," << j;
        }
}

TEST(SmtpSessionSplit, PipelinedCommandsAnsweredInOrderWithOneNeedInput) {
    driver d;
    d.events.clear();
    const std::string r = d.feed(
        "EHLO client.test\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\n"
        "RCPT TO:<c@elsewhere.test>\r\nRCPT TO:<d@example.test>\r\nNOOP\r\nRSET\r\n"
        "MAIL FROM:<e@s.test>\r\nVRFY x\r\n");
    EXPECT_EQ(d.events, std::vector<event>{event::need_input});
    const std::string after_ehlo = r.substr(r.find("250 CHUNKING\r\n") + 14);
    EXPECT_EQ(after_ehlo,
              "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n554 5.7.1 Relay access denied\r\n250 2.1.5 Ok\r\n"
              "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n"
              "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery\r\n");
    EXPECT_EQ(d.s.current().sender.box.str(), "e@s.test");
}

TEST(SmtpSessionSplit, PipelinedMessagesYieldOneEventEach) {
    driver d;
    d.ehlo();
    d.events.clear();
    std::string in;
    for (int i = 0; i < 3; ++i)
        in += "MAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nm" + std::to_string(i) +
              "\r\n.\r\n";
    d.feed(in);
    EXPECT_EQ(d.events, (std::vector<event>{event::message, event::message, event::message,
                                            event::need_input}));
    ASSERT_EQ(d.messages.size(), 3u);
    EXPECT_EQ(d.messages[2].body, "m2\r\n");
}

}  // namespace
}  // namespace postern::smtp::test
