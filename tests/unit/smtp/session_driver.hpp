// tests/unit/smtp/session_driver.hpp - drive smtp::server_session like server/session.cpp does,
// with a fake policy, recording replies, events and delivered messages (chasquid-style fake peer).
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "smtp/server_session.hpp"

namespace postern::smtp::test {

// Hosted domain "example.test" (a bare <Postmaster> is Postmaster@example.test); other
// recipient domains are relay attempts ("greylist.test" gets a 450); senders at "blocked.test"
// are refused, at "shutdown.test" get a 421, at "xn--bcher-kva.test" a 530 (a mandatory-TLS
// sender profile). Domains are compared as a real policy does: by domain_lower(), the A-label
// form, so "xn--fsq.example.test" is hosted under both of its spellings.
// Records every check_sender/check_recipient call.
struct fake_policy : server_policy {
    std::vector<std::string> senders_seen;
    std::vector<std::string> recipients_seen;

    std::optional<reply> check_sender(const transaction& t) override {
        senders_seen.push_back(t.sender.null ? "<>" : t.sender.box.str());
        if (!t.sender.null && t.sender.box.domain_lower() == "blocked.test")
            return make_reply(554, "5.7.1", "Sender rejected");
        if (!t.sender.null && t.sender.box.domain_lower() == "shutdown.test")
            return make_reply(421, "4.3.2", "mx.example.test Service shutting down");
        if (!t.sender.null && t.sender.box.domain_lower() == "xn--bcher-kva.test")
            return make_reply(530, "5.7.0", "Must issue a STARTTLS command first");
        return std::nullopt;
    }
    std::optional<reply> check_recipient(const transaction&, const mailbox& rcpt) override {
        recipients_seen.push_back(rcpt.str());
        const std::string d = rcpt.domain_lower();
        if (d == "example.test" || d == "xn--fsq.example.test" || d == "xn--hxajbheg2az3al.xn--jxalpdlp")
            return std::nullopt;
        if (d == "greylist.test") return make_reply(450, "4.7.1", "Try again later");
        return make_reply(554, "5.7.1", "Relay access denied");
    }
    std::optional<reply> postmaster_refusal;  // set: no local postmaster
    std::variant<mailbox, reply> complete_postmaster(const mailbox& bare) override {
        if (postmaster_refusal) return *postmaster_refusal;
        mailbox full = bare;
        full.domain = "example.test";
        return full;
    }
};

inline server_settings test_settings() {
    server_settings s;
    s.hostname = "mx.example.test";
    s.max_message_size = 10000;
    s.max_recipients = 5;
    s.max_errors = 10;
    s.max_line_length = 512;
    s.starttls_offered = true;
    return s;
}

struct delivered {
    transaction envelope;
    std::string body;
};

inline const char* to_string(event e) {
    switch (e) {
        case event::need_input: return "need_input";
        case event::start_tls: return "start_tls";
        case event::message: return "message";
        case event::close: return "close";
    }
    return "?";
}

class driver {
public:
    explicit driver(server_settings settings = test_settings()) : s(std::move(settings), policy) {
        s.start();
        output += s.take_output();
    }

    // Feed bytes and run the session until it needs input or closes; returns the replies
    // produced by this call.
    std::string feed(std::string_view bytes) {
        s.feed(bytes);
        return run();
    }
    std::string eof() {
        s.feed_eof();
        return run();
    }

    std::string run() {
        std::string produced;
        for (;;) {
            const event ev = s.next();
            events.push_back(ev);
            switch (ev) {
                case event::need_input:
                    produced += take();
                    return produced;
                case event::start_tls:
                    produced += take();
                    if (!auto_tls) return produced;
                    ++handshakes;
                    s.tls_started(tls_facts{"TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256});
                    break;
                case event::message:
                    messages.push_back({s.current(), s.body()});
                    if (on_message) on_message();
                    s.message_done(store_reply);
                    break;
                case event::close:
                    closed = true;
                    produced += take();
                    return produced;
            }
        }
    }

    // Say EHLO and forget its reply (tests about later commands).
    driver& ehlo() {
        feed("EHLO client.test\r\n");
        return *this;
    }
    // EHLO + MAIL (tests about RCPT).
    driver& mail() {
        ehlo();
        feed("MAIL FROM:<a@sender.test>\r\n");
        return *this;
    }
    // EHLO + MAIL + one accepted RCPT.
    driver& envelope() {
        ehlo();
        feed("MAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@example.test>\r\n");
        return *this;
    }

    std::size_t count(event e) const {
        std::size_t n = 0;
        for (auto x : events) n += x == e;
        return n;
    }

    fake_policy policy;  // declared before `s`: the session keeps a reference
    server_session s;
    std::string output;  // every reply since the greeting
    std::vector<event> events;
    std::vector<delivered> messages;
    int handshakes = 0;
    bool auto_tls = true;
    bool closed = false;
    reply store_reply = make_reply(250, "2.0.0", "Ok: queued as 4F2A");
    std::function<void()> on_message;  // at event::message, before message_done (body still held)

private:
    std::string take() {
        std::string o = s.take_output();
        output += o;
        return o;
    }
};

}  // namespace postern::smtp::test
