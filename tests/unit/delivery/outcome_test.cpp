// tests/unit/delivery/outcome_test.cpp - only the remote MTA's own reply is marked remote_reply:
// a refusal Postern made itself (local_check) and every connection-level failure are not
// (RFC 3464 2.3.5/2.3.6: Remote-MTA and "Diagnostic-Code: smtp;" in the DSN).
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

TEST(outcome, local_refusal_is_not_a_remote_reply) {
    smtp::transaction_result t;
    t.rcpt.resize(1);
    t.local_refusal = make(554, "5.6.3", "8-bit content but the server does not support 8BITMIME");
    const auto o = delivery::classify_recipient(t, 0);
    EXPECT_EQ(o.result, delivery::outcome::kind::permanent);
    EXPECT_EQ(o.dsn, "5.6.3");
    EXPECT_EQ(o.reason, "554 5.6.3 8-bit content but the server does not support 8BITMIME");
    EXPECT_FALSE(o.remote_reply);
}

TEST(outcome, remote_reply_is_marked) {
    smtp::transaction_result t;
    t.mail = make(250, "2.1.0", "Ok");
    t.rcpt = {make(550, "5.1.1", "unknown user")};
    const auto o = delivery::classify_recipient(t, 0);
    EXPECT_EQ(o.dsn, "5.1.1");
    EXPECT_TRUE(o.remote_reply);
}

TEST(outcome, connection_failures_are_not_remote_replies) {
    using k = smtp::client_failure::kind;
    for (k what : {k::greeting_refused, k::helo_refused, k::starttls_refused, k::protocol_error, k::connection_lost,
                   k::timeout}) {
        smtp::client_failure f;
        f.what = what;
        f.last_reply = make(554, "5.7.1", "go away");
        const auto o = delivery::classify_failure(f, "mx.dest.test[192.0.2.1]:25");
        EXPECT_EQ(o.result, delivery::outcome::kind::transient) << static_cast<int>(what);
        EXPECT_FALSE(o.remote_reply) << static_cast<int>(what) << ": " << o.reason;
    }
}

TEST(outcome, unfinished_transaction_is_not_a_remote_reply) {
    smtp::transaction_result t;
    t.mail = make(250, "2.1.0", "Ok");
    t.rcpt = {make(250, "2.1.5", "Ok")};
    const auto o = delivery::classify_recipient(t, 0);
    EXPECT_EQ(o.dsn, "4.4.2");
    EXPECT_FALSE(o.remote_reply);
}

// SPEC §1.2: the TLS reason of a mandatory host (4.7.x) survives a later host that cannot be
// reached or found (4.4.x); any other later reason replaces what was kept.
TEST(outcome, tls_reason_kept_over_a_later_connection_or_dns_failure) {
    using k = delivery::outcome::kind;
    const delivery::outcome not_offered{k::transient, "4.7.4", "TLS required but not offered by a[192.0.2.1]:25"};
    const delivery::outcome bad_cert{k::transient, "4.7.5", "certificate verification failed (a[192.0.2.1]:25)"};
    const delivery::outcome refused{k::transient, "4.4.1", "connect to b[192.0.2.2]:25: Connection refused"};
    const delivery::outcome no_address{k::transient, "4.4.3", "cannot find an address for b.test"};
    const delivery::outcome lost{k::transient, "4.4.2", "lost connection with b[192.0.2.2]:25"};
    const delivery::outcome greeting{k::transient, "4.3.2", "421 4.3.2 b.test busy", true};
    const delivery::outcome rejected{k::permanent, "5.7.1", "554 5.7.1 go away", true};
    for (const auto* tls : {&not_offered, &bad_cert})
        for (const auto* later : {&refused, &no_address, &lost}) EXPECT_TRUE(delivery::keeps_reason_over(*tls, *later));
    EXPECT_FALSE(delivery::keeps_reason_over(not_offered, bad_cert));  // a later TLS reason: the later one
    EXPECT_FALSE(delivery::keeps_reason_over(not_offered, greeting));
    EXPECT_FALSE(delivery::keeps_reason_over(bad_cert, rejected));
    EXPECT_FALSE(delivery::keeps_reason_over(refused, not_offered));
    EXPECT_FALSE(delivery::keeps_reason_over(refused, no_address));
}
