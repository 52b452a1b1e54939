// tests/unit/smtp/client_dot_stuff_test.cpp - smtp::dot_stuff: RFC 5321 4.5.2 transparency,
// the terminating CRLF.CRLF, and bare CR/LF sent as CRLF (no smuggled end of data).
#include <gtest/gtest.h>

#include <string>

#include "smtp/client_session.hpp"

namespace postern::smtp {
namespace {

std::string stuffed(std::string_view content) {
    std::string out;
    dot_stuff(content, out);
    return out;
}

TEST(SmtpClientDotStuff, Table) {
    struct row {
        std::string_view in, out;
    };
    const row rows[] = {
        {"", ".\r\n"},
        {".", "..\r\n.\r\n"},
        {".\r\n", "..\r\n.\r\n"},
        {"..x", "...x\r\n.\r\n"},
        {"..x\r\n", "...x\r\n.\r\n"},
        {"a\r\n.b", "a\r\n..b\r\n.\r\n"},
        {"a\r\n.b\r\n", "a\r\n..b\r\n.\r\n"},
        {"no final crlf", "no final crlf\r\n.\r\n"},
        {"a\r\nb", "a\r\nb\r\n.\r\n"},
        {"a.b\r\n", "a.b\r\n.\r\n"},
        {"\r\n", "\r\n.\r\n"},
        {"\r\n.\r\n", "\r\n..\r\n.\r\n"},
        {"x\r\n.\r\n.\r\ny\r\n", "x\r\n..\r\n..\r\ny\r\n.\r\n"},
        // Bare LF / bare CR become CRLF and start a line: smuggling attempts stay data.
        {"a\n.\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
        {"a\r.\rb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
        {"a\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n"},
        {"a\r.\r\n", "a\r\n..\r\n.\r\n"},
        {"a\r", "a\r\n.\r\n"},
        {"a\r\r\n", "a\r\n\r\n.\r\n"},
        {"\n", "\r\n.\r\n"},
    };
    for (const auto& r : rows) EXPECT_EQ(stuffed(r.in), r.out) << "input: " << std::string(r.in);
}

TEST(SmtpClientDotStuff, AppendsToExistingOutput) {
    std::string out = "DATA\r\n";
    dot_stuff("x\r\n", out);
    EXPECT_EQ(out, "DATA\r\nx\r\n.\r\n");
}

TEST(SmtpClientDotStuff, LargeContent) {
    std::string content;
    for (int i = 0; i < 10000; ++i) content += (i % 3 == 0) ? ".dot line\r\n" : "plain line of text\r\n";
    const std::string out = stuffed(content);
    EXPECT_EQ(out.size(), content.size() + 3334 + 3);
    EXPECT_EQ(out.substr(0, 11), "..dot line\r");
    EXPECT_EQ(out.substr(out.size() - 5), "\r\n.\r\n");
}

}  // namespace
}  // namespace postern::smtp
