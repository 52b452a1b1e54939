// tests/unit/smtp/client_reply_parser_test.cpp - smtp::reply_parser: RFC 5321 4.2 framing,
// RFC 2034 enhanced codes, bounds (line length, line count), input split at every offset.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "smtp/client_session.hpp"

namespace postern::smtp {
namespace {

// Every reply the parser yields for `pieces`, rendered "code|enhanced|line1/line2", or
// "error: ..." (parsing stops at the first error).
std::vector<std::string> parse_all(const std::vector<std::string_view>& pieces,
                                   std::size_t max_line = 512, std::size_t max_lines = 20) {
    reply_parser p(max_line, max_lines);
    std::vector<std::string> out;
    for (auto piece : pieces) {
        p.feed(piece);
        while (auto r = p.next()) {
            if (!r->ok()) {
                out.push_back("error: " + r->error_message());
                return out;
            }
            std::string s = std::to_string((*r)->code) + "|" + (*r)->enhanced + "|";
            for (std::size_t i = 0; i < (*r)->lines.size(); ++i)
                s += (i ? "/" : "") + (*r)->lines[i];
            out.push_back(s);
        }
    }
    return out;
}

std::vector<std::string> parse_one(std::string_view text, std::size_t max_line = 512,
                                   std::size_t max_lines = 20) {
    return parse_all({text}, max_line, max_lines);
}

using v = std::vector<std::string>;

TEST(SmtpClientReplyParser, SingleAndMultiLine) {
    EXPECT_EQ(parse_one("250 ok\r\n"), v{"250||ok"});
    EXPECT_EQ(parse_one("250-a\r\n250 b\r\n"), v{"250||a/b"});
    EXPECT_EQ(parse_one("220 mx.example.test ESMTP\r\n354 go ahead\r\n"),
              (v{"220||mx.example.test ESMTP", "354||go ahead"}));
}

TEST(SmtpClientReplyParser, EnhancedCodeSplitOff) {
    EXPECT_EQ(parse_one("250 2.1.0 Ok\r\n"), v{"250|2.1.0|Ok"});
    EXPECT_EQ(parse_one("550-5.7.1 first\r\n550 5.7.1 second\r\n"), v{"550|5.7.1|first/second"});
    EXPECT_EQ(parse_one("250 2.0.0\r\n"), v{"250|2.0.0|"});
    EXPECT_EQ(parse_one("451 4.123.456 x\r\n"), v{"451|4.123.456|x"});
    // Class must match the reply; malformed codes stay text.
    EXPECT_EQ(parse_one("250 5.1.0 odd\r\n"), v{"250||5.1.0 odd"});
    EXPECT_EQ(parse_one("250 2.1.0x\r\n"), v{"250||2.1.0x"});
    EXPECT_EQ(parse_one("250 2.1234.0 x\r\n"), v{"250||2.1234.0 x"});
    EXPECT_EQ(parse_one("250 2..0 x\r\n"), v{"250||2..0 x"});
    EXPECT_EQ(parse_one("354 3.0.0 go\r\n"), v{"354||3.0.0 go"});  // no class 3 (RFC 3463 3.1)
    // The first line without a code (EHLO style) does not stop a later line's code.
    EXPECT_EQ(parse_one("550-mx.example.test says\r\n550 5.7.1 no\r\n"),
              v{"550|5.7.1|mx.example.test says/no"});
}

TEST(SmtpClientReplyParser, LenientLineEndsAndBareCode) {
    EXPECT_EQ(parse_one("250-a\n250 b\n"), v{"250||a/b"});
    EXPECT_EQ(parse_one("250\r\n"), v{"250||"});
    EXPECT_EQ(parse_one("250-\r\n250\r\n"), v{"250||/"});
    // Control characters in the text are made printable; a stray CR inside too.
    EXPECT_EQ(parse_one("250 a\x1b[2Jb\rc\r\n"), v{"250||a?[2Jb?c"});
}

TEST(SmtpClientReplyParser, MalformedLines) {
    EXPECT_EQ(parse_one("hello\r\n"), v{"error: malformed reply line"});
    EXPECT_EQ(parse_one("25\r\n"), v{"error: malformed reply line"});
    EXPECT_EQ(parse_one("150 x\r\n"), v{"error: malformed reply line"});  // RFC 5321 4.2: 2-5
    EXPECT_EQ(parse_one("650 x\r\n"), v{"error: malformed reply line"});
    EXPECT_EQ(parse_one("250x\r\n"), v{"error: malformed reply line"});
    EXPECT_EQ(parse_one("2a0 x\r\n"), v{"error: malformed reply line"});
    EXPECT_EQ(parse_one("\r\n"), v{"error: malformed reply line"});
    EXPECT_EQ(parse_one("250-a\r\n251 b\r\n"), v{"error: reply lines with different codes"});
}

TEST(SmtpClientReplyParser, ErrorsAreSticky) {
    reply_parser p;
    p.feed("junk\r\n250 ok\r\n");
    auto r = p.next();
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->ok());
    p.feed("250 more\r\n");
    r = p.next();
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->ok());
}

TEST(SmtpClientReplyParser, OverlongLineRefusedBeforeItsEnd) {
    // max_line counts the line with its CRLF (RFC 5321 4.5.3.1.5: 512 octets).
    const std::string ok = "250 " + std::string(506, 'x') + "\r\n";  // 512 octets
    ASSERT_EQ(ok.size(), 512u);
    EXPECT_EQ(parse_one(ok).size(), 1u);
    EXPECT_EQ(parse_one("250 " + std::string(507, 'x') + "\r\n"), v{"error: reply line too long"});
    // Without any LF: refused as soon as max_line octets are buffered, not later.
    reply_parser p(512, 20);
    p.feed(std::string(511, 'x'));
    EXPECT_FALSE(p.next());
    p.feed("x");
    auto r = p.next();
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->ok());
    EXPECT_EQ(r->error_message(), "reply line too long");
}

TEST(SmtpClientReplyParser, TooManyLines) {
    std::string endless;
    for (int i = 0; i < 20; ++i) endless += "250-line\r\n";
    EXPECT_TRUE(parse_one(endless).empty());  // 20 lines: still waiting
    EXPECT_EQ(parse_one(endless + "250 last\r\n"), v{"error: reply has too many lines"});
    EXPECT_EQ(parse_one(endless + "250-more\r\n"), v{"error: reply has too many lines"});
    std::string nineteen;
    for (int i = 0; i < 19; ++i) nineteen += "250-line\r\n";
    EXPECT_EQ(parse_one(nineteen + "250 last\r\n").size(), 1u);
}

TEST(SmtpClientReplyParser, ClearForgetsEverything) {
    reply_parser p;
    p.feed("250-partial\r\n250 inject");
    EXPECT_FALSE(p.next());
    EXPECT_GT(p.buffered(), 0u);
    p.clear();
    EXPECT_EQ(p.buffered(), 0u);
    p.feed("220 fresh\r\n");
    auto r = p.next();
    ASSERT_TRUE(r && r->ok());
    EXPECT_EQ((*r)->code, 220);
    EXPECT_EQ((*r)->lines, std::vector<std::string>{"fresh"});
}

TEST(SmtpClientReplyParser, BufferedCountsUnreadReplies) {
    reply_parser p;
    p.feed("250 a\r\n250 b\r\n");
    ASSERT_TRUE(p.next());
    EXPECT_EQ(p.buffered(), 7u);
    ASSERT_TRUE(p.next());
    EXPECT_EQ(p.buffered(), 0u);
    EXPECT_FALSE(p.next());
}

const std::string stream =
    "220 mx.example.test ESMTP\r\n"
    "250-mx.example.test\r\n250-PIPELINING\n250 SIZE 100\r\n"
    "550-5.1.1 no such\r\n550 5.1.1 user\r\n"
    "250\r\n";

TEST(SmtpClientReplyParser, EverySplitOffsetAndByteByByte) {
    const auto ref = parse_all({stream});
    ASSERT_EQ(ref, (v{"220||mx.example.test ESMTP", "250||mx.example.test/PIPELINING/SIZE 100",
                      "550|5.1.1|no such/user", "250||"}));
    for (std::size_t i = 0; i <= stream.size(); ++i) {
        const std::string_view s(stream);
        EXPECT_EQ(parse_all({s.substr(0, i), s.substr(i)}), ref) << "split at " << i;
        for (std::size_t j = i; j <= stream.size(); j += 7)
            EXPECT_EQ(parse_all({s.substr(0, i), s.substr(i, j - i), s.substr(j)}), ref)
                << "split at " << i << " and " << j;
    }
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < stream.size(); ++i) bytes.push_back(std::string_view(stream).substr(i, 1));
    EXPECT_EQ(parse_all(bytes), ref);
}

TEST(SmtpClientReplyParser, LongStreamStaysCompact) {
    // Many replies fed and read one by one: the buffer does not keep consumed bytes.
    reply_parser p;
    for (int i = 0; i < 10000; ++i) {
        p.feed("250 2.1.5 Ok\r\n");
        auto r = p.next();
        ASSERT_TRUE(r && r->ok());
        EXPECT_EQ(p.buffered(), 0u);
    }
}

}  // namespace
}  // namespace postern::smtp
