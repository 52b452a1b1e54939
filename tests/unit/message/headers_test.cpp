// tests/unit/message/headers_test.cpp - header section split and Received: counting (RFC 5322 2.1, RFC 5321 6.3).
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "message/headers.hpp"

using namespace postern;

TEST(headers, header_section_with_body) {
    std::string m = "From: a@b\r\nSubject: hi\r\n\r\nbody line\r\n\r\nmore\r\n";
    EXPECT_EQ(message::header_section(m), "From: a@b\r\nSubject: hi\r\n");
}

TEST(headers, header_section_without_body) {
    EXPECT_EQ(message::header_section("From: a@b\r\nSubject: hi\r\n"), "From: a@b\r\nSubject: hi\r\n");
    EXPECT_EQ(message::header_section("From: a@b\r\nSubject: hi"), "From: a@b\r\nSubject: hi");
    EXPECT_EQ(message::header_section(""), "");
}

TEST(headers, header_section_empty_when_message_starts_with_empty_line) {
    EXPECT_EQ(message::header_section("\r\nFrom: not a header\r\n"), "");
}

TEST(headers, header_section_keeps_folded_fields) {
    std::string m = "Subject: a\r\n\tb\r\n  c\r\nTo: x\r\n\r\nbody";
    EXPECT_EQ(message::header_section(m), "Subject: a\r\n\tb\r\n  c\r\nTo: x\r\n");
}

TEST(headers, header_section_bare_lf_empty_line_ends_it) {
    EXPECT_EQ(message::header_section("A: 1\nB: 2\n\nbody\n"), "A: 1\nB: 2\n");
}

// RFC 5322 2.1 / Postfix: without the empty line, the first line that is neither a header field
// nor a continuation ends the section; the body is not taken for headers.
TEST(headers, header_section_ends_at_first_non_header_line_without_empty_line) {
    std::string m = "Subject: no separator\r\nSECRET BODY LINE 1\r\nSECRET BODY LINE 2\r\n";
    EXPECT_EQ(message::header_section(m), "Subject: no separator\r\n");
    // Lines that merely look header-like: a space in the name, an empty name, a name with a
    // control or 8-bit octet, no colon at all.
    EXPECT_EQ(message::header_section("A: 1\r\nnot a: header\r\nB: 2\r\n\r\n"), "A: 1\r\n");
    EXPECT_EQ(message::header_section("A: 1\r\n: empty name\r\nB: 2\r\n"), "A: 1\r\n");
    EXPECT_EQ(message::header_section("A: 1\r\nX-\x01: ctl\r\nB: 2\r\n"), "A: 1\r\n");
    EXPECT_EQ(message::header_section("A: 1\r\nS\xc3\xbc: utf8\r\nB: 2\r\n"), "A: 1\r\n");
    EXPECT_EQ(message::header_section("A: 1\r\n--boundary\r\nB: 2\r\n"), "A: 1\r\n");
    EXPECT_EQ(message::header_section("A: 1\r\nB: 2\r\nunterminated"), "A: 1\r\nB: 2\r\n");
    EXPECT_EQ(message::header_section("A: 1\nbody\nB: 2\n"), "A: 1\n");  // bare LF lines alike
}

TEST(headers, header_section_empty_when_first_line_is_not_a_header) {
    // The last two: a continuation needs a field above it.
    for (std::string_view m : {"SECRET BODY LINE 1\r\nSubject: late\r\n\r\nbody\r\n", "no colon at all",
                               " Subject: indented\r\nTo: x\r\n\r\n", "\tTo: x\r\n"})
        EXPECT_EQ(message::header_section(m), "") << m;
}

TEST(headers, header_section_keeps_folded_fields_and_obsolete_wsp_without_empty_line) {
    std::string m = "Subject: a\r\n\tb\r\n  c\r\nTo : x\r\nX-Y\t: z\r\n \r\nbody\r\n more body\r\n";
    EXPECT_EQ(message::header_section(m), "Subject: a\r\n\tb\r\n  c\r\nTo : x\r\nX-Y\t: z\r\n \r\n");
    // Names of any printable US-ASCII but ':' (RFC 5322 3.6.8 ftext), and an empty field body.
    std::string odd = "X-!#$%&'*+-./0~{|}^_`[]\"<>=?@;,(): v\r\nEmpty:\r\nbody\r\n";
    EXPECT_EQ(message::header_section(odd), odd.substr(0, odd.find("body")));
}

TEST(headers, count_received_basic_and_folded) {
    std::string m =
        "Received: from a (a [192.0.2.1])\r\n"
        "\tby b with ESMTP id X;\r\n"
        "\tThu, 01 Jan 1970 00:00:00 +0000\r\n"
        "Received: from c\r\n"
        " Received: not a new field, a continuation\r\n"
        "\treceived: neither\r\n"
        "Subject: x\r\n"
        "\r\n"
        "body\r\n";
    EXPECT_EQ(message::count_received(m), 2u);
}

TEST(headers, count_received_case_and_lookalikes) {
    std::string m =
        "received: lower case counts\r\n"
        "RECEIVED: upper case counts\r\n"
        "Received : obsolete space before colon counts\r\n"
        "X-Received: by mail.example\r\n"
        "Received-SPF: pass\r\n"
        "ARC-Received: x\r\n"
        "Received\r\n"
        "Receivedx: y\r\n"
        "\r\n";
    EXPECT_EQ(message::count_received(m), 3u);
}

TEST(headers, count_received_ignores_body) {
    std::string m =
        "Received: one\r\n"
        "Subject: forwarded\r\n"
        "\r\n"
        "Received: from inside the body\r\n"
        "Received: another\r\n";
    EXPECT_EQ(message::count_received(m), 1u);
    EXPECT_EQ(message::count_received("\r\nReceived: all body\r\n"), 0u);
}

// Loop detection counts only the header section, also when no empty line ends it: Received:
// lines in a body (a forwarded message, a mail log pasted in) do not make it look like a loop.
TEST(headers, count_received_ignores_body_without_empty_line) {
    const std::string quoted = "Received: from inside the body\r\nReceived: another\r\n";
    EXPECT_EQ(message::count_received("Received: one\r\nSubject: fwd\r\nHere is the bounce I got:\r\n" + quoted), 1u);
    EXPECT_EQ(message::count_received("body first\r\n" + quoted), 0u);

    std::string hops = "Subject: x\r\nbody\r\n";
    for (std::size_t i = 0; i <= message::default_max_received; ++i) hops += "Received: quoted hop\r\n";
    EXPECT_EQ(message::count_received(hops), 0u);
    EXPECT_FALSE(message::hop_count_exceeded(hops));
}

TEST(headers, hop_count_limit) {
    std::string m;
    for (std::size_t i = 0; i < message::default_max_received; ++i) m += "Received: hop\r\n";
    m += "\r\nbody\r\n";
    EXPECT_EQ(message::count_received(m), message::default_max_received);
    EXPECT_FALSE(message::hop_count_exceeded(m));
    m = "Received: one more\r\n" + m;
    EXPECT_TRUE(message::hop_count_exceeded(m));
    EXPECT_FALSE(message::hop_count_exceeded(m, 100));
    EXPECT_EQ(message::hop_count_status, "5.4.6");
}
