// tests/unit/message/received_test.cpp - the Received: header carries the TLS facts (SPEC §2),
// and the client's names only as host-name characters (no forged clauses).
#include <gtest/gtest.h>

#include "message/received.hpp"

using namespace postern;

namespace {
message::received_facts plain(std::string_view helo) {
    message::received_facts f;
    f.helo = helo;
    f.client_ip = "192.0.2.1";
    f.by = "mx.test";
    f.id = "ABC";
    return f;
}
std::string first_line(const message::received_facts& f) {
    const std::string h = message::received_header(f);
    return h.substr(0, h.find("\r\n"));
}
}  // namespace

TEST(received, plaintext_esmtp) {
    message::received_facts f;
    f.helo = "client.test";
    f.client_ip = "127.0.0.1";
    f.by = "mx.test";
    f.id = "ABC";
    f.for_rcpt = "bob@localhost";
    f.unix_time = 0;
    EXPECT_EQ(message::received_header(f),
              "Received: from client.test (unknown [127.0.0.1])\r\n"
              "\tby mx.test (Postern) with ESMTP id ABC\r\n"
              "\tfor <bob@localhost>;\r\n"
              "\tThu, 01 Jan 1970 00:00:00 +0000\r\n");
}

TEST(received, tls_facts_and_esmtps) {
    smtp::tls_facts t{"TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256};
    message::received_facts f;
    f.helo = "c";
    f.client_ip = "::1";
    f.by = "mx";
    f.id = "X";
    f.tls = &t;
    f.unix_time = 1764339670;
    std::string h = message::received_header(f);
    EXPECT_NE(h.find("(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))"), std::string::npos) << h;
    EXPECT_NE(h.find("with ESMTPS id X;"), std::string::npos) << h;
    EXPECT_EQ(h.find("for <"), std::string::npos);
}

TEST(received, with_keywords) {
    smtp::tls_facts t{"TLSv1.2", "C", 128, 128};
    message::received_facts f;
    f.esmtp = false;
    EXPECT_NE(message::received_header(f).find("with SMTP id"), std::string::npos);
    f.esmtp = true;
    f.smtputf8 = true;
    EXPECT_NE(message::received_header(f).find("with UTF8SMTP id"), std::string::npos);
    f.tls = &t;
    EXPECT_NE(message::received_header(f).find("with UTF8SMTPS id"), std::string::npos);
}

// Found by review: HELO then STARTTLS wrote "with SMTPS", which RFC 3848 does not register.
TEST(received, helo_in_tls_is_esmtps) {
    smtp::tls_facts t{"TLSv1.3", "TLS_AES_128_GCM_SHA256", 128, 128};
    auto f = plain("client.test");
    f.esmtp = false;
    f.tls = &t;
    const std::string h = message::received_header(f);
    EXPECT_NE(h.find(") with ESMTPS id ABC"), std::string::npos) << h;
    EXPECT_EQ(h.find(" SMTPS"), std::string::npos) << h;
}

// Found by fuzz/headers: an EHLO argument may be as long as a command line (2 KB), which
// made a Received: line longer than RFC 5322's 998 octets (and our own DATA limit).
TEST(received, client_text_is_bounded_and_printable) {
    message::received_facts f;
    const std::string helo = std::string(2000, 'h') + "\x01";
    f.helo = helo;
    f.client_ip = "192.0.2.1";
    f.by = "mx";
    f.id = "X";
    std::string h = message::received_header(f);
    EXPECT_EQ(h.substr(0, h.find("\r\n")), "Received: from " + std::string(255, 'h') + " (unknown [192.0.2.1])");
    f.helo = "a\x7f\xc3\xa9";
    h = message::received_header(f);
    EXPECT_EQ(h.substr(0, h.find(" (")), "Received: from a???");
    f.smtputf8 = true;  // RFC 6532: UTF-8 in headers of an SMTPUTF8 message
    h = message::received_header(f);
    EXPECT_EQ(h.substr(0, h.find(" (")), "Received: from a?\xc3\xa9");
}

// Found by review: under SMTPUTF8 every 8-bit octet of the EHLO name reached the header: invalid
// UTF-8, C1 controls, bidi and other invisible characters that make the line read otherwise
// than it is; and the cut at 255 octets could split a character. (Each name holds U+2603,
// which IDNA2008 disallows, so it is not rewritten as A-labels and is shown as sent.)
TEST(received, utf8_names_only_visible_valid_characters) {
    auto f = plain("");
    f.smtputf8 = true;
    const auto from = [&](const std::string& helo) {
        f.helo = helo;
        const std::string l = first_line(f);
        return l.substr(15, l.find(" (unknown") - 15);  // after "Received: from "
    };
    const std::string snow = "\u2603";
    EXPECT_EQ(from(snow + "a\u00e9b"), snow + "a\u00e9b");             // valid, visible: kept
    EXPECT_EQ(from(snow + "a\xff" "b"), snow + "a?b");                // not UTF-8
    EXPECT_EQ(from(snow + "a\xc3" "b"), snow + "a?b");                // truncated sequence
    EXPECT_EQ(from(snow + "a\xc0\xaf" "b"), snow + "a??b");           // overlong '/'
    EXPECT_EQ(from(snow + "a\xed\xa0\x80" "b"), snow + "a???b");      // surrogate
    for (const char* hidden : {"\u0085", "\u009b", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069",
                               "\u200b", "\u2028", "\u00a0", "\u3000", "\ufeff", "\u00ad", "\U000e0041", "\u061c"})
        EXPECT_EQ(from(snow + "a" + hidden + "b"), snow + "a?b") << hidden;
    // Cut at 255 octets between characters, never inside one.
    std::string e;
    for (int i = 0; i < 200; ++i) e += "\u00e9";  // 2 octets each
    EXPECT_EQ(from("x" + snow + e), "x" + snow + e.substr(0, 250));    // 1 + 3 + 125 x 2 = 254
    EXPECT_EQ(from("xx" + snow + e), "xx" + snow + e.substr(0, 250));  // 2 + 3 + 125 x 2 = 255
    EXPECT_EQ(from("xxx" + snow + e), "xxx" + snow + e.substr(0, 248));  // the 125th would make 256
    // The recipient of the `for` clause: left out when it holds such a character.
    f.helo = "client.test";
    f.for_rcpt = "b\u202eob@example.test";
    EXPECT_EQ(message::received_header(f).find("\tfor"), std::string::npos);
    f.for_rcpt = "b\u00f6b@example.test";
    EXPECT_NE(message::received_header(f).find("\tfor <b\u00f6b@example.test>;"), std::string::npos);
}

// A plaintext client must not write TLS facts or a `with` clause of its own into our trace:
// like Postfix, the HELO name keeps only letters, digits and "-._:[]" ('?' for the rest).
TEST(received, helo_cannot_forge_clauses) {
    auto f = plain("x (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) by mx (Postern) with ESMTPS id "
                   "0; Thu, 1 Jan 2026 00:00:00 +0000");
    EXPECT_EQ(message::received_header(f),
              "Received: from "
              "x??using?TLSv1.3?with?cipher?TLS_AES_256_GCM_SHA384??256?256?bits???by?mx??Postern??with?ESMTPS?id?0?"
              "?Thu??1?Jan?2026?00:00:00??0000 (unknown [192.0.2.1])\r\n"
              "\tby mx.test (Postern) with ESMTP id ABC;\r\n"
              "\tThu, 01 Jan 1970 00:00:00 +0000\r\n");
    // What host names and address literals are made of stays as sent.
    f.helo = "[IPv6:2001:db8::1]";
    EXPECT_EQ(first_line(f), "Received: from [IPv6:2001:db8::1] (unknown [192.0.2.1])");
    f.helo = "Mail-1.example_host.TEST";
    EXPECT_EQ(first_line(f), "Received: from Mail-1.example_host.TEST (unknown [192.0.2.1])");
    for (const char* bad : {"a b", "a(b", "a)b", "a;b", "a<b", "a>b", "a@b", "a\"b", "a\\b", "a,b", "a/b", "a=b", "a\tb"}) {
        f.helo = bad;
        EXPECT_EQ(first_line(f), "Received: from a?b (unknown [192.0.2.1])") << bad;
    }
}

// The client's host name (forward-confirmed reverse DNS) goes in the parentheses, under the
// same rule as the HELO name.
TEST(received, client_name) {
    auto f = plain("client.test");
    f.client_name = "mail.Client.test";
    EXPECT_EQ(first_line(f), "Received: from client.test (mail.Client.test [192.0.2.1])");
    f.client_name = "a (b";
    EXPECT_EQ(first_line(f), "Received: from client.test (a??b [192.0.2.1])");
}

// A quoted local part can hold spaces, parentheses and ';': the optional `for` clause is then
// left out rather than let the client write "(using TLSv1.3) with ESMTPS" into our trace.
TEST(received, recipient_cannot_forge_clauses) {
    auto f = plain("client.test");
    f.for_rcpt = "\"(using TLSv1.3) with ESMTPS id 1;\"@localhost";
    const std::string h = message::received_header(f);
    EXPECT_EQ(h.find("ESMTPS"), std::string::npos) << h;
    EXPECT_EQ(h.find(" for "), std::string::npos) << h;
    EXPECT_EQ(h.find("\tfor"), std::string::npos) << h;
    // Plain addresses, address literals and (in an SMTPUTF8 message) UTF-8 keep the clause.
    for (const char* ok : {"bob@localhost", "o'brien+tag@example.test", "a@[IPv6:2001:db8::1]", "x=y/z@b.test"}) {
        f.for_rcpt = ok;
        EXPECT_NE(message::received_header(f).find(std::string("\tfor <") + ok + ">;"), std::string::npos) << ok;
    }
    f.for_rcpt = "δοκιμή@example.test";
    EXPECT_EQ(message::received_header(f).find("\tfor"), std::string::npos);
    f.smtputf8 = true;
    EXPECT_NE(message::received_header(f).find("\tfor <δοκιμή@example.test>;"), std::string::npos);
}

// RFC 6531 3.2: a recipient or EHLO name whose only non-ASCII part is a domain is written with
// the A-labels (the same name), so the header does not make the message need SMTPUTF8 at a
// next hop without it; a UTF-8 local part stays as written (SMTPUTF8 message only).
TEST(received, u_label_domains_written_as_a_labels) {
    auto f = plain("B\u00fccher.test");
    f.smtputf8 = true;
    f.for_rcpt = "bob@B\u00dcCHER.test";
    const std::string h = message::received_header(f);
    EXPECT_EQ(first_line(f), "Received: from xn--bcher-kva.test (unknown [192.0.2.1])");
    EXPECT_NE(h.find("\tfor <bob@xn--bcher-kva.test>;"), std::string::npos) << h;
    f.for_rcpt = "b\u00f6b@b\u00fccher.test";
    EXPECT_NE(message::received_header(f).find("\tfor <b\u00f6b@b\u00fccher.test>;"), std::string::npos);
    f.smtputf8 = false;  // cannot be (the session refuses non-ASCII without SMTPUTF8): no clause
    EXPECT_EQ(message::received_header(f).find("\tfor"), std::string::npos);
}

// RFC 5321 4.4: the TCP-info address literal of an IPv6 client carries the "IPv6:" tag.
TEST(received, ipv6_client_address_literal) {
    auto f = plain("client.test");
    f.client_ip = "2001:db8::1";
    EXPECT_EQ(first_line(f), "Received: from client.test (unknown [IPv6:2001:db8::1])");
    f.client_ip = "::1";
    EXPECT_EQ(first_line(f), "Received: from client.test (unknown [IPv6:::1])");
}
