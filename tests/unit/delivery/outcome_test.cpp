// tests/unit/delivery/outcome_test.cpp - only the remote MTA's own reply is marked remote_reply:
// a refusal Postern made itself (local_check) and every connection-level failure are not
// (RFC 3464 2.3.5/2.3.6: Remote-MTA and "Diagnostic-Code: smtp;" in the DSN); which failures
// leave a recipient to the next host (RFC 5321 5.1) and which reason is kept across hosts.
#include <gtest/gtest.h>

#include <optional>
#include <vector>

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

// An outcome nobody filled in retries the recipient: a forgotten assignment can delay mail,
// never drop it as delivered.
TEST(outcome, a_default_outcome_is_a_deferral) {
    const delivery::outcome o;
    EXPECT_EQ(o.result, delivery::outcome::kind::transient);
    EXPECT_EQ(o.dsn.substr(0, 2), "4.");
    EXPECT_FALSE(o.reason.empty());
    EXPECT_FALSE(o.remote_reply);
}

TEST(outcome, local_refusal_is_not_a_remote_reply) {
    smtp::transaction_result t;
    t.rcpt.resize(1);
    t.local_refusal = make(554, "5.6.3", "8-bit content but the server does not support 8BITMIME");
    const auto o = delivery::classify_recipient(t, 0);
    EXPECT_EQ(o.result, delivery::outcome::kind::permanent);
    EXPECT_EQ(o.dsn, "5.6.3");
    EXPECT_EQ(o.reason, "8-bit content but the server does not support 8BITMIME");  // no code no server sent
    EXPECT_FALSE(o.remote_reply);
    // With the connection's name: which server lacks it.
    const auto v = delivery::classify_transaction(t, 0, nullptr, "mx.plain.test[192.0.2.1]:25");
    EXPECT_EQ(v.out.reason, "8-bit content but the server does not support 8BITMIME (mx.plain.test[192.0.2.1]:25; "
                            "nothing sent)");
    EXPECT_EQ(v.out.dsn, "5.6.3");
}

TEST(outcome, remote_reply_is_marked) {
    smtp::transaction_result t;
    t.mail = make(250, "2.1.0", "Ok");
    t.rcpt = {make(550, "5.1.1", "unknown user")};
    const auto o = delivery::classify_recipient(t, 0);
    EXPECT_EQ(o.dsn, "5.1.1");
    EXPECT_TRUE(o.remote_reply);
}

// RFC 5321 4.5.3.1.10: a 552 to RCPT that means "too many recipients" (X.5.3, or that text
// without an enhanced code) counts as 452 (deferred, 4.5.3, tried again); any other 5xx to RCPT,
// a 552 mailbox full included, and 552 at the end of data stay permanent (SPEC §3.2).
TEST(outcome, a_552_to_rcpt_for_the_recipient_limit_is_temporary) {
    smtp::transaction_result t;
    t.mail = make(250, "2.1.0", "Ok");
    t.rcpt = {make(552, "5.5.3", "Too many recipients"), make(552, "", "Error: too many recipients"),
              make(552, "5.2.2", "Mailbox full"), make(552, "", "Mailbox full"), make(550, "5.1.1", "unknown user")};
    const auto many = delivery::classify_recipient(t, 0);
    EXPECT_EQ(many.result, delivery::outcome::kind::transient);
    EXPECT_EQ(many.dsn, "4.5.3");
    EXPECT_EQ(many.reason, "552 5.5.3 Too many recipients");
    EXPECT_TRUE(many.remote_reply);
    const auto plain = delivery::classify_recipient(t, 1);
    EXPECT_EQ(plain.result, delivery::outcome::kind::transient);
    EXPECT_EQ(plain.dsn, "4.5.3");
    EXPECT_TRUE(delivery::classify_transaction(t, 1, nullptr, "relay").next_host);
    for (std::size_t k : {2u, 3u, 4u})
        EXPECT_EQ(delivery::classify_recipient(t, k).result, delivery::outcome::kind::permanent) << k;
    EXPECT_EQ(delivery::classify_recipient(t, 2).dsn, "5.2.2");

    smtp::transaction_result d;
    d.mail = make(250, "2.1.0", "Ok");
    d.rcpt = {make(250, "2.1.5", "Ok")};
    d.data = make(354, "", "go ahead");
    d.final = make(552, "5.3.4", "Message too big");
    EXPECT_EQ(delivery::classify_recipient(d, 0).result, delivery::outcome::kind::permanent);
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
// reached or found (4.4.x); any other later reason replaces what was kept. So does a host's own
// temporary reply (it says more about the recipient than a backup that cannot be reached),
// over a later 4.4.x failure that is no reply.
TEST(outcome, tls_reason_or_reply_kept_over_a_later_connection_or_dns_failure) {
    using k = delivery::outcome::kind;
    const delivery::outcome not_offered{k::transient, "4.7.4", "TLS required but not offered by a[192.0.2.1]:25"};
    const delivery::outcome bad_cert{k::transient, "4.7.5", "certificate verification failed (a[192.0.2.1]:25)"};
    const delivery::outcome refused{k::transient, "4.4.1", "connect to b[192.0.2.2]:25: Connection refused"};
    const delivery::outcome no_address{k::transient, "4.4.3", "cannot find an address for b.test"};
    const delivery::outcome lost{k::transient, "4.4.2", "lost connection with b[192.0.2.2]:25"};
    const delivery::outcome greeting{k::transient, "4.3.2", "421 4.3.2 b.test busy", true};
    const delivery::outcome rejected{k::permanent, "5.7.1", "554 5.7.1 go away", true};
    const delivery::outcome full{k::transient, "4.2.2", "452 4.2.2 mailbox full", true};
    const delivery::outcome later_reply{k::transient, "4.4.5", "452 4.4.5 busy", true};
    for (const auto* tls : {&not_offered, &bad_cert, &full})
        for (const auto* later : {&refused, &no_address, &lost}) EXPECT_TRUE(delivery::keeps_reason_over(*tls, *later));
    EXPECT_FALSE(delivery::keeps_reason_over(not_offered, bad_cert));  // a later TLS reason: the later one
    EXPECT_FALSE(delivery::keeps_reason_over(not_offered, greeting));
    EXPECT_FALSE(delivery::keeps_reason_over(bad_cert, rejected));
    EXPECT_FALSE(delivery::keeps_reason_over(refused, not_offered));
    EXPECT_FALSE(delivery::keeps_reason_over(refused, no_address));
    EXPECT_FALSE(delivery::keeps_reason_over(full, later_reply));
    EXPECT_FALSE(delivery::keeps_reason_over(full, not_offered));
}

// RFC 5321 5.1: what one host's transaction leaves for each recipient, and whether the next
// address or host may still take it in the same attempt: every temporary failure where nothing
// can have been delivered (Postfix smtp_trouble.c), never a sent, bounced or possibly delivered one.
TEST(outcome, transaction_verdicts_and_the_next_host) {
    using k = smtp::client_failure::kind;
    using ok = delivery::outcome::kind;
    const std::string relay = "mx.dest.test[192.0.2.1]:25";
    auto ok_until_data = [] {
        smtp::transaction_result t;
        t.mail = make(250, "2.1.0", "Ok");
        t.rcpt = {make(250, "2.1.5", "Ok")};
        return t;
    };
    auto fail = [](k what, bool during_final_reply) {
        smtp::client_failure f;
        f.what = what;
        f.during_final_reply = during_final_reply;
        return f;
    };
    struct row {
        const char* name;
        smtp::transaction_result t;
        std::optional<smtp::client_failure> failure;
        ok result;
        const char* dsn;
        bool next_host;
    };
    std::vector<row> rows;
    {
        auto t = ok_until_data();
        t.data = make(354, "", "go");
        t.final = make(250, "2.0.0", "queued");
        rows.push_back({"sent", t, std::nullopt, ok::sent, "2.0.0", false});
        t.final = make(451, "4.3.0", "try later");
        rows.push_back({"4xx to the end of data", t, std::nullopt, ok::transient, "4.3.0", true});
        t.final = make(554, "5.7.1", "spam");
        rows.push_back({"5xx to the end of data", t, std::nullopt, ok::permanent, "5.7.1", false});
        t.final.reset();
        rows.push_back({"lost after the end of data", t, fail(k::connection_lost, true), ok::transient, "4.4.2", false});
        rows.push_back({"timeout after the end of data", t, fail(k::timeout, true), ok::transient, "4.4.2", false});
        rows.push_back({"garbled final reply", t, fail(k::protocol_error, true), ok::transient, "4.5.0", false});
        rows.push_back({"lost while sending the content", t, fail(k::connection_lost, false), ok::transient, "4.4.2", true});
    }
    {
        auto t = ok_until_data();
        t.mail = make(451, "4.3.0", "later");
        rows.push_back({"4xx to MAIL", t, std::nullopt, ok::transient, "4.3.0", true});
        t.mail = make(421, "4.3.2", "closing");
        rows.push_back({"421 to MAIL", t, std::nullopt, ok::transient, "4.3.2", true});
        t.mail = make(550, "5.7.1", "no");
        rows.push_back({"5xx to MAIL", t, std::nullopt, ok::permanent, "5.7.1", false});
    }
    {
        auto t = ok_until_data();
        t.rcpt = {make(451, "4.1.1", "greylisted")};
        rows.push_back({"4xx to RCPT", t, std::nullopt, ok::transient, "4.1.1", true});
        // Its RCPT was refused: not part of the content that may have been delivered.
        rows.push_back({"4xx to RCPT, lost after the end of data", t, fail(k::connection_lost, true), ok::transient,
                        "4.1.1", true});
        t.rcpt = {make(550, "5.1.1", "unknown")};
        rows.push_back({"5xx to RCPT, then lost", t, fail(k::connection_lost, false), ok::permanent, "5.1.1", false});
    }
    {
        auto t = ok_until_data();
        t.data = make(451, "4.3.0", "no");
        rows.push_back({"4xx to DATA", t, std::nullopt, ok::transient, "4.3.0", true});
        t.data.reset();
        rows.push_back({"421 to another RCPT: never answered", t, std::nullopt, ok::transient, "4.4.2", true});
        rows.push_back({"lost before DATA", t, fail(k::connection_lost, false), ok::transient, "4.4.2", true});
        rows.push_back({"timeout before DATA", t, fail(k::timeout, false), ok::transient, "4.4.2", true});
        rows.push_back({"protocol error before DATA", t, fail(k::protocol_error, false), ok::transient, "4.5.0", true});
    }
    {
        smtp::transaction_result t;
        t.rcpt.resize(1);
        t.local_refusal = make(550, "5.6.7", "SMTPUTF8 required but not supported by the server");
        rows.push_back({"local refusal", t, std::nullopt, ok::permanent, "5.6.7", false});
    }
    for (const auto& r : rows) {
        SCOPED_TRACE(r.name);
        const auto v = delivery::classify_transaction(r.t, 0, r.failure ? &*r.failure : nullptr, relay);
        EXPECT_EQ(v.out.result, r.result);
        EXPECT_EQ(v.out.dsn, r.dsn);
        EXPECT_EQ(v.next_host, r.next_host);
    }
}

// A failure never carries a 2.x.x or 3.x.x status (RFC 3463: a deferral is class 4): a greeting
// that is neither 220 nor a 4xx (354, 554, 250) defers 4.4.2 like a 5xx one, and a 2xx to DATA
// is no delivery. Before: "354 hi" as the greeting deferred with 2.0.0 (at queue.max_age a DSN
// said "Action: failed, Status: 2.0.0").
TEST(outcome, non_refusal_replies_never_give_a_success_status_to_a_failure) {
    using k = smtp::client_failure::kind;
    struct row {
        smtp::reply greeting;
        const char* dsn;
    };
    const row rows[] = {
        {make(354, "", "hi"), "4.4.2"},
        {make(250, "2.0.0", "hi"), "4.4.2"},
        {make(554, "5.7.1", "go away"), "4.4.2"},
        {make(421, "4.3.2", "busy"), "4.3.2"},
        {make(450, "", "busy"), "4.0.0"},
    };
    for (const auto& r : rows) {
        smtp::client_failure f;
        f.what = k::greeting_refused;
        f.last_reply = r.greeting;
        const auto o = delivery::classify_failure(f, "mx.dest.test[192.0.2.1]:25");
        EXPECT_EQ(o.result, delivery::outcome::kind::transient) << r.greeting.code;
        EXPECT_EQ(o.dsn, r.dsn) << r.greeting.code;
    }
    smtp::transaction_result t;
    t.mail = make(250, "2.1.0", "Ok");
    t.rcpt = {make(250, "2.1.5", "Ok")};
    t.data = make(250, "2.0.0", "Ok");
    const auto o = delivery::classify_recipient(t, 0);
    EXPECT_EQ(o.result, delivery::outcome::kind::transient);
    EXPECT_EQ(o.dsn, "4.5.0");
}
