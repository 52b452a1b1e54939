// tests/unit/message/received_test.cpp - the Received: header carries the TLS facts (SPEC §2).
#include <gtest/gtest.h>

#include "message/received.hpp"

using namespace postern;

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
