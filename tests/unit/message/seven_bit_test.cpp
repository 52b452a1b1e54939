// tests/unit/message/seven_bit_test.cpp - 8-bit MIME content made 7-bit for a next hop without
// 8BITMIME (message/seven_bit.hpp; RFC 6152 3, RFC 2045 6.7, RFC 2046 5.1), and what is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "message/seven_bit.hpp"

using namespace postern;

namespace {

bool ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// RFC 2045 6.7 decoding: soft line breaks removed, =XX as the octet.
std::string decode_qp(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '=') {
            out += s[i];
            continue;
        }
        if (s.substr(i + 1, 2) == "\r\n") {
            i += 2;
            continue;
        }
        out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
        i += 2;
    }
    return out;
}

std::string converted(std::string_view content, std::string_view by = "") {
    auto r = message::to_seven_bit(content, by);
    EXPECT_TRUE(r.content) << r.why;
    return r.content.value_or("");
}

std::string refused(std::string_view content) {
    auto r = message::to_seven_bit(content, "");
    EXPECT_FALSE(r.content) << *r.content;
    return r.why;
}

}  // namespace

TEST(SevenBit, APlainMessageBecomesMimeQuotedPrintable) {
    EXPECT_EQ(converted("From: a@b.test\r\nSubject: hi\r\n\r\nGr\xc3\xbc\xc3\x9f" "e = 1\r\nok\r\n", "mx.test"),
              "From: a@b.test\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"  // said: it would read as US-ASCII
              "Content-Transfer-Encoding: quoted-printable\r\n"
              "X-MIME-Autoconverted: from 8bit to quoted-printable by mx.test\r\n\r\n"
              "Gr=C3=BC=C3=9Fe =3D 1\r\nok\r\n");
}

// Postfix's trace field names the queue id too; the field is folded before it (RFC 5322 2.2.3)
// so that its lines stay within 78 characters.
TEST(SevenBit, TheTraceFieldNamesTheQueueIdOnAFoldedLine) {
    auto r = message::to_seven_bit("Subject: hi\r\n\r\nGr\xc3\xbc\xc3\x9f" "e\r\n", "relay.example.test",
                                   "6A1B2C3D4E5F00001");
    ASSERT_TRUE(r.content) << r.why;
    EXPECT_NE(r.content->find("\r\nX-MIME-Autoconverted: from 8bit to quoted-printable by relay.example.test\r\n"
                              "\tid 6A1B2C3D4E5F00001\r\n\r\nGr=C3=BC=C3=9Fe\r\n"),
              std::string::npos)
        << *r.content;
}

TEST(SevenBit, An8bitLabelIsReplacedAndMimeVersionNotRepeated) {
    EXPECT_EQ(converted("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        "Content-Transfer-Encoding:\r\n 8BIT\r\nSubject: x\r\n\r\n\xc3\xa9\r\n"),
              "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nSubject: x\r\n"
              "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A9\r\n");
}

TEST(SevenBit, SevenBitContentGoesAsItCame) {
    const std::string m = "Subject: x\r\nContent-Transfer-Encoding: 8bit\r\n\r\nplain\r\n";
    EXPECT_EQ(converted(m), m);
}

TEST(SevenBit, OnlyThe8BitPartsOfAMultipartAreConverted) {
    const std::string in =
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "preamble\r\n"
        "--b1\r\nContent-Type: text/plain\r\n\r\nascii part\r\n"
        "--b1x\r\n"  // not a delimiter: a longer line starting with it
        "--b1 \r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "\xc3\xa9t\xc3\xa9\r\n"
        "--b1--\r\nepilogue\r\n";
    const std::string out = converted(in);
    EXPECT_TRUE(ascii(out));
    EXPECT_EQ(out,
              "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n"
              "Content-Transfer-Encoding: 7bit\r\n\r\n"
              "preamble\r\n"
              "--b1\r\nContent-Type: text/plain\r\n\r\nascii part\r\n"
              "--b1x\r\n"
              "--b1 \r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
              "=C3=A9t=C3=A9\r\n"
              "--b1--\r\nepilogue\r\n");
}

TEST(SevenBit, AnAttachedMessageIsConvertedInside) {
    const std::string in =
        "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
        "--outer\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Subject: inner\r\n\r\n\xc3\xbc\r\n"
        "--outer--\r\n";
    EXPECT_EQ(converted(in),
              "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
              "--outer\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
              "Subject: inner\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=BC\r\n"
              "--outer--\r\n");
}

TEST(SevenBit, ADigestsPartsAreMessages) {
    // RFC 2046 5.1.5: a part without Content-Type in a digest is message/rfc822.
    const std::string out = converted(
        "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: m\r\n\r\n\xc3\xbc\r\n--d--\r\n");
    EXPECT_NE(out.find("--d\r\n\r\nSubject: m\r\nMIME-Version: 1.0\r\n"), std::string::npos) << out;
    EXPECT_TRUE(ascii(out));
}

TEST(SevenBit, AMultipartCutShortHasItsLastPartConverted) {
    const std::string out = converted("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n\xc3\xbc\r\n");
    EXPECT_EQ(out, "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=BC\r\n");
}

TEST(SevenBit, WhatCannotBeMade7BitIsRefused) {
    EXPECT_EQ(refused("Subject: Gr\xc3\xbc\r\n\r\nx\r\n"), "8-bit octets in a header section");
    EXPECT_EQ(refused("Content-Transfer-Encoding: base64\r\n\r\n\xc3\xbc\r\n"), "8-bit octets in a body labelled base64");
    EXPECT_EQ(refused("Content-Transfer-Encoding: quoted-printable\r\n\r\n\xc3\xbc\r\n"),
              "8-bit octets in a body labelled quoted-printable");
    EXPECT_EQ(refused("Content-Type: message/delivery-status\r\n\r\n\xc3\xbc\r\n"),
              "8-bit octets in a message/delivery-status part");
    EXPECT_EQ(refused("Content-Type: message/global-headers\r\nContent-Transfer-Encoding: base64\r\n\r\n\xc3\xbc\r\n"),
              "8-bit octets in a body labelled base64");
    EXPECT_EQ(refused("Content-Type: multipart/mixed\r\n\r\n\xc3\xbc\r\n"),
              "8-bit octets in a multipart without a boundary");
    EXPECT_EQ(refused("Content-Type: multipart/mixed; boundary=b\r\n\r\n\xc3\xbc\r\n"),
              "8-bit octets in a multipart without its boundary");
    EXPECT_EQ(refused("Content-Type: multipart/mixed; boundary=b\r\n\r\n\xc3\xbc\r\n--b\r\n\r\nx\r\n--b--\r\n"),
              "8-bit octets in a multipart preamble");
    EXPECT_EQ(refused("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n\xc3\xbc\r\n"),
              "8-bit octets in a multipart epilogue");
    EXPECT_EQ(refused("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nSubject: \xc3\xbc\r\n\r\nx\r\n--b--\r\n"),
              "8-bit octets in a header section");
    std::string deep;
    for (int i = 0; i < 110; ++i) deep += "Content-Type: message/rfc822\r\n\r\n";
    deep += "\r\n\xc3\xbc\r\n";
    EXPECT_EQ(refused(deep), "MIME parts nested too deeply");
}

// RFC 6532 3.7, RFC 6533 6: the global types may be quoted-printable on a 7-bit path, so a
// global bounce (SMTPUTF8 original) reaches a sender's server without 8BITMIME.
TEST(SevenBit, TheGlobalTypesAreMadeQuotedPrintable) {
    const std::string in =
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=global-delivery-status;\r\n"
        "\tboundary=\"r\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "--r\r\nContent-Type: message/global-delivery-status\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Final-Recipient: utf-8; j\xc3\xb6rg@example.test\r\n"
        "--r\r\nContent-Type: message/global-headers\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\n"
        "--r\r\nContent-Type: message/global\r\n\r\nSubject: \xc3\xbc\r\n\r\nx\r\n"
        "--r--\r\n";
    const std::string out = converted(in);
    EXPECT_TRUE(ascii(out)) << out;
    EXPECT_EQ(out,
              "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=global-delivery-status;\r\n"
              "\tboundary=\"r\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
              "--r\r\nContent-Type: message/global-delivery-status\r\n"
              "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
              "Final-Recipient: utf-8; j=C3=B6rg@example.test\r\n"
              "--r\r\nContent-Type: message/global-headers\r\n"
              "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
              "Subject: Gr=C3=BC=C3=9Fe\r\n"
              "--r\r\nContent-Type: message/global\r\n"
              "Content-Transfer-Encoding: quoted-printable\r\n\r\nSubject: =C3=BC\r\n\r\nx\r\n"
              "--r--\r\n");
}

TEST(SevenBit, QuotedPrintableLinesAreShortAndDecodeToTheOriginal) {
    std::string body;
    for (int line = 0; line < 50; ++line) {
        for (int i = 0; i < line * 7; ++i) body += static_cast<char>((i * 37 + line * 11) % 256 == '\n' ? 'x' : (i * 37 + line * 11) % 256);
        if (line % 3 == 0) body += " \t";  // whitespace ending a line is encoded
        body += "\r\n";
    }
    std::string out;
    message::quoted_printable(body, out);
    EXPECT_TRUE(ascii(out));
    for (std::size_t pos = 0; pos < out.size();) {
        const std::size_t end = out.find("\r\n", pos);
        ASSERT_NE(end, std::string::npos);
        const std::string_view line(out.data() + pos, end - pos);
        EXPECT_LE(line.size(), 76u) << line;
        if (!line.empty()) {
            EXPECT_NE(line.back(), ' ') << line;
            EXPECT_NE(line.back(), '\t') << line;
        }
        pos = end + 2;
    }
    // A bare CR inside a line is data (=0D), not a line end; the decoded text is the original.
    EXPECT_EQ(decode_qp(out), body);
}

TEST(SevenBit, QuotedPrintableEndsEveryLineWithCrlf) {
    std::string out;
    message::quoted_printable("a\nb\xff", out);
    EXPECT_EQ(out, "a\r\nb=FF\r\n");
    out.clear();
    message::quoted_printable("a\r\nb\r", out);  // a CR ending the content is data, not a line end
    EXPECT_EQ(out, "a\r\nb=0D\r\n");
    out.clear();
    message::quoted_printable(std::string(80, 'a'), out);
    EXPECT_EQ(out, std::string(75, 'a') + "=\r\n" + std::string(5, 'a') + "\r\n");
    out.clear();
    message::quoted_printable(std::string(76, 'a'), out);  // exactly 76: no soft break needed
    EXPECT_EQ(out, std::string(76, 'a') + "\r\n");
}

TEST(SevenBit, TheCharsetOfTextWithoutContentTypeIsSaid) {
    // RFC 1428: 8-bit text of unknown charset is "unknown-8bit"; valid UTF-8 is said to be UTF-8.
    EXPECT_NE(converted("Subject: x\r\n\r\nGr\xfc\xdf" "e\r\n").find("Content-Type: text/plain; charset=unknown-8bit\r\n"),
              std::string::npos);
    EXPECT_NE(converted("Subject: x\r\n\r\n\xc3\xa9\r\n").find("Content-Type: text/plain; charset=utf-8\r\n"),
              std::string::npos);
    // A Content-Type given is kept as it is, and none is added.
    const std::string out = converted("Content-Type: text/plain; charset=iso-8859-1\r\n\r\n\xe9\r\n");
    EXPECT_EQ(out.find("Content-Type:"), out.rfind("Content-Type:"));
}

TEST(SevenBit, BinaryIsMadeQuotedPrintable) {
    EXPECT_EQ(converted("Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x01\xff\r\n"),
              "Content-Type: application/octet-stream\r\nMIME-Version: 1.0\r\n"
              "Content-Transfer-Encoding: quoted-printable\r\n\r\n=01=FF\r\n");
}

TEST(SevenBit, AnInvalidTypeInADigestIsText) {
    // RFC 2045 5.2: an invalid Content-Type is text/plain, not the digest's default.
    const std::string out = converted(
        "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\nContent-Type: garbage\r\n\r\nh\xc3\xa9\r\n--d--\r\n");
    EXPECT_EQ(out, "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\nContent-Type: garbage\r\n"
                   "Content-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9\r\n--d--\r\n");
}

TEST(SevenBit, BoundaryParameters) {
    // A parameter without a value before it, a ";" inside quotes, upper case, the first of two.
    for (const char* type : {"multipart/mixed; format; boundary=\"b\"", "multipart/mixed; x=\"a;b\"; BOUNDARY=b",
                             "multipart/mixed;\r\n boundary=b; boundary=c"}) {
        SCOPED_TRACE(type);
        const std::string in = std::string("Content-Type: ") + type +
                               "\r\n\r\n--b\r\n\r\n\xc3\xa9\r\n--b--\r\n";
        EXPECT_NE(converted(in).find("--b\r\nContent-Type: text/plain; charset=utf-8\r\n"), std::string::npos);
    }
}

TEST(SevenBit, ASoftBreakNeverStartsABoundaryLine) {
    // A long line with "--b" where the soft break falls: the next line must not read "--b".
    const std::string line = "\xc3\xa9" + std::string(69, 'x') + "--b";
    const std::string out = converted("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
                                      "Content-Transfer-Encoding: 8bit\r\n\r\n" + line + "\r\n--b--\r\n");
    EXPECT_EQ(out.find("\r\n--b\r\n", out.find("quoted-printable")), std::string::npos) << out;
    EXPECT_NE(out.find("=\r\n=2D-b\r\n"), std::string::npos) << out;
}
