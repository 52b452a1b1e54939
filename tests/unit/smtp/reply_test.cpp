// tests/unit/smtp/reply_test.cpp - smtp::reply wire form (RFC 5321 4.2, RFC 2034).
#include <gtest/gtest.h>

#include "smtp/reply.hpp"

namespace postern::smtp {
namespace {

TEST(SmtpReply, SingleLineWithEnhancedCode) {
    EXPECT_EQ(make_reply(250, "2.1.0", "Ok").wire(), "250 2.1.0 Ok\r\n");
}

TEST(SmtpReply, SingleLineWithoutEnhancedCode) {
    EXPECT_EQ(make_reply(354, "", "End data").wire(), "354 End data\r\n");
}

TEST(SmtpReply, MultiLineContinuationMarksAllButLast) {
    reply r;
    r.code = 250;
    r.lines = {"mx.example.test", "PIPELINING", "SIZE 100"};
    EXPECT_EQ(r.wire(), "250-mx.example.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
}

TEST(SmtpReply, MultiLineRepeatsEnhancedCodeOnEveryLine) {
    reply r;
    r.code = 550;
    r.enhanced = "5.7.1";
    r.lines = {"first", "second"};
    EXPECT_EQ(r.wire(), "550-5.7.1 first\r\n550 5.7.1 second\r\n");
}

TEST(SmtpReply, MakeReplySplitsOnNewlineAndDropsCarriageReturns) {
    const reply r = make_reply(554, "5.7.0", "one\r\ntwo");
    ASSERT_EQ(r.lines.size(), 2u);
    EXPECT_EQ(r.wire(), "554-5.7.0 one\r\n554 5.7.0 two\r\n");
}

TEST(SmtpReply, LinesSetDirectlyCannotInjectReplies) {
    reply r;
    r.code = 250;
    r.lines = {"Ok\r\n250 fake"};
    EXPECT_EQ(r.wire(), "250 Ok250 fake\r\n");
}

TEST(SmtpReply, EmptyTextStillFramed) {
    EXPECT_EQ(make_reply(250, "2.0.0", "").wire(), "250 2.0.0\r\n");
    reply r;
    r.code = 250;
    EXPECT_EQ(r.wire(), "250 \r\n");
}

TEST(SmtpReply, Classification) {
    EXPECT_TRUE(make_reply(250, "", "x").positive());
    EXPECT_TRUE(make_reply(354, "", "x").positive());
    EXPECT_FALSE(make_reply(354, "", "x").transient());
    EXPECT_TRUE(make_reply(421, "", "x").transient());
    EXPECT_FALSE(make_reply(421, "", "x").permanent());
    EXPECT_TRUE(make_reply(554, "", "x").permanent());
    EXPECT_FALSE(make_reply(554, "", "x").positive());
}

}  // namespace
}  // namespace postern::smtp
