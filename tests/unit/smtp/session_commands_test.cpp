// tests/unit/smtp/session_commands_test.cpp - server_session command replies (RFC 5321, 1870,
// 6152, 6531): greeting, EHLO/HELO, MAIL/RCPT syntax and parameters, <Postmaster>, duplicate
// recipients, ordering, simple verbs.
#include <gtest/gtest.h>

#include "session_driver.hpp"

namespace postern::smtp::test {
namespace {

const char* const ehlo_reply =
    "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";

TEST(SmtpSessionCommands, Greeting) {
    driver d;
    EXPECT_EQ(d.output, "220 mx.example.test ESMTP Postern\r\n");
    EXPECT_EQ(d.s.current_state(), state::need_helo);
}

TEST(SmtpSessionCommands, NoGreetingBeforeStart) {
    fake_policy p;
    server_session s(test_settings(), p);
    EXPECT_EQ(s.current_state(), state::greeting);
    EXPECT_FALSE(s.has_output());
    s.start();
    EXPECT_TRUE(s.has_output());
    EXPECT_EQ(s.take_output(), "220 mx.example.test ESMTP Postern\r\n");
    EXPECT_FALSE(s.has_output());
}

TEST(SmtpSessionCommands, EhloAdvertisesExtensions) {
    driver d;
    EXPECT_EQ(d.feed("EHLO client.test\r\n"), ehlo_reply);
    EXPECT_EQ(d.s.current_state(), state::ready);
    EXPECT_EQ(d.s.current().helo, "client.test");
    EXPECT_TRUE(d.s.current().esmtp);
}

TEST(SmtpSessionCommands, CommandsAreCaseInsensitive) {
    driver d;
    EXPECT_EQ(d.feed("eHlO client.test\r\n"), ehlo_reply);
    EXPECT_EQ(d.feed("mail from:<a@sender.test>\r\n"), "250 2.1.0 Ok\r\n");
    EXPECT_EQ(d.feed("rcpt to:<b@example.test>\r\n"), "250 2.1.5 Ok\r\n");
    EXPECT_EQ(d.feed("noop\r\n"), "250 2.0.0 Ok\r\n");
}

TEST(SmtpSessionCommands, EhloWithoutStarttlsWhenNotOffered) {
    auto st = test_settings();
    st.starttls_offered = false;
    driver d(st);
    const std::string r = d.feed("EHLO client.test\r\n");
    EXPECT_EQ(r.find("STARTTLS"), std::string::npos);
    EXPECT_NE(r.find("250 CHUNKING\r\n"), std::string::npos);
}

TEST(SmtpSessionCommands, EhloNeedsArgument) {
    driver d;
    EXPECT_EQ(d.feed("EHLO\r\n"), "501 5.5.4 Syntax: EHLO hostname\r\n");
    EXPECT_EQ(d.feed("HELO \r\n"), "501 5.5.4 Syntax: HELO hostname\r\n");
    EXPECT_EQ(d.feed("EHLO a\tb\r\n"), "501 5.5.4 Syntax: EHLO hostname\r\n");
    EXPECT_EQ(d.s.current_state(), state::need_helo);
}

TEST(SmtpSessionCommands, HeloHasNoExtensionsAndRefusesParameters) {
    driver d;
    EXPECT_EQ(d.feed("HELO client.test\r\n"), "250 mx.example.test\r\n");
    EXPECT_FALSE(d.s.current().esmtp);
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test> SIZE=10\r\n"),
              "555 5.5.4 Unsupported option: SIZE\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test> SMTPUTF8\r\n"),
              "555 5.5.4 Unsupported option: SMTPUTF8\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test>\r\n"), "250 2.1.0 Ok\r\n");
}

TEST(SmtpSessionCommands, MailBeforeHelo) {
    driver d;
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test>\r\n"),
              "503 5.5.1 Error: send HELO/EHLO first\r\n");
    EXPECT_TRUE(d.policy.senders_seen.empty());
}

TEST(SmtpSessionCommands, RcptBeforeMail) {
    driver d;
    d.ehlo();
    EXPECT_EQ(d.feed("RCPT TO:<b@example.test>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
    EXPECT_TRUE(d.policy.recipients_seen.empty());
}

TEST(SmtpSessionCommands, DataOrdering) {
    driver d;
    EXPECT_EQ(d.feed("DATA\r\n"), "503 5.5.1 Error: need RCPT command\r\n");
    d.ehlo();
    EXPECT_EQ(d.feed("DATA\r\n"), "503 5.5.1 Error: need RCPT command\r\n");
    d.feed("MAIL FROM:<a@sender.test>\r\n");
    EXPECT_EQ(d.feed("DATA\r\n"), "554 5.5.1 Error: no valid recipients\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<x@elsewhere.test>\r\n"), "554 5.7.1 Relay access denied\r\n");
    EXPECT_EQ(d.feed("DATA\r\n"), "554 5.5.1 Error: no valid recipients\r\n");
    EXPECT_EQ(d.feed("DATA now\r\n"), "501 5.5.4 Syntax: DATA\r\n");
    EXPECT_EQ(d.s.current_state(), state::in_mail);
}

TEST(SmtpSessionCommands, NestedMail) {
    driver d;
    d.ehlo();
    d.feed("MAIL FROM:<a@sender.test>\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<c@sender.test>\r\n"), "503 5.5.1 Error: nested MAIL command\r\n");
    EXPECT_EQ(d.s.current().sender.box.str(), "a@sender.test");
}

TEST(SmtpSessionCommands, MailSyntaxErrors) {
    driver d;
    d.ehlo();
    EXPECT_EQ(d.feed("MAIL\r\n"), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    EXPECT_EQ(d.feed("MAIL TO:<a@sender.test>\r\n"), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:a@sender.test\r\n"), "501 5.1.7 Bad sender address syntax\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@>\r\n"), "501 5.1.7 Bad sender address syntax\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test>x\r\n"), "501 5.1.7 Bad sender address syntax\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test\r\n"), "501 5.1.7 Bad sender address syntax\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test> SIZE=\r\n"),
              "501 5.5.4 Syntax error in parameters\r\n");
    EXPECT_EQ(d.s.current_state(), state::ready);
    EXPECT_TRUE(d.policy.senders_seen.empty());
}

TEST(SmtpSessionCommands, MailToleratesSpaceAfterColonAndNullSender) {
    driver d;
    d.ehlo();
    EXPECT_EQ(d.feed("MAIL FROM: <a@sender.test>\r\n"), "250 2.1.0 Ok\r\n");
    d.feed("RSET\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<>\r\n"), "250 2.1.0 Ok\r\n");
    EXPECT_TRUE(d.s.current().sender.null);
    EXPECT_EQ(d.policy.senders_seen.back(), "<>");
}

TEST(SmtpSessionCommands, MailParameters) {
    driver d;
    d.ehlo();
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test> FOO=bar\r\n"), "555 5.5.4 Unsupported option: FOO\r\n");
    // A keyword as long as the line allows is echoed cut, so the reply line stays within 512
    // octets (RFC 5321 4.5.3.1.5; found by fuzz/smtp_server).
    EXPECT_EQ(d.feed("MAIL FROM:<a@b> " + std::string(490, 'K') + "\r\n"),
              "555 5.5.4 Unsupported option: " + std::string(64, 'K') + "...\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@b>\r\nRCPT TO:<b@example.test> " + std::string(470, 'N') + "=1\r\nRSET\r\n"),
              "250 2.1.0 Ok\r\n555 5.5.4 Unsupported option: " + std::string(64, 'N') + "...\r\n250 2.0.0 Ok\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test> SIZE=10001\r\n"),
              "552 5.3.4 Message size exceeds fixed limit\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test> SIZE=abc\r\n"), "501 5.5.4 Bad message size syntax\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test> SIZE=99999999999999999999999\r\n"),
              "501 5.5.4 Bad message size syntax\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test> BODY=BINARYMIME\r\n"),
              "555 5.5.4 Unsupported BODY parameter value\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test> SMTPUTF8=yes\r\n"), "501 5.5.4 Bad SMTPUTF8 parameter\r\n");
    EXPECT_EQ(d.s.current_state(), state::ready);
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test> size=10000 body=8bitmime SMTPUTF8\r\n"),
              "250 2.1.0 Ok\r\n");
    EXPECT_EQ(d.s.current().declared_size, 10000u);
    EXPECT_EQ(d.s.current().body, body_type::eight_bit_mime);
    EXPECT_TRUE(d.s.current().smtputf8);
    d.feed("RSET\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test> BODY=7BIT\r\n"), "250 2.1.0 Ok\r\n");
    EXPECT_EQ(d.s.current().body, body_type::seven_bit);
    EXPECT_FALSE(d.s.current().smtputf8);
    EXPECT_FALSE(d.s.current().declared_size.has_value());
}

TEST(SmtpSessionCommands, RcptSyntaxErrors) {
    driver d;
    d.ehlo();
    d.feed("MAIL FROM:<a@sender.test>\r\n");
    EXPECT_EQ(d.feed("RCPT <b@example.test>\r\n"), "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<>\r\n"), "501 5.1.3 Bad recipient address syntax\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<a b@example.test>\r\n"), "501 5.1.3 Bad recipient address syntax\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<@example.test>\r\n"), "501 5.1.3 Bad recipient address syntax\r\n");
    EXPECT_EQ(d.feed("RCPT TO:b@example.test\r\n"), "501 5.1.3 Bad recipient address syntax\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<b@example.test> NOTIFY=NEVER\r\n"),
              "555 5.5.4 Unsupported option: NOTIFY\r\n");
    EXPECT_TRUE(d.s.current().recipients.empty());
    EXPECT_TRUE(d.policy.recipients_seen.empty());
}

TEST(SmtpSessionCommands, RcptPostmasterAndQuotedLocalPart) {
    driver d;
    d.ehlo();
    d.feed("MAIL FROM:<a@sender.test>\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<Postmaster>\r\n"), "250 2.1.5 Ok\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<\"john doe\"@example.test>\r\n"), "250 2.1.5 Ok\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<@relay.test:c@example.test>\r\n"), "250 2.1.5 Ok\r\n");
    ASSERT_EQ(d.s.current().recipients.size(), 3u);
    // RFC 5321 4.1.1.3: the policy completes a bare <Postmaster>; the envelope and the policy
    // check see the full address, never one without a domain.
    EXPECT_EQ(d.s.current().recipients[0].str(), "Postmaster@example.test");
    EXPECT_EQ(d.s.current().recipients[1].str(), "\"john doe\"@example.test");
    EXPECT_EQ(d.s.current().recipients[2].str(), "c@example.test");
    EXPECT_EQ(d.policy.recipients_seen.front(), "Postmaster@example.test");
}

TEST(SmtpSessionCommands, RcptPostmasterRefusedWhenThePolicyHasNone) {
    driver d;
    d.policy.postmaster_refusal = make_reply(550, "5.1.1", "no postmaster here");
    d.mail();
    EXPECT_EQ(d.feed("RCPT TO:<postmaster>\r\n"), "550 5.1.1 no postmaster here\r\n");
    EXPECT_TRUE(d.s.current().recipients.empty());
    EXPECT_TRUE(d.policy.recipients_seen.empty());
    EXPECT_EQ(d.s.error_count(), 1u);
    EXPECT_EQ(d.feed("RCPT TO:<postmaster@example.test>\r\n"), "250 2.1.5 Ok\r\n");
}

// Like Postfix: a recipient given twice is accepted twice but stored (delivered) once; local
// part compared exactly, domain without case; a bare <Postmaster> after completion.
TEST(SmtpSessionCommands, DuplicateRecipientStoredOnce) {
    driver d;
    d.mail();
    // Stored: bob@, Bob@ (another local part), Postmaster@, POSTMASTER@ (<POSTMASTER> completed).
    for (const char* rcpt : {"bob@example.test", "bob@example.test", "bob@EXAMPLE.Test", "@relay.test:bob@example.test",
                             "Bob@example.test", "Postmaster", "Postmaster@example.test", "POSTMASTER"})
        EXPECT_EQ(d.feed(std::string("RCPT TO:<") + rcpt + ">\r\n"), "250 2.1.5 Ok\r\n") << rcpt;
    ASSERT_EQ(d.s.current().recipients.size(), 4u);
    EXPECT_EQ(d.s.current().recipients[0].str(), "bob@example.test");
    EXPECT_EQ(d.s.current().recipients[1].str(), "Bob@example.test");
    EXPECT_EQ(d.s.current().recipients[2].str(), "Postmaster@example.test");
    EXPECT_EQ(d.s.current().recipients[3].str(), "POSTMASTER@example.test");
    EXPECT_EQ(d.s.error_count(), 0u);
    d.feed("DATA\r\nhi\r\n.\r\n");
    ASSERT_EQ(d.messages.size(), 1u);
    EXPECT_EQ(d.messages[0].envelope.recipients.size(), 4u);
    // A new transaction starts with no recipient seen.
    d.feed("MAIL FROM:<a@sender.test>\r\nRCPT TO:<bob@example.test>\r\n");
    ASSERT_EQ(d.s.current().recipients.size(), 1u);
    d.feed("RSET\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<bob@example.test>\r\n");
    EXPECT_EQ(d.s.current().recipients.size(), 1u);
}

// Found by review: "\"bob\"@x" and "bob@x" are one mailbox (RFC 5321 4.1.2: the quoting is not
// part of the local part) but were stored, and delivered, twice.
TEST(SmtpSessionCommands, QuotedAndUnquotedSpellingsAreOneRecipient) {
    driver d;
    d.mail();
    for (const char* rcpt : {"\"bob\"@example.test", "bob@EXAMPLE.test", "\"b\\ob\"@example.test", "\"Bob\"@example.test",
                             "\"bob smith\"@example.test", "\"bob\\ smith\"@example.test", "\"a.b\"@example.test",
                             "a.b@example.test"})
        EXPECT_EQ(d.feed(std::string("RCPT TO:<") + rcpt + ">\r\n"), "250 2.1.5 Ok\r\n") << rcpt;
    ASSERT_EQ(d.s.current().recipients.size(), 4u);
    EXPECT_EQ(d.s.current().recipients[0].str(), "\"bob\"@example.test");  // the first spelling is kept
    EXPECT_EQ(d.s.current().recipients[1].str(), "\"Bob\"@example.test");  // case counts in a local part
    EXPECT_EQ(d.s.current().recipients[2].str(), "\"bob smith\"@example.test");
    EXPECT_EQ(d.s.current().recipients[3].str(), "\"a.b\"@example.test");
    EXPECT_EQ(d.policy.recipients_seen.size(), 4u);  // a duplicate is not checked again
}

// The policy decides what a duplicate is (server_policy::recipient_key): e.g. a maildir folder.
TEST(SmtpSessionCommands, PolicyRecipientKeyDecidesDuplicates) {
    struct folder_policy : fake_policy {
        std::string recipient_key(const mailbox& r) override {
            std::string k = unquote_local_part(r.local);
            for (char& c : k) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
            return k;
        }
    } policy;
    server_session s(test_settings(), policy);
    s.start();
    s.feed("EHLO c\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<Bob@example.test>\r\nRCPT TO:<\"BOB\"@example.test>\r\n"
           "RCPT TO:<carol@example.test>\r\n");
    EXPECT_EQ(s.next(), event::need_input);
    ASSERT_EQ(s.current().recipients.size(), 2u);
    EXPECT_EQ(s.current().recipients[1].str(), "carol@example.test");
}

// A refused recipient is not remembered: given again (e.g. after a 450), it is checked again.
TEST(SmtpSessionCommands, RefusedRecipientIsCheckedAgain) {
    driver d;
    d.mail();
    EXPECT_EQ(d.feed("RCPT TO:<y@greylist.test>\r\n"), "450 4.7.1 Try again later\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<y@greylist.test>\r\n"), "450 4.7.1 Try again later\r\n");
    EXPECT_EQ(d.policy.recipients_seen.size(), 2u);
    EXPECT_TRUE(d.s.current().recipients.empty());
}

TEST(SmtpSessionCommands, Smtputf8Addresses) {
    driver d;
    d.ehlo();
    EXPECT_EQ(d.feed("MAIL FROM:<δοκιμή@παράδειγμα.δοκιμή>\r\n"),
              "553 5.6.7 Error: non-ASCII sender address requires SMTPUTF8\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test>\r\n"), "250 2.1.0 Ok\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>\r\n"),
              "553 5.6.7 Error: non-ASCII recipient address requires SMTPUTF8\r\n");
    d.feed("RSET\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<δοκιμή@παράδειγμα.δοκιμή> SMTPUTF8\r\n"), "250 2.1.0 Ok\r\n");
    EXPECT_TRUE(d.s.current().sender.box.utf8);
    EXPECT_EQ(d.feed("RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>\r\n"), "250 2.1.5 Ok\r\n");
    ASSERT_EQ(d.s.current().recipients.size(), 1u);
    EXPECT_TRUE(d.s.current().recipients[0].utf8);
}

// RFC 6531 3.2: "例.example.test" and "xn--fsq.example.test" are one domain: hosted under
// both spellings, one recipient, kept as written. A sender-domain profile written with the
// A-label applies to the U-label sender too (its 530 is not bypassed).
TEST(SmtpSessionCommands, ULabelDomainsMatchedByTheirALabel) {
    driver d;
    d.ehlo();
    EXPECT_EQ(d.feed("MAIL FROM:<a@Bücher.test> SMTPUTF8\r\n"),
              "530 5.7.0 Must issue a STARTTLS command first\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@xn--bcher-kva.test>\r\n"), "530 5.7.0 Must issue a STARTTLS command first\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test> SMTPUTF8\r\n"), "250 2.1.0 Ok\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<bob@例.example.test>\r\n"), "250 2.1.5 Ok\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<bob@XN--FSQ.example.test>\r\n"), "250 2.1.5 Ok\r\n");  // the same recipient
    ASSERT_EQ(d.s.current().recipients.size(), 1u);
    EXPECT_EQ(d.s.current().recipients[0].str(), "bob@例.example.test");
    EXPECT_EQ(d.s.current().recipients[0].domain_lower(), "xn--fsq.example.test");
}

// A domain that has no A-label form cannot be matched or routed: refused at MAIL/RCPT (553,
// not a 501 syntax error: the path is well-formed), before any policy check.
TEST(SmtpSessionCommands, DomainWithoutALabelRefused) {
    driver d;
    d.ehlo();
    EXPECT_EQ(d.feed("MAIL FROM:<a@☃.test> SMTPUTF8\r\n"),
              "553 5.1.7 Bad sender address: domain is not a valid internationalized domain name "
              "(string contains a disallowed character)\r\n");
    EXPECT_TRUE(d.policy.senders_seen.empty());
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test> SMTPUTF8\r\n"), "250 2.1.0 Ok\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<b@☃.example.test>\r\n"),
              "553 5.1.3 Bad recipient address: domain is not a valid internationalized domain name "
              "(string contains a disallowed character)\r\n");
    EXPECT_TRUE(d.policy.recipients_seen.empty());
    EXPECT_TRUE(d.s.current().recipients.empty());
}

// RFC 5321 4.5.3.1: no 64-octet limit on local parts (SRS, BATV, VERP senders exceed it).
TEST(SmtpSessionCommands, LocalPartOver64OctetsAccepted) {
    driver d;
    d.ehlo();
    const std::string srs = "SRS0=HHH=TT=orig-domain.example=some.long.user.name+list-bounces-12345"
                            "=subscriber.example";
    ASSERT_GT(srs.size(), 64u);
    EXPECT_EQ(d.feed("MAIL FROM:<" + srs + "@forwarder.test>\r\n"), "250 2.1.0 Ok\r\n");
    EXPECT_EQ(d.s.current().sender.box.local, srs);
    EXPECT_EQ(d.feed("RCPT TO:<" + std::string(100, 'r') + "@example.test>\r\n"), "250 2.1.5 Ok\r\n");
}

// RFC 1870 6: size-value = 1*20DIGIT. Leading zeros are digits like any other; a value too
// big for 64 bits exceeds the limit (552), it is not a syntax error.
TEST(SmtpSessionCommands, SizeValueUpTo20Digits) {
    driver d;
    d.ehlo();
    EXPECT_EQ(d.feed("MAIL FROM:<a@b> SIZE=99999999999999999999\r\n"),
              "552 5.3.4 Message size exceeds fixed limit\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@b> SIZE=18446744073709551616\r\n"),  // 2^64
              "552 5.3.4 Message size exceeds fixed limit\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@b> SIZE=18446744073709551615\r\n"),  // 2^64-1
              "552 5.3.4 Message size exceeds fixed limit\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@b> SIZE=000000000000000000000\r\n"),  // 21 digits
              "501 5.5.4 Bad message size syntax\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@b> SIZE=00000000000000000100\r\n"), "250 2.1.0 Ok\r\n");
    EXPECT_EQ(d.s.current().declared_size, 100u);
    d.feed("RSET\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@b> SIZE=00000000000000010000\r\n"), "250 2.1.0 Ok\r\n");  // the limit itself
    EXPECT_EQ(d.s.current().declared_size, 10000u);
    d.feed("RSET\r\n");
    EXPECT_EQ(d.feed("MAIL FROM:<a@b> SIZE=0\r\n"), "250 2.1.0 Ok\r\n");
}

TEST(SmtpSessionCommands, PolicyRefusesSender) {
    driver d;
    d.ehlo();
    EXPECT_EQ(d.feed("MAIL FROM:<x@Blocked.test>\r\n"), "554 5.7.1 Sender rejected\r\n");
    ASSERT_EQ(d.policy.senders_seen.size(), 1u);
    EXPECT_EQ(d.s.current_state(), state::ready);
    EXPECT_EQ(d.feed("RCPT TO:<b@example.test>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
    EXPECT_EQ(d.s.error_count(), 2u);
}

TEST(SmtpSessionCommands, PolicyRefusesOneRecipientTransactionContinues) {
    driver d;
    d.ehlo();
    d.feed("MAIL FROM:<a@sender.test>\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<x@elsewhere.test>\r\n"), "554 5.7.1 Relay access denied\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<y@greylist.test>\r\n"), "450 4.7.1 Try again later\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<b@example.test>\r\n"), "250 2.1.5 Ok\r\n");
    EXPECT_EQ(d.feed("DATA\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n");
    d.feed("hi\r\n.\r\n");
    ASSERT_EQ(d.messages.size(), 1u);
    ASSERT_EQ(d.messages[0].envelope.recipients.size(), 1u);
    EXPECT_EQ(d.messages[0].envelope.recipients[0].str(), "b@example.test");
    EXPECT_EQ(d.policy.recipients_seen.size(), 3u);
}

TEST(SmtpSessionCommands, PolicyPositiveReplyAcceptsWithItsText) {
    struct custom : fake_policy {
        std::optional<reply> check_sender(const transaction&) override {
            return make_reply(250, "2.1.0", "Sender looks fine");
        }
    } p;
    server_session s(test_settings(), p);
    s.start();
    s.feed("EHLO c\r\nMAIL FROM:<a@b.test>\r\n");
    EXPECT_EQ(s.next(), event::need_input);
    const std::string out = s.take_output();
    EXPECT_NE(out.find("250 2.1.0 Sender looks fine\r\n"), std::string::npos);
    EXPECT_EQ(s.current_state(), state::in_mail);
}

TEST(SmtpSessionCommands, TooManyRecipients) {
    driver d;
    d.ehlo();
    d.feed("MAIL FROM:<a@sender.test>\r\n");
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(d.feed("RCPT TO:<r" + std::to_string(i) + "@example.test>\r\n"), "250 2.1.5 Ok\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<r5@example.test>\r\n"), "452 4.5.3 Too many recipients\r\n");
    EXPECT_EQ(d.s.current().recipients.size(), 5u);
    EXPECT_EQ(d.policy.recipients_seen.size(), 5u);
}

// A duplicate does not count toward max_recipients: at the limit it is still answered 250.
TEST(SmtpSessionCommands, DuplicateRecipientsDoNotCountTowardTheLimit) {
    driver d;  // max_recipients 5
    d.mail();
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(d.feed("RCPT TO:<r" + std::to_string(i) + "@example.test>\r\n"), "250 2.1.5 Ok\r\n");
        EXPECT_EQ(d.feed("RCPT TO:<r" + std::to_string(i) + "@example.test>\r\n"), "250 2.1.5 Ok\r\n");
    }
    EXPECT_EQ(d.feed("RCPT TO:<r4@example.test>\r\n"), "250 2.1.5 Ok\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<r4@example.test>\r\n"), "250 2.1.5 Ok\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<r0@example.test>\r\n"), "250 2.1.5 Ok\r\n");
    EXPECT_EQ(d.feed("RCPT TO:<r5@example.test>\r\n"), "452 4.5.3 Too many recipients\r\n");
    EXPECT_EQ(d.s.current().recipients.size(), 5u);
}

TEST(SmtpSessionCommands, RecipientOvershootIsNotAClientError) {
    driver d;  // max_recipients 5, max_errors 10
    d.ehlo();
    d.feed("MAIL FROM:<a@sender.test>\r\n");
    std::string out;
    for (int i = 0; i < 30; ++i) out += d.feed("RCPT TO:<r" + std::to_string(i) + "@example.test>\r\n");
    EXPECT_EQ(out.find("421"), std::string::npos) << out;
    EXPECT_EQ(d.s.error_count(), 0u);
    EXPECT_EQ(d.feed("DATA\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n");
}

TEST(SmtpSessionCommands, RsetClearsTransactionKeepsHelo) {
    driver d;
    d.envelope();
    EXPECT_EQ(d.feed("RSET\r\n"), "250 2.0.0 Ok\r\n");
    EXPECT_EQ(d.s.current_state(), state::ready);
    EXPECT_TRUE(d.s.current().recipients.empty());
    EXPECT_EQ(d.s.current().helo, "client.test");
    EXPECT_EQ(d.feed("RCPT TO:<b@example.test>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
    EXPECT_EQ(d.feed("RSET all\r\n"), "501 5.5.4 Syntax: RSET\r\n");
}

TEST(SmtpSessionCommands, EhloInTransactionResetsIt) {
    driver d;
    d.envelope();
    d.feed("EHLO other.test\r\n");
    EXPECT_EQ(d.s.current_state(), state::ready);
    EXPECT_EQ(d.s.current().helo, "other.test");
    EXPECT_TRUE(d.s.current().recipients.empty());
    EXPECT_EQ(d.feed("MAIL FROM:<a@sender.test>\r\n"), "250 2.1.0 Ok\r\n");
}

TEST(SmtpSessionCommands, SimpleVerbs) {
    driver d;
    EXPECT_EQ(d.feed("NOOP\r\n"), "250 2.0.0 Ok\r\n");
    EXPECT_EQ(d.feed("NOOP anything\r\n"), "250 2.0.0 Ok\r\n");
    EXPECT_EQ(d.feed("VRFY bob\r\n"),
              "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery\r\n");
    EXPECT_EQ(d.feed("VRFY\r\n"), "501 5.5.4 Syntax: VRFY address\r\n");
    EXPECT_EQ(d.feed("HELP\r\n").substr(0, 10), "214 2.0.0 ");
    EXPECT_EQ(d.feed("EXPN staff\r\n"), "502 5.5.1 Error: command not implemented\r\n");
    EXPECT_EQ(d.feed("AUTH PLAIN AGFAYg==\r\n"), "502 5.5.1 Error: authentication not enabled\r\n");
    EXPECT_EQ(d.feed("XYZZY\r\n"), "500 5.5.2 Error: command not recognized\r\n");
    EXPECT_EQ(d.feed("\r\n"), "500 5.5.2 Error: bad syntax\r\n");
    EXPECT_EQ(d.feed(std::string("NO\0OP\r\n", 7)), "500 5.5.2 Error: NUL character in command\r\n");
    EXPECT_EQ(d.feed("NOOP\rRSET\r\n"), "500 5.5.2 Error: bad syntax\r\n");
    EXPECT_EQ(d.s.error_count(), 7u);
    EXPECT_FALSE(d.closed);
}

TEST(SmtpSessionCommands, BareLfTerminatesCommandLine) {
    driver d;
    EXPECT_EQ(d.feed("NOOP\n"), "250 2.0.0 Ok\r\n");
    EXPECT_EQ(d.feed("EHLO client.test\nMAIL FROM:<a@sender.test>\n"),
              std::string(ehlo_reply) + "250 2.1.0 Ok\r\n");
}

TEST(SmtpSessionCommands, QuitClosesAndIgnoresTheRest) {
    driver d;
    EXPECT_EQ(d.feed("QUIT\r\nNOOP\r\n"), "221 2.0.0 mx.example.test closing connection\r\n");
    EXPECT_TRUE(d.closed);
    EXPECT_EQ(d.s.current_state(), state::closed);
    EXPECT_EQ(d.feed("NOOP\r\n"), "");
    EXPECT_EQ(d.s.next(), event::close);
}

TEST(SmtpSessionCommands, HttpRequestClosesConnection) {
    driver d;
    EXPECT_EQ(d.feed("GET / HTTP/1.0\r\nHost: x\r\n\r\n"),
              "221 2.7.0 Error: I can break rules, too. Goodbye.\r\n");
    EXPECT_TRUE(d.closed);
}

}  // namespace
}  // namespace postern::smtp::test
