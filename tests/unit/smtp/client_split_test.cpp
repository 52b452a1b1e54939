// tests/unit/smtp/client_split_test.cpp - one full client conversation (STARTTLS, pipelined
// transaction with a refused recipient, QUIT) with every server reply fed whole, byte by
// byte and split at every offset: the client writes the same bytes and reports the same
// events and results (sans-I/O: TCP segmentation must not matter).
#include <gtest/gtest.h>

#include <functional>

#include "client_driver.hpp"

namespace postern::smtp::test {
namespace {

// The server's side of the conversation, one entry per turn (each is fed only once the
// client waits for it, as a real server would answer).
const std::vector<std::string> turns = {
    "220 mx.example.test ESMTP\r\n",
    "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
    "220 2.0.0 Ready to start TLS\r\n",
    "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 20000\r\n250-ENHANCEDSTATUSCODES\r\n"
    "250 8BITMIME\r\n",
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550-5.1.1 <nobody@example.test>:\r\n"
    "550 5.1.1 Recipient address rejected\r\n250 2.1.5 Ok\r\n354 End data\r\n",
    "250 2.0.0 Ok: queued as 4F2A\r\n",
    "221 2.0.0 Bye\r\n",
};

const std::string_view content = "Subject: split\r\n\r\n.leading dot\r\nbody\r\n";

using splitter = std::function<std::vector<std::string_view>(std::size_t turn, std::string_view)>;

// Runs the conversation; returns everything observable, as one string.
std::string converse(const splitter& split) {
    client_driver d;
    std::string log;
    int messages = 0;
    bool over = false;
    auto react = [&](client_event ev) {
        // Act on events until the session needs input (need_input is not logged: how many
        // there are depends on the segmentation).
        while (ev != client_event::need_input) {
            log += std::string("[") + to_string(ev) + "]";
            switch (ev) {
                case client_event::ehlo_done:
                    if (!d.c.tls_active() && d.c.caps().starttls) d.c.starttls();
                    else d.c.proceed();
                    break;
                case client_event::start_tls:
                    d.c.tls_started();
                    break;
                case client_event::ready:
                    if (messages++ == 0) {
                        auto m = test_message(
                            {"bob@example.test", "nobody@example.test", "carol@example.test"}, content);
                        m.eight_bit = true;
                        d.c.send_message(m);
                    } else {
                        d.c.quit();
                    }
                    break;
                case client_event::message_done: {
                    const auto& r = d.c.result();
                    log += "mail=" + std::to_string(r.mail->code) + " rcpt=";
                    for (const auto& x : r.rcpt) log += std::to_string(x->code) + x->enhanced + ",";
                    log += " data=" + std::to_string(r.data->code) + " final=" +
                           std::to_string(r.final->code) + " " + r.final->lines.at(0);
                    break;
                }
                case client_event::failed:
                    log += "failed: " + d.c.failure().detail;
                    over = true;
                    return;
                case client_event::closed:
                    over = true;
                    return;
                case client_event::need_input:
                    break;
            }
            ev = d.run();
        }
    };
    react(d.run());
    for (std::size_t t = 0; t < turns.size(); ++t)
        for (auto piece : split(t, turns[t]))
            if (!over) react(d.feed(piece));  // empty pieces included
    return log + "\n" + d.written + "\ncaps size=" + std::to_string(d.c.caps().size.value_or(1)) +
           " tls=" + std::to_string(d.c.tls_active());
}

std::vector<std::string_view> whole(std::size_t, std::string_view s) { return {s}; }

TEST(SmtpClientSplit, ReferenceConversation) {
    const std::string ref = converse(whole);
    EXPECT_EQ(ref,
              "[ehlo_done][start_tls][ehlo_done][ready]"
              "[message_done]mail=250 rcpt=2502.1.5,5505.1.1,2502.1.5, data=354 final=250 "
              "Ok: queued as 4F2A[ready][closed]\n"
              "EHLO client.test\r\nSTARTTLS\r\nEHLO client.test\r\n"
              "MAIL FROM:<alice@sender.test> SIZE=38 BODY=8BITMIME\r\n"
              "RCPT TO:<bob@example.test>\r\nRCPT TO:<nobody@example.test>\r\n"
              "RCPT TO:<carol@example.test>\r\nDATA\r\n"
              "Subject: split\r\n\r\n..leading dot\r\nbody\r\n.\r\n"
              "QUIT\r\n"
              "\ncaps size=20000 tls=1");
}

TEST(SmtpClientSplit, ByteByByte) {
    const std::string ref = converse(whole);
    EXPECT_EQ(converse([](std::size_t, std::string_view s) {
                  std::vector<std::string_view> v;
                  for (std::size_t i = 0; i < s.size(); ++i) v.push_back(s.substr(i, 1));
                  return v;
              }),
              ref);
}

TEST(SmtpClientSplit, EveryOffsetOfEveryTurn) {
    const std::string ref = converse(whole);
    for (std::size_t turn = 0; turn < turns.size(); ++turn) {
        for (std::size_t k = 0; k <= turns[turn].size(); ++k) {
            const std::string got = converse([&](std::size_t t, std::string_view s) {
                if (t != turn) return std::vector<std::string_view>{s};
                return std::vector<std::string_view>{s.substr(0, k), s.substr(k)};
            });
            ASSERT_EQ(got, ref) << "turn " << turn << " split at " << k;
        }
    }
}

TEST(SmtpClientSplit, SameOffsetInEveryTurn) {
    const std::string ref = converse(whole);
    std::size_t longest = 0;
    for (const auto& t : turns) longest = std::max(longest, t.size());
    for (std::size_t k = 0; k <= longest; ++k) {
        const std::string got = converse([&](std::size_t, std::string_view s) {
            const std::size_t at = std::min(k, s.size());
            return std::vector<std::string_view>{s.substr(0, at), s.substr(at)};
        });
        ASSERT_EQ(got, ref) << "split at " << k;
    }
}

}  // namespace
}  // namespace postern::smtp::test
