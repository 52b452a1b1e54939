// tests/unit/smtp/client_driver.hpp - a scripted fake SMTP server for smtp::client_session:
// feed it replies, collect exactly what the client wrote (chasquid-style fake peer).
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "smtp/client_session.hpp"

namespace postern::smtp::test {

inline client_settings client_test_settings() {
    client_settings s;
    s.helo_name = "client.test";
    s.max_reply_line = 512;
    s.max_reply_lines = 20;
    return s;
}

// What Postern's own server advertises (server_session.cpp), with a SIZE limit of 10000.
inline constexpr std::string_view full_ehlo =
    "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";
// A plain server: no PIPELINING, no SIZE, no STARTTLS.
inline constexpr std::string_view plain_ehlo =
    "250-mx.example.test\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n";

inline outgoing_message test_message(std::vector<std::string> rcpts,
                                     std::string_view content = "Subject: t\r\n\r\nhi\r\n") {
    outgoing_message m;
    m.sender = "alice@sender.test";
    m.recipients = std::move(rcpts);
    m.content = content;
    m.size = content.size();
    return m;
}

class client_driver {
public:
    explicit client_driver(client_settings settings = client_test_settings())
        : c(std::move(settings)) {}

    // One step of the driver loop: the next event, and whatever the client wrote for it.
    client_event run() {
        const client_event ev = c.next();
        events.push_back(ev);
        written += c.take_output();
        return ev;
    }
    client_event feed(std::string_view bytes) {
        c.feed(bytes);
        return run();
    }
    client_event eof() {
        c.feed_eof();
        return run();
    }
    // What the client wrote since the last take().
    std::string take() { return std::exchange(written, std::string()); }

    // Greeting and EHLO, without STARTTLS: the session is ready for a message.
    void connect(std::string_view ehlo_reply = full_ehlo) {
        EXPECT_EQ(run(), client_event::need_input);
        EXPECT_EQ(feed("220 mx.example.test ESMTP\r\n"), client_event::need_input);
        EXPECT_EQ(take(), "EHLO client.test\r\n");
        EXPECT_EQ(feed(ehlo_reply), client_event::ehlo_done);
        c.proceed();
        EXPECT_EQ(run(), client_event::ready);
    }

    client_session c;
    std::string written;
    std::vector<client_event> events;
};

}  // namespace postern::smtp::test
