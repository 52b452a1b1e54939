// tests/unit/smtp/session_tls_test.cpp - STARTTLS (RFC 3207): reply codes, command injection
// defence (CVE-2011-0411), state reset, mandatory TLS (530) and refuse_commands (SPEC 1.2).
#include <gtest/gtest.h>

#include "session_driver.hpp"

namespace postern::smtp::test {
namespace {

TEST(SmtpSessionTls, StarttlsThenEhloAgain) {
    driver d;
    d.ehlo();
    d.events.clear();
    EXPECT_EQ(d.feed("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
    ASSERT_FALSE(d.events.empty());
    EXPECT_EQ(d.events.front(), event::start_tls);
    EXPECT_EQ(d.handshakes, 1);
    EXPECT_TRUE(d.s.tls_active());
    ASSERT_TRUE(d.s.tls());
    EXPECT_EQ(d.s.tls()->version, "TLSv1.3");
    // RFC 3207 4.2: everything learnt before is forgotten; EHLO is required again.
    EXPECT_EQ(d.s.current_state(), state::need_helo);
    EXPECT_EQ(d.s.current().helo, "");
    EXPECT_EQ(d.feed("MAIL FROM:<a@s.test>\r\n"), "503 5.5.1 Error: send HELO/EHLO first\r\n");
    const std::string ehlo = d.feed("EHLO client.test\r\n");
    EXPECT_EQ(ehlo.find("STARTTLS"), std::string::npos);  // not offered inside TLS
    EXPECT_NE(ehlo.find("250-PIPELINING"), std::string::npos);
    EXPECT_EQ(d.feed("MAIL FROM:<a@s.test>\r\n"), "250 2.1.0 Ok\r\n");
}

TEST(SmtpSessionTls, PipelinedPlaintextAfterStarttlsIsDiscarded) {
    driver d;
    d.ehlo();
    EXPECT_EQ(d.feed("STARTTLS\r\nRSET\r\nMAIL FROM:<evil@s.test>\r\n"), "220 2.0.0 Ready to start TLS\r\n");
    EXPECT_EQ(d.handshakes, 1);
    EXPECT_TRUE(d.policy.senders_seen.empty());  // the injected MAIL never ran
    EXPECT_EQ(d.s.current_state(), state::need_helo);
    EXPECT_EQ(d.feed("RCPT TO:<b@example.test>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
}

TEST(SmtpSessionTls, InputFedDuringHandshakeIsDiscarded) {
    driver d;
    d.auto_tls = false;
    d.ehlo();
    EXPECT_EQ(d.feed("STARTTLS\r\nNOOP\r\n"), "220 2.0.0 Ready to start TLS\r\n");
    EXPECT_EQ(d.s.current_state(), state::waiting_tls);
    EXPECT_EQ(d.s.buffered(), 0u);  // the pipelined NOOP was dropped at STARTTLS already
    d.s.feed("EHLO evil\r\nMAIL FROM:<evil@s.test>\r\n");  // plaintext injected before TLS
    EXPECT_EQ(d.s.buffered(), 0u);
    EXPECT_EQ(d.s.next(), event::need_input);            // an event is outstanding
    d.s.tls_started(tls_facts{"TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", 128, 128});
    EXPECT_EQ(d.run(), "");
    EXPECT_EQ(d.s.current_state(), state::need_helo);
    EXPECT_TRUE(d.policy.senders_seen.empty());
}

TEST(SmtpSessionTls, StarttlsInsideTls) {
    driver d;
    d.feed("STARTTLS\r\n");
    ASSERT_TRUE(d.s.tls_active());
    EXPECT_EQ(d.feed("STARTTLS\r\n"), "503 5.5.1 Error: TLS already active\r\n");
    EXPECT_EQ(d.handshakes, 1);
}

TEST(SmtpSessionTls, StarttlsNotOffered) {
    auto st = test_settings();
    st.starttls_offered = false;
    driver d(st);
    d.ehlo();
    EXPECT_EQ(d.feed("STARTTLS\r\n"), "502 5.5.1 Error: command not implemented\r\n");
    EXPECT_EQ(d.handshakes, 0);
    EXPECT_EQ(d.count(event::start_tls), 0u);
}

TEST(SmtpSessionTls, StarttlsWithArgument) {
    driver d;
    d.ehlo();
    EXPECT_EQ(d.feed("STARTTLS now\r\n"), "501 5.5.4 Syntax: STARTTLS\r\n");
    EXPECT_FALSE(d.s.tls_active());
}

TEST(SmtpSessionTls, StarttlsInTransactionRefused) {
    driver d;
    d.envelope();
    EXPECT_EQ(d.feed("STARTTLS\r\n"), "503 5.5.1 Error: MAIL transaction in progress\r\n");
    EXPECT_FALSE(d.s.tls_active());
}

const char* const r530 = "530 5.7.0 Must issue a STARTTLS command first\r\n";

// RCPT, DATA, AUTH and BDAT (its chunk consumed, the QUIT in it not run) all get 530.
void expect_530_outside_a_transaction(driver& d) {
    EXPECT_EQ(d.feed("RCPT TO:<b@example.test>\r\n"), r530);
    EXPECT_EQ(d.feed("DATA\r\n"), r530);
    EXPECT_EQ(d.feed("AUTH PLAIN\r\n"), r530);
    EXPECT_EQ(d.feed("BDAT 6\r\nQUIT\r\n"), r530);
    EXPECT_FALSE(d.closed);
}

TEST(SmtpSessionTls, MandatoryTlsRefusesMailUntilStarttls) {
    auto st = test_settings();
    st.require_tls = true;
    driver d(st);
    d.ehlo();
    EXPECT_EQ(d.feed("MAIL FROM:<a@s.test>\r\n"), r530);
    expect_530_outside_a_transaction(d);
    EXPECT_TRUE(d.policy.senders_seen.empty());
    EXPECT_EQ(d.feed("NOOP\r\n"), "250 2.0.0 Ok\r\n");
    d.feed("STARTTLS\r\n");
    d.ehlo();
    EXPECT_EQ(d.feed("MAIL FROM:<a@s.test>\r\n"), "250 2.1.0 Ok\r\n");
}

// A "*" profile requires TLS but a sender-domain profile may apply at MAIL FROM (the policy's
// check_sender decides MAIL): RCPT, DATA, AUTH and BDAT outside a transaction get 530 as under
// require_tls (SPEC §1.2), not 503 or 502; inside a transaction a MAIL opened they go on.
TEST(SmtpSessionTls, MandatoryUntilMailRefusesOutsideATransaction) {
    auto st = test_settings();
    st.require_tls_until_mail = true;
    driver d(st);
    d.ehlo();
    expect_530_outside_a_transaction(d);
    EXPECT_EQ(d.feed("MAIL FROM:<a@s.test>\r\n"), "250 2.1.0 Ok\r\n");  // the policy's to decide
    EXPECT_EQ(d.feed("RCPT TO:<b@example.test>\r\n"), "250 2.1.5 Ok\r\n");
    EXPECT_EQ(d.feed("RSET\r\n"), "250 2.0.0 Ok\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<b@example.test>\r\n"), r530);
    d.feed("STARTTLS\r\n");
    d.ehlo();
    EXPECT_EQ(d.feed("RCPT TO:<b@example.test>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
    EXPECT_EQ(d.feed("AUTH PLAIN\r\n"), "502 5.5.1 Error: authentication not enabled\r\n");
}

TEST(SmtpSessionTls, RefuseCommandsAnswersAllButQuit) {
    driver d;
    d.feed("STARTTLS\r\n");
    d.s.refuse_commands(make_reply(554, "5.7.0", "TLS version TLSv1.2 below required TLSv1.3"));
    const char* const r = "554 5.7.0 TLS version TLSv1.2 below required TLSv1.3\r\n";
    EXPECT_EQ(d.feed("EHLO client.test\r\n"), r);
    EXPECT_EQ(d.feed("MAIL FROM:<a@s.test>\r\n"), r);
    EXPECT_EQ(d.feed("BDAT 6\r\nQUIT\r\n"), r);
    EXPECT_EQ(d.feed("BDAT 6 FIRST\r\nQUIT\r\n"), r);  // a bad marker: the chunk is still read
    EXPECT_FALSE(d.closed);
    EXPECT_TRUE(d.policy.senders_seen.empty());
    EXPECT_EQ(d.feed("QUIT\r\n"), "221 2.0.0 mx.example.test closing connection\r\n");
    EXPECT_TRUE(d.closed);
}

}  // namespace
}  // namespace postern::smtp::test
