// tests/unit/delivery/outcome_test.cpp - classify_recipient: a refusal Postern made itself
// (local_check) is marked local, a remote reply is not (RFC 3464 2.3.5/2.3.6 in the DSN).
#include <gtest/gtest.h>

#include "delivery/outcome.hpp"

using namespace postern;

namespace {

smtp::reply make(int code, std::string enhanced, std::string text) {
    smtp::reply r;
    r.code = code;
    r.enhanced = std::move(enhanced);
    r.lines = {std::move(text)};
    return r;
}

}  // namespace

TEST(outcome, local_refusal_is_local) {
    smtp::transaction_result t;
    t.rcpt.resize(1);
    t.local_refusal = make(554, "5.6.3", "8-bit content but the server does not support 8BITMIME");
    const auto o = delivery::classify_recipient(t, 0);
    EXPECT_EQ(o.result, delivery::outcome::kind::permanent);
    EXPECT_EQ(o.dsn, "5.6.3");
    EXPECT_EQ(o.reason, "554 5.6.3 8-bit content but the server does not support 8BITMIME");
    EXPECT_TRUE(o.local);
}

TEST(outcome, remote_reply_is_not_local) {
    smtp::transaction_result t;
    t.mail = make(250, "2.1.0", "Ok");
    t.rcpt = {make(550, "5.1.1", "unknown user")};
    const auto o = delivery::classify_recipient(t, 0);
    EXPECT_EQ(o.dsn, "5.1.1");
    EXPECT_FALSE(o.local);
}
