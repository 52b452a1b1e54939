// tests/unit/smtp/client_session_test.cpp - smtp::client_session up to ready: greeting,
// EHLO/HELO (RFC 5321 4.1.1.1, 3.2), capabilities, STARTTLS (RFC 3207) and the response
// injection defence, reply bounds, EOF, timeouts and QUIT.
#include <gtest/gtest.h>

#include "client_driver.hpp"

namespace postern::smtp::test {
namespace {

using kind = client_failure::kind;

TEST(SmtpClientSession, WaitsForTheGreetingFirst) {
    client_driver d;
    EXPECT_EQ(d.run(), client_event::need_input);
    EXPECT_EQ(d.take(), "");
    EXPECT_EQ(d.c.state(), client_state::greeting);
    EXPECT_EQ(d.feed("220 mx.example.test ESMTP Postfix\r\n"), client_event::need_input);
    EXPECT_EQ(d.take(), "EHLO client.test\r\n");
    EXPECT_EQ(d.c.state(), client_state::ehlo);
    EXPECT_EQ(d.feed(full_ehlo), client_event::ehlo_done);
    EXPECT_EQ(d.c.caps().greeting, "mx.example.test ESMTP Postfix");
    EXPECT_EQ(d.run(), client_event::ehlo_done);  // sticky until the driver decides
    d.c.proceed();
    EXPECT_EQ(d.run(), client_event::ready);
    EXPECT_EQ(d.run(), client_event::ready);
    EXPECT_EQ(d.c.state(), client_state::ready);
    EXPECT_FALSE(d.c.tls_active());
    EXPECT_EQ(d.take(), "");
}

TEST(SmtpClientSession, GreetingRefused) {
    for (std::string_view g : {"554 5.7.1 No SMTP service here\r\n", "450 busy\r\n",
                               "554-mx.example.test\r\n554 go away\r\n"}) {
        client_driver d;
        EXPECT_EQ(d.feed(g), client_event::failed) << g;
        EXPECT_EQ(d.c.failure().what, kind::greeting_refused);
        ASSERT_TRUE(d.c.failure().last_reply);
        EXPECT_EQ(d.c.failure().last_reply->code, g[0] == '5' ? 554 : 450);
        EXPECT_FALSE(d.c.failure().during_final_reply);
        EXPECT_EQ(d.c.state(), client_state::greeting);
        EXPECT_EQ(d.take(), "");  // no EHLO
        EXPECT_EQ(d.run(), client_event::failed);
        // RFC 5321 3.1: after 554 the client sends QUIT.
        d.c.quit();
        EXPECT_EQ(d.run(), client_event::need_input);
        EXPECT_EQ(d.take(), "QUIT\r\n");
        EXPECT_EQ(d.feed("221 bye\r\n"), client_event::closed);
        EXPECT_EQ(d.c.state(), client_state::done);
    }
    client_driver d;
    EXPECT_EQ(d.feed("554 5.7.1 No SMTP service here\r\n"), client_event::failed);
    EXPECT_EQ(d.c.failure().last_reply->enhanced, "5.7.1");
    EXPECT_EQ(d.c.failure().last_reply->lines, std::vector<std::string>{"No SMTP service here"});
}

TEST(SmtpClientSession, Greeting421ClosesWithoutQuit) {
    client_driver d;
    EXPECT_EQ(d.feed("421 4.3.2 shutting down\r\n"), client_event::failed);
    EXPECT_EQ(d.c.failure().what, kind::greeting_refused);
    d.c.quit();  // RFC 5321 3.8: the server has closed
    EXPECT_EQ(d.run(), client_event::closed);
    EXPECT_EQ(d.take(), "");
}

TEST(SmtpClientSession, EhloRefusedFallsBackToHelo) {
    for (std::string_view refusal : {"500 5.5.2 command unrecognized\r\n",
                                     "502 5.5.1 not implemented\r\n", "550 no\r\n"}) {
        client_driver d;
        d.run();
        d.feed("220 old.example.test SMTP\r\n");
        EXPECT_EQ(d.take(), "EHLO client.test\r\n");
        EXPECT_EQ(d.feed(refusal), client_event::need_input);
        EXPECT_EQ(d.take(), "HELO client.test\r\n");
        EXPECT_EQ(d.c.state(), client_state::helo);
        EXPECT_EQ(d.feed("250 old.example.test\r\n"), client_event::ehlo_done);
        EXPECT_FALSE(d.c.caps().esmtp);
        EXPECT_FALSE(d.c.caps().pipelining);
        EXPECT_FALSE(d.c.caps().size);
        EXPECT_EQ(d.c.caps().greeting, "old.example.test SMTP");
        EXPECT_EQ(d.c.state(), client_state::helo);
        d.c.proceed();
        EXPECT_EQ(d.run(), client_event::ready);
        // Without EHLO: no MAIL parameters, one command at a time.
        d.c.send_message(test_message({"bob@example.test"}));
        EXPECT_EQ(d.run(), client_event::need_input);
        EXPECT_EQ(d.take(), "MAIL FROM:<alice@sender.test>\r\n");
    }
}

TEST(SmtpClientSession, HeloRefused) {
    client_driver d;
    d.run();
    d.feed("220 mx\r\n");
    d.feed("502 no EHLO\r\n");
    EXPECT_EQ(d.take(), "EHLO client.test\r\nHELO client.test\r\n");
    EXPECT_EQ(d.feed("550 5.7.1 go away\r\n"), client_event::failed);
    EXPECT_EQ(d.c.failure().what, kind::helo_refused);
    EXPECT_EQ(d.c.failure().last_reply->code, 550);
    EXPECT_EQ(d.c.state(), client_state::helo);
}

TEST(SmtpClientSession, EhloTemporaryRefusalDoesNotFallBack) {
    for (std::string_view refusal : {"421 4.7.0 closing\r\n", "451 4.3.0 try later\r\n"}) {
        client_driver d;
        d.run();
        d.feed("220 mx\r\n");
        d.take();
        EXPECT_EQ(d.feed(refusal), client_event::failed);
        EXPECT_EQ(d.take(), "");
        EXPECT_EQ(d.c.failure().what, kind::helo_refused);
        EXPECT_TRUE(d.c.failure().last_reply->transient());
        EXPECT_EQ(d.c.state(), client_state::ehlo);
    }
}

TEST(SmtpClientSession, CapabilitiesParsedCaseInsensitively) {
    client_driver d;
    d.run();
    d.feed("220 mx\r\n");
    EXPECT_EQ(d.feed("250-mx.example.test Hello client.test [192.0.2.1]\r\n250-starttls\r\n"
                     "250-Pipelining\r\n250-8bitmime\r\n250-SIZE 35882577\r\n250-smtputf8\r\n"
                     "250-EnhancedStatusCodes\r\n250-AUTH PLAIN LOGIN\r\n250-DSN\r\n250 chunking\r\n"),
              client_event::ehlo_done);
    const auto& c = d.c.caps();
    EXPECT_TRUE(c.esmtp);
    EXPECT_TRUE(c.starttls);
    EXPECT_TRUE(c.pipelining);
    EXPECT_TRUE(c.eight_bit_mime);
    EXPECT_TRUE(c.smtputf8);
    EXPECT_TRUE(c.enhanced_status_codes);
    EXPECT_TRUE(c.chunking);
    ASSERT_TRUE(c.size);
    EXPECT_EQ(*c.size, 35882577u);
}

TEST(SmtpClientSession, CapabilitiesAbsentOrOdd) {
    struct row {
        std::string_view ehlo;
        std::optional<std::uint64_t> size;
        bool starttls;
    };
    const row rows[] = {
        {"250 mx.example.test\r\n", std::nullopt, false},  // single line: no extensions
        {"250-mx\r\n250 SIZE\r\n", 0, false},              // no fixed limit
        {"250-mx\r\n250 SIZE abc\r\n", 0, false},
        {"250-mx\r\n250 SIZE 99999999999999999999999\r\n", 0, false},
        {"250-STARTTLS\r\n250 SIZE 0\r\n", 0, false},      // first line is the domain
        {"250-mx\r\n250 STARTTLSX\r\n", std::nullopt, false},
        {"250-mx\r\n250 STARTTLS \r\n", std::nullopt, true},
    };
    for (const auto& r : rows) {
        client_driver d;
        d.run();
        d.feed("220 mx\r\n");
        ASSERT_EQ(d.feed(r.ehlo), client_event::ehlo_done) << r.ehlo;
        EXPECT_EQ(d.c.caps().size, r.size) << r.ehlo;
        EXPECT_EQ(d.c.caps().starttls, r.starttls) << r.ehlo;
        EXPECT_FALSE(d.c.caps().pipelining);
    }
}

// Greeting, EHLO advertising STARTTLS, STARTTLS accepted: the session waits for the handshake.
void to_handshake(client_driver& d, std::string_view ehlo, std::string_view reply_220) {
    d.run();
    d.feed("220 mx.example.test ESMTP\r\n");
    ASSERT_EQ(d.feed(ehlo), client_event::ehlo_done);
    ASSERT_TRUE(d.c.caps().starttls);
    d.take();
    d.c.starttls();
    ASSERT_EQ(d.run(), client_event::need_input);
    EXPECT_EQ(d.take(), "STARTTLS\r\n");
    EXPECT_EQ(d.c.state(), client_state::starttls);
    ASSERT_EQ(d.feed(reply_220), client_event::start_tls);
    EXPECT_EQ(d.c.state(), client_state::tls_handshake);
    EXPECT_EQ(d.run(), client_event::start_tls);  // sticky until tls_started()
    EXPECT_FALSE(d.c.tls_active());
}

TEST(SmtpClientSession, StarttlsHappyPath) {
    client_driver d;
    to_handshake(d, full_ehlo, "220 2.0.0 Ready to start TLS\r\n");
    d.c.tls_started();
    EXPECT_TRUE(d.c.tls_active());
    EXPECT_EQ(d.run(), client_event::need_input);
    EXPECT_EQ(d.take(), "EHLO client.test\r\n");  // RFC 3207 4.2
    EXPECT_EQ(d.c.state(), client_state::ehlo);
    EXPECT_EQ(d.feed("250-mx.example.test\r\n250-PIPELINING\r\n250 SIZE 20000\r\n"),
              client_event::ehlo_done);
    EXPECT_TRUE(d.c.tls_active());
    EXPECT_FALSE(d.c.caps().starttls);
    EXPECT_FALSE(d.c.caps().eight_bit_mime);  // forgotten: not in the new EHLO
    EXPECT_EQ(d.c.caps().size, 20000u);
    EXPECT_EQ(d.c.caps().greeting, "mx.example.test ESMTP");
    d.c.proceed();
    EXPECT_EQ(d.run(), client_event::ready);
}

TEST(SmtpClientSession, StarttlsRefused) {
    client_driver d;
    d.run();
    d.feed("220 mx\r\n");
    d.feed(full_ehlo);
    d.c.starttls();
    d.run();
    EXPECT_EQ(d.feed("454 4.7.0 TLS not available due to temporary reason\r\n"), client_event::failed);
    EXPECT_EQ(d.c.failure().what, kind::starttls_refused);
    EXPECT_EQ(d.c.failure().last_reply->code, 454);
    EXPECT_EQ(d.c.state(), client_state::starttls);
    EXPECT_FALSE(d.c.tls_active());
    // SPEC 1.2: mandatory TLS sends QUIT and tries the next MX.
    d.take();
    d.c.quit();
    EXPECT_EQ(d.run(), client_event::need_input);
    EXPECT_EQ(d.take(), "QUIT\r\n");
    EXPECT_EQ(d.feed("221 2.0.0 Bye\r\n"), client_event::closed);
}

TEST(SmtpClientSession, StarttlsAnsweredWithOtherPositiveCodeIsRefused) {
    client_driver d;
    d.run();
    d.feed("220 mx\r\n");
    d.feed(full_ehlo);
    d.c.starttls();
    d.run();
    EXPECT_EQ(d.feed("250 ok\r\n"), client_event::failed);
    EXPECT_EQ(d.c.failure().what, kind::starttls_refused);
}

TEST(SmtpClientSession, EofAfterStarttls) {
    client_driver d;
    d.run();
    d.feed("220 mx\r\n");
    d.feed(full_ehlo);
    d.c.starttls();
    d.run();
    EXPECT_EQ(d.eof(), client_event::failed);
    EXPECT_EQ(d.c.failure().what, kind::connection_lost);
    EXPECT_EQ(d.c.state(), client_state::starttls);  // the driver counts a failed handshake
    EXPECT_FALSE(d.c.failure().last_reply);
    d.c.quit();
    EXPECT_EQ(d.run(), client_event::closed);
}

TEST(SmtpClientSession, ResponseInjectionAfterStarttlsIsDiscarded) {
    client_driver d;
    // The plaintext EHLO advertises a tiny SIZE and PIPELINING; the injected "250 fake"
    // follows the 220 in the same segment.
    to_handshake(d,
                 "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10\r\n250-SMTPUTF8\r\n"
                 "250 STARTTLS\r\n",
                 "220 Ready\r\n250 fake\r\n");
    d.c.feed("250-more fake\r\n250 PIPELINING\r\n");  // plaintext during the handshake
    d.c.tls_started();
    EXPECT_EQ(d.c.caps().size, std::nullopt);
    EXPECT_FALSE(d.c.caps().pipelining);
    // The injected replies are not taken as the reply to the new EHLO.
    EXPECT_EQ(d.run(), client_event::need_input);
    EXPECT_EQ(d.take(), "EHLO client.test\r\n");
    EXPECT_EQ(d.feed("250-mx.example.test\r\n250 8BITMIME\r\n"), client_event::ehlo_done);
    EXPECT_FALSE(d.c.caps().pipelining);
    EXPECT_FALSE(d.c.caps().size);
    EXPECT_FALSE(d.c.caps().smtputf8);
    EXPECT_TRUE(d.c.caps().eight_bit_mime);
    d.c.proceed();
    d.run();
    // A message bigger than the pre-TLS "SIZE 10" goes, one command at a time, no SIZE=.
    d.c.send_message(test_message({"bob@example.test", "carol@example.test"}));
    EXPECT_EQ(d.run(), client_event::need_input);
    EXPECT_EQ(d.take(), "MAIL FROM:<alice@sender.test>\r\n");
}

TEST(SmtpClientSession, UnsolicitedDataIsAProtocolError) {
    {
        client_driver d;
        d.run();
        EXPECT_EQ(d.feed("220 mx\r\n250 early\r\n"), client_event::failed);
        EXPECT_EQ(d.c.failure().what, kind::protocol_error);
        EXPECT_EQ(d.take(), "");
    }
    {
        client_driver d;
        d.run();
        d.feed("220 mx\r\n");
        EXPECT_EQ(d.feed("250-mx\r\n250 PIPELINING\r\n250 extra\r\n"), client_event::failed);
        EXPECT_EQ(d.c.failure().what, kind::protocol_error);
        EXPECT_EQ(d.c.state(), client_state::ehlo);
    }
}

TEST(SmtpClientSession, UnparsableReply) {
    for (std::string_view bad : {"hello\r\n", "2500 x\r\n", "250-a\r\n354 b\r\n", "099 x\r\n"}) {
        client_driver d;
        d.run();
        EXPECT_EQ(d.feed(bad), client_event::failed) << bad;
        EXPECT_EQ(d.c.failure().what, kind::protocol_error);
        EXPECT_FALSE(d.c.failure().detail.empty());
        EXPECT_FALSE(d.c.failure().last_reply);
    }
}

TEST(SmtpClientSession, OversizeReplyLine) {
    client_driver d;  // max_reply_line 512
    d.run();
    d.feed("220 mx\r\n");
    EXPECT_EQ(d.feed("250-" + std::string(300, 'x')), client_event::need_input);
    // Refused once 512 octets are buffered, without waiting for the LF.
    EXPECT_EQ(d.feed(std::string(300, 'x')), client_event::failed);
    EXPECT_EQ(d.c.failure().what, kind::protocol_error);
    EXPECT_EQ(d.c.failure().detail, "reply line too long (waiting for the reply to EHLO)");
    EXPECT_EQ(d.c.state(), client_state::ehlo);
}

TEST(SmtpClientSession, EndlessMultiLineReply) {
    client_driver d;  // max_reply_lines 20
    d.run();
    d.feed("220 mx\r\n");
    client_event ev = client_event::need_input;
    int fed = 0;
    while (ev == client_event::need_input && fed < 1000) {
        ev = d.feed("250-EXTENSION\r\n");
        ++fed;
    }
    EXPECT_EQ(ev, client_event::failed);
    EXPECT_EQ(fed, 21);
    EXPECT_EQ(d.c.failure().what, kind::protocol_error);
}

TEST(SmtpClientSession, EofAndTimeoutBeforeReady) {
    {
        client_driver d;
        d.run();
        EXPECT_EQ(d.eof(), client_event::failed);
        EXPECT_EQ(d.c.failure().what, kind::connection_lost);
        EXPECT_EQ(d.c.state(), client_state::greeting);
        EXPECT_FALSE(d.c.failure().during_final_reply);
        d.c.quit();
        EXPECT_EQ(d.run(), client_event::closed);
        EXPECT_EQ(d.take(), "");
    }
    {
        client_driver d;
        d.run();
        d.feed("220 mx\r\n");
        d.feed("250-mx\r\n250-PIPELI");  // a partial reply, then the timer fires
        d.c.timeout();
        EXPECT_EQ(d.run(), client_event::failed);
        EXPECT_EQ(d.c.failure().what, kind::timeout);
        EXPECT_EQ(d.c.state(), client_state::ehlo);
        EXPECT_FALSE(d.c.failure().during_final_reply);
    }
    {
        client_driver d;  // buffered replies are read before the EOF counts
        d.run();
        d.c.feed("220 mx\r\n");
        d.c.feed_eof();
        EXPECT_EQ(d.run(), client_event::failed);
        EXPECT_EQ(d.take(), "EHLO client.test\r\n");
        EXPECT_EQ(d.c.state(), client_state::ehlo);
    }
}

TEST(SmtpClientSession, QuitFromEhloDone) {
    client_driver d;
    d.run();
    d.feed("220 mx\r\n");
    d.feed(plain_ehlo);  // e.g. mandatory TLS but no STARTTLS: SPEC 1.2
    d.take();
    d.c.quit();
    EXPECT_EQ(d.run(), client_event::need_input);
    EXPECT_EQ(d.take(), "QUIT\r\n");
    EXPECT_EQ(d.c.state(), client_state::quit);
    EXPECT_EQ(d.eof(), client_event::closed);  // EOF instead of 221 is fine
    EXPECT_EQ(d.c.state(), client_state::done);
    EXPECT_EQ(d.run(), client_event::closed);
}

TEST(SmtpClientSession, QuitReplyOfAnyKindCloses) {
    for (std::string_view r : {"221 2.0.0 Bye\r\n", "500 what\r\n", "garbage\r\n"}) {
        client_driver d;
        d.connect();
        d.c.quit();
        EXPECT_EQ(d.run(), client_event::need_input);
        EXPECT_EQ(d.take(), "QUIT\r\n");
        EXPECT_EQ(d.feed(r), client_event::closed) << r;
    }
    client_driver d;
    d.connect();
    d.c.quit();
    d.run();
    d.c.timeout();
    EXPECT_EQ(d.run(), client_event::closed);
}

TEST(SmtpClientSession, CountsCompleteRepliesOnly) {
    // outbound/attempt.cpp times each reply as a whole (RFC 5321 4.5.3.2), restarting its
    // clock only when this count moves: a reply trickled byte by byte, or a multi-line reply
    // line by line, counts once, when its last line is complete.
    client_driver d;
    d.run();
    EXPECT_EQ(d.c.replies_received(), 0u);
    for (char ch : std::string_view("220-mx.example.test\r\n220-more\r\n220 ESMTP\r")) {
        EXPECT_EQ(d.feed(std::string_view(&ch, 1)), client_event::need_input);
        EXPECT_EQ(d.c.replies_received(), 0u);
    }
    d.feed("\n");
    EXPECT_EQ(d.c.replies_received(), 1u);
    EXPECT_EQ(d.take(), "EHLO client.test\r\n");
    EXPECT_EQ(d.feed("250-mx.example.test\r\n250-PIPELINING\r\n"), client_event::need_input);
    EXPECT_EQ(d.c.replies_received(), 1u);
    EXPECT_EQ(d.feed("250 SIZE 10000\r\n"), client_event::ehlo_done);
    EXPECT_EQ(d.c.replies_received(), 2u);
    d.c.proceed();
    d.run();
    d.c.send_message(test_message({"bob@example.test", "carol@example.test"}));
    d.run();
    EXPECT_EQ(d.take(), "MAIL FROM:<alice@sender.test> SIZE=18\r\nRCPT TO:<bob@example.test>\r\n"
                        "RCPT TO:<carol@example.test>\r\nDATA\r\n");
    // Pipelined replies in one segment: each one counts.
    d.feed("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    EXPECT_EQ(d.c.replies_received(), 6u);
    EXPECT_EQ(d.feed("250-2.0.0 queued\r\n"), client_event::need_input);
    EXPECT_EQ(d.c.replies_received(), 6u);
    EXPECT_EQ(d.feed("250 2.0.0 as 1\r\n"), client_event::message_done);
    EXPECT_EQ(d.c.replies_received(), 7u);
    // A reply cut short by a framing error is not a reply.
    client_driver e;
    e.run();
    EXPECT_EQ(e.feed("220-mx\r\n250 x\r\n"), client_event::failed);
    EXPECT_EQ(e.c.replies_received(), 0u);
}

TEST(SmtpClientSession, ToStringNamesEveryValue) {
    EXPECT_STREQ(to_string(client_event::message_done), "message_done");
    EXPECT_STREQ(to_string(client_state::tls_handshake), "tls_handshake");
    EXPECT_STREQ(to_string(kind::starttls_refused), "starttls_refused");
}

}  // namespace
}  // namespace postern::smtp::test
