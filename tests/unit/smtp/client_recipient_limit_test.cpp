// tests/unit/smtp/client_recipient_limit_test.cpp - recipients over a server's recipient limit
// (RFC 5321 4.5.3.1.8/4.5.3.1.10): smtp::over_recipient_limit names those to send the message
// again to, and a session carries that further transaction (the driver's part, as
// outbound/attempt.cpp runs it).
#include <gtest/gtest.h>

#include "client_driver.hpp"

namespace postern::smtp::test {
namespace {

using positions = std::vector<std::size_t>;

reply r(int code) { return make_reply(code, code < 300 ? "2.1.5" : code < 500 ? "4.5.3" : "5.5.3", "x"); }

transaction_result delivered(std::vector<std::optional<reply>> rcpt, int final_code = 250) {
    transaction_result t;
    t.mail = r(250);
    t.rcpt = std::move(rcpt);
    t.data = make_reply(354, "", "go");
    t.final = r(final_code);
    return t;
}

TEST(SmtpRecipientLimit, The452sOfADeliveredTransaction) {
    EXPECT_EQ(over_recipient_limit(delivered({r(250), r(250), r(452), r(452)})), (positions{2, 3}));
    // RFC 5321 4.5.3.1.10: a 552 to RCPT is read as 452.
    EXPECT_EQ(over_recipient_limit(delivered({r(452), r(250), r(552)})), (positions{0, 2}));
    // Other refusals are not a limit.
    EXPECT_EQ(over_recipient_limit(delivered({r(250), r(450), r(550), r(451)})), positions{});
    EXPECT_EQ(over_recipient_limit(delivered({r(250), r(250)})), positions{});
}

TEST(SmtpRecipientLimit, NoneWhenTheTransactionDeliveredToNoOne) {
    // No recipient accepted: nothing shows the 452s to be a limit.
    transaction_result none;
    none.mail = r(250);
    none.rcpt = {r(452), r(452)};
    none.data = make_reply(554, "5.5.1", "no valid recipients");
    EXPECT_EQ(over_recipient_limit(none), positions{});
    // The final reply refused the message, or never came.
    EXPECT_EQ(over_recipient_limit(delivered({r(250), r(452)}, 451)), positions{});
    EXPECT_EQ(over_recipient_limit(delivered({r(250), r(452)}, 554)), positions{});
    auto lost = delivered({r(250), r(452)});
    lost.final.reset();
    EXPECT_EQ(over_recipient_limit(lost), positions{});
    // MAIL refused, or refused locally: no transaction at all.
    transaction_result refused;
    refused.mail = make_reply(452, "4.3.1", "full");
    refused.rcpt = {std::nullopt, std::nullopt};
    EXPECT_EQ(over_recipient_limit(refused), positions{});
    transaction_result local;
    local.local_refusal = make_reply(552, "5.3.4", "too big");
    local.rcpt = {std::nullopt};
    EXPECT_EQ(over_recipient_limit(local), positions{});
}

// A server that takes two recipients per transaction: the third goes again in a new
// transaction on the same session, which then delivers it.
TEST(SmtpRecipientLimit, TheRestGoAgainOnTheSameSession) {
    client_driver d;
    d.connect();
    d.c.send_message(test_message({"a@example.test", "b@example.test", "c@example.test"}));
    d.run();
    d.take();
    EXPECT_EQ(d.feed("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n452 4.5.3 Too many recipients\r\n"
                     "354 go\r\n"),
              client_event::need_input);
    d.take();
    EXPECT_EQ(d.feed("250 2.0.0 queued\r\n"), client_event::message_done);
    const positions again = over_recipient_limit(d.c.result());
    ASSERT_EQ(again, positions{2});
    ASSERT_TRUE(d.c.reusable());
    EXPECT_EQ(d.run(), client_event::ready);

    d.c.send_message(test_message({"c@example.test"}));
    EXPECT_EQ(d.run(), client_event::need_input);
    EXPECT_EQ(d.take(), "MAIL FROM:<alice@sender.test> SIZE=18\r\nRCPT TO:<c@example.test>\r\nDATA\r\n");
    d.feed("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    d.take();
    EXPECT_EQ(d.feed("250 2.0.0 queued\r\n"), client_event::message_done);
    ASSERT_EQ(d.c.result().rcpt.size(), 1u);
    EXPECT_EQ(d.c.result().rcpt[0]->code, 250);
    EXPECT_EQ(over_recipient_limit(d.c.result()), positions{});
}

}  // namespace
}  // namespace postern::smtp::test
