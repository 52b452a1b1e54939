// fuzz/smtp_client.cpp - smtp::client_session (the outbound state machine) fed arbitrary server
// replies, driven like outbound/attempt.cpp: STARTTLS when offered (or not), up to four
// messages on one connection, QUIT at the end or at any failure.
// Input: a flags octet (STARTTLS wanted, QUIT at EHLO, failed handshake, message count, feeding
// mode, timeout or EOF at the end, 8-bit first content), one octet per message (content, recipients, 8BITMIME,
// SMTPUTF8, null sender, oversize), two octets of split offset, then the server's bytes. They
// are fed one line per need_input (each line cut in two at the offset, or not), or in chunks
// separated by 0xFF octets (several replies at once: pipelining, unsolicited data).
// Invariants, beyond no crash / leak / UB / assertion:
// - the client writes only commands (EHLO/HELO, STARTTLS, MAIL FROM with the message's sender
//   and allowed parameters, RCPT TO with its recipients, DATA, RSET, QUIT, "."), each ending in
//   CRLF, and message content only as dot_stuff(content) at the end of what it wrote, or as
//   dot_stuff of its 7-bit form (message/seven_bit.hpp) with SIZE= of that form; 8-bit content
//   never to a server without 8BITMIME (unless sent SMTPUTF8 to a server offering it; the
//   8-bit test content has a 7-bit form, so it is converted even when not declared);
// - content only after a 354 to DATA with MAIL and at least one RCPT accepted, at most once per
//   transaction; a final reply recorded only if the content was sent;
// - results are consistent (one RCPT slot per recipient; no RCPT or DATA reply without MAIL's;
//   a local refusal sends nothing); a failure has a reason, and during_final_reply only while
//   waiting for the final reply;
// - STARTTLS only when the EHLO offered it, once; after the handshake the capabilities are
//   forgotten and EHLO is sent again;
// - nothing after QUIT; the session ends (closed or failed) once the input is exhausted;
// - the line-by-line and the split-lines feeding give the same commands, events and results.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz.hpp"
#include "message/seven_bit.hpp"
#include "smtp/client_session.hpp"

namespace postern::fuzz {
namespace {

using namespace postern::smtp;

constexpr std::string_view contents[] = {
    "Subject: one\r\n\r\nhello\r\n",
    "Subject: dots\r\n\r\n.leading\r\n..two\r\n.\r\nend",  // a "." line; no final CRLF
    "Subject: bare\n\nfake\n.\nend\r.\rmore\r\n",         // smuggling attempts as content
    "Subject: empty\r\n\r\n",
};
// Content 0 when the flags' top bit is set: 8-bit, made 7-bit for a server without 8BITMIME.
constexpr std::string_view eight_bit_content = "Subject: eight\r\n\r\nGr\xc3\xbc\xc3\x9f" "e\r\n.dot\r\n\xff";

bool ascii(std::string_view s) {
    for (char c : s)
        if (static_cast<unsigned char>(c) >= 0x80) return false;
    return true;
}

struct plan {
    bool want_tls = false;
    bool quit_at_ehlo = false;
    bool fail_handshake = false;
    bool chunked = false;
    bool timeout_at_end = false;
    std::vector<outgoing_message> messages;
    std::vector<std::string> stuffed;  // dot_stuff(content) of each message
    std::vector<std::string> stuffed7;  // dot_stuff of its 7-bit form (the same when 7-bit)
    std::vector<std::uint64_t> size7;   // the size of its 7-bit form
};

plan make_plan(input& in) {
    plan p;
    const std::uint8_t f = in.byte();
    p.want_tls = f & 1;
    p.quit_at_ehlo = (f & 0x06) == 0x06;  // rarely: it ends the conversation at once
    p.fail_handshake = f & 4 && !(f & 2);
    const int n = 1 + ((f >> 3) & 3);
    p.chunked = f & 0x20;
    p.timeout_at_end = f & 0x40;
    const bool eight = f & 0x80;
    for (int i = 0; i < n; ++i) {
        const std::uint8_t v = in.byte();
        outgoing_message m;
        m.content = eight && (v & 3) == 0 ? eight_bit_content : contents[v & 3];
        const int rcpts = (v >> 2) & 3;
        static const char* const names[] = {"bob@example.test", "carol@example.test", "dave@other.test"};
        for (int r = 0; r < rcpts; ++r) m.recipients.push_back(names[r]);
        if (rcpts == 0) m.recipients.push_back(v & 0x80 ? "" : "ev\x01l@example.test");  // local refusal
        m.eight_bit = v & 0x10;
        m.smtputf8 = v & 0x20;
        m.sender = v & 0x40 ? "" : (m.smtputf8 ? "\xc3\xbcser@sender.test" : "alice@sender.test");
        m.size = v & 0x80 ? 1000000000 : m.content.size();
        p.messages.push_back(m);
        std::string s;
        dot_stuff(m.content, s);
        p.stuffed.push_back(s);
        const auto seven = postern::message::to_seven_bit(m.content, "client.test");
        FUZZ_CHECK(seven.content.has_value(), "the 8-bit test content has a 7-bit form: " + seven.why);
        s.clear();
        dot_stuff(*seven.content, s);
        p.stuffed7.push_back(s);
        p.size7.push_back(ascii(m.content) ? m.size : seven.content->size());
    }
    return p;
}

class driver {
public:
    driver(const plan& p, std::vector<std::string_view> pieces) : p_(p), pieces_(std::move(pieces)) {
        client_settings s;
        s.helo_name = "client.test";
        s.max_reply_line = 512;
        s.max_reply_lines = 20;
        c_.emplace(s);
    }

    // The whole conversation; returns the transcript (commands written, events, results).
    std::string run() {
        for (int guard = 0;; ++guard) {
            FUZZ_CHECK(guard < 100000, "the conversation does not end");
            const client_event ev = c_->next();
            const std::string out = c_->take_output();
            check_output(out);
            if (ev != client_event::need_input) log_ += std::string("[") + to_string(ev) + "]";
            switch (ev) {
                case client_event::need_input:
                    if (next_piece_ < pieces_.size()) {
                        c_->feed(pieces_[next_piece_++]);
                    } else {
                        FUZZ_CHECK(!ended_, "need_input after EOF");
                        ended_ = true;
                        if (p_.timeout_at_end) c_->timeout();
                        else c_->feed_eof();
                    }
                    break;
                case client_event::ehlo_done: {
                    const capabilities& k = c_->caps();
                    log_ += k.esmtp ? "esmtp" : "helo";
                    log_ += k.starttls ? " starttls" : "";
                    log_ += k.pipelining ? " pipelining" : "";
                    if (k.size) log_ += " size=" + std::to_string(*k.size);
                    if (p_.quit_at_ehlo) {
                        c_->quit();
                    } else if (p_.want_tls && k.starttls && !c_->tls_active()) {
                        FUZZ_CHECK(!starttls_sent_, "STARTTLS offered again inside TLS");
                        starttls_sent_ = true;
                        c_->starttls();
                    } else {
                        c_->proceed();
                    }
                    break;
                }
                case client_event::start_tls:
                    FUZZ_CHECK(starttls_sent_ && !c_->tls_active(), "start_tls without STARTTLS");
                    if (p_.fail_handshake) {
                        c_->quit();
                        FUZZ_CHECK(c_->take_output().empty(), "QUIT in plaintext after a failed handshake");
                    } else {
                        c_->tls_started();
                        const capabilities& k = c_->caps();
                        FUZZ_CHECK(!k.esmtp && !k.starttls && !k.pipelining && !k.size && !k.chunking &&
                                       !k.smtputf8 && !k.eight_bit_mime,
                                   "capabilities survive the handshake");
                        expect_ehlo_ = true;
                    }
                    break;
                case client_event::ready:
                    if (sent_ < p_.messages.size()) {
                        begin_message();
                    } else {
                        c_->quit();
                    }
                    break;
                case client_event::message_done:
                    check_result();
                    if (!c_->reusable()) c_->quit();
                    break;
                case client_event::failed: {
                    const client_failure& f = c_->failure();
                    FUZZ_CHECK(!f.detail.empty(), "failure without a reason");
                    FUZZ_CHECK(!f.during_final_reply || c_->state() == client_state::content,
                               "during_final_reply outside the final reply");
                    using kind = client_failure::kind;
                    FUZZ_CHECK(f.last_reply.has_value() == (f.what == kind::greeting_refused ||
                                                            f.what == kind::helo_refused ||
                                                            f.what == kind::starttls_refused),
                               "last_reply for " + std::string(to_string(f.what)));
                    log_ += std::string(to_string(f.what)) + ": " + f.detail;
                    c_->quit();
                    break;
                }
                case client_event::closed:
                    FUZZ_CHECK(c_->next() == client_event::closed && c_->take_output().empty(), "after closed");
                    return written_ + "\n" + log_;
            }
        }
    }

private:
    void begin_message() {
        cur_ = sent_++;
        c_->send_message(p_.messages[cur_]);
        content_sent_ = false;
        in_message_ = true;
    }

    // The message's results, at message_done.
    void check_result() {
        FUZZ_CHECK(in_message_, "message_done without a message");
        in_message_ = false;
        const transaction_result& r = c_->result();
        const outgoing_message& m = p_.messages[cur_];
        FUZZ_CHECK(r.rcpt.size() == m.recipients.size(), "one RCPT slot per recipient");
        if (r.local_refusal) {
            FUZZ_CHECK(!r.mail && !r.data && !r.final && !content_sent_, "local refusal but something was sent");
            FUZZ_CHECK(r.local_refusal->permanent(), "local refusal not permanent");
        }
        bool any_rcpt = false, any_rcpt_ok = false;
        for (const auto& x : r.rcpt) {
            any_rcpt |= x.has_value();
            any_rcpt_ok |= x && x->positive();
        }
        FUZZ_CHECK(!any_rcpt || r.mail, "RCPT reply without MAIL reply");
        FUZZ_CHECK(!r.data || r.mail, "DATA reply without MAIL reply");
        if (r.final) {
            FUZZ_CHECK(content_sent_, "final reply recorded but no content sent");
            FUZZ_CHECK(r.data && r.data->code == 354 && r.mail->positive() && any_rcpt_ok,
                       "final reply without 354, MAIL and an accepted RCPT");
            FUZZ_CHECK(r.final->code / 100 != 3, "3xx final reply");
            log_ += " final=" + std::to_string(r.final->code);
        }
        if (content_sent_)
            FUZZ_CHECK(r.data && r.data->code == 354 && r.mail && r.mail->positive() && any_rcpt_ok,
                       "content sent without 354, MAIL and an accepted RCPT");
    }

    // What the client wrote in one step: command lines, then possibly the message content.
    void check_output(std::string_view out) {
        if (out.empty()) return;
        FUZZ_CHECK(!quit_sent_, "output after QUIT: " + show(out));
        std::string_view cmds = out;
        if (in_message_) {
            const auto ends_with = [&](const std::string& s) {
                return cmds.size() >= s.size() && cmds.substr(cmds.size() - s.size()) == s;
            };
            const std::string& s = p_.stuffed[cur_];
            const std::string& s7 = p_.stuffed7[cur_];
            const bool as_is = ends_with(s), seven = !as_is && ends_with(s7);
            if (as_is || seven) {
                // ".\r\n" alone is also the stuffed form of an empty content; contents[] has none.
                FUZZ_CHECK(!content_sent_, "content sent twice");
                // SMTPUTF8 implies 8-bit transport (RFC 6531 3.1: its servers support 8BITMIME).
                FUZZ_CHECK(c_->caps().eight_bit_mime || (c_->caps().smtputf8 && p_.messages[cur_].smtputf8) ||
                               ascii(as_is ? s : s7),
                           "8-bit content to a server without 8BITMIME: " + show(out));
                content_sent_ = true;
                cmds.remove_suffix(as_is ? s.size() : s7.size());
            }
        }
        std::size_t pos = 0;
        while (pos < cmds.size()) {
            const std::size_t e = cmds.find("\r\n", pos);
            FUZZ_CHECK(e != std::string_view::npos, "command without CRLF: " + show(out));
            check_command(cmds.substr(pos, e - pos), out);
            pos = e + 2;
        }
        written_ += out;
    }

    void check_command(std::string_view line, std::string_view out) {
        FUZZ_CHECK(line.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos,
                   "control in a command: " + show(out));
        if (expect_ehlo_) {
            FUZZ_CHECK(line == "EHLO client.test", "no EHLO after the handshake: " + show(out));
            expect_ehlo_ = false;
            return;
        }
        if (line == "EHLO client.test" || line == "HELO client.test" || line == "DATA" || line == "RSET" ||
            line == ".")
            return;
        if (line == "STARTTLS") {
            FUZZ_CHECK(starttls_sent_ && !c_->tls_active(), "unexpected STARTTLS");
            return;
        }
        if (line == "QUIT") {
            quit_sent_ = true;
            return;
        }
        FUZZ_CHECK(in_message_, "transaction command outside a message: " + show(line));
        const outgoing_message& m = p_.messages[cur_];
        const std::string mail = "MAIL FROM:<" + m.sender + ">";
        if (line.substr(0, mail.size()) == mail) {
            std::string_view params = line.substr(mail.size());
            for (std::string_view p : {" SIZE=", " BODY=8BITMIME", " SMTPUTF8"}) {
                if (params.substr(0, p.size()) != p) continue;
                params.remove_prefix(p.size());
                if (p == " SIZE=") {
                    const std::string_view n = params.substr(0, params.find_first_not_of("0123456789"));
                    FUZZ_CHECK(n == std::to_string(m.size) || n == std::to_string(p_.size7[cur_]),
                               "SIZE value: " + show(line));
                    params.remove_prefix(n.size());
                }
                // Declared for 8-bit content also when the client only said SMTPUTF8 (a UTF-8
                // body needs only 8BITMIME where SMTPUTF8 is not offered).
                FUZZ_CHECK(p != " BODY=8BITMIME" || m.eight_bit || (m.smtputf8 && !ascii(m.content)),
                           "BODY=8BITMIME for 7-bit content");
                FUZZ_CHECK(p != " SMTPUTF8" || m.smtputf8, "SMTPUTF8 without need");
            }
            FUZZ_CHECK(params.empty(), "MAIL parameters: " + show(line));
            return;
        }
        for (const auto& r : m.recipients)
            if (line == "RCPT TO:<" + r + ">") return;
        FUZZ_CHECK(false, "not a command: " + show(line) + " in " + show(out));
    }

    const plan& p_;
    std::vector<std::string_view> pieces_;
    std::optional<client_session> c_;
    std::size_t next_piece_ = 0;
    std::size_t sent_ = 0, cur_ = 0;
    bool ended_ = false;
    bool in_message_ = false;
    bool content_sent_ = false;
    bool starttls_sent_ = false;
    bool expect_ehlo_ = false;
    bool quit_sent_ = false;
    std::string written_;
    std::string log_;
};

// One piece per line (with its LF); with `cut`, each line in two pieces at that offset.
std::vector<std::string_view> lines(std::string_view s, std::size_t cut) {
    std::vector<std::string_view> out;
    while (!s.empty()) {
        const std::size_t e = s.find('\n');
        const std::size_t len = e == std::string_view::npos ? s.size() : e + 1;
        const std::string_view line = s.substr(0, len);
        const std::size_t k = cut % (len + 1);
        if (k > 0 && k < len) {
            out.push_back(line.substr(0, k));
            out.push_back(line.substr(k));
        } else {
            out.push_back(line);
        }
        s.remove_prefix(len);
    }
    return out;
}

std::vector<std::string_view> chunks(std::string_view s) {
    std::vector<std::string_view> out;
    for (;;) {
        const std::size_t e = s.find('\xff');
        out.push_back(s.substr(0, e));
        if (e == std::string_view::npos) return out;
        s.remove_prefix(e + 1);
    }
}

}  // namespace
}  // namespace postern::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace postern::fuzz;
    input in(data, size);
    const plan p = make_plan(in);
    const std::size_t cut = in.u16();
    const std::string_view stream = in.rest();
    if (p.chunked) {
        driver(p, chunks(stream)).run();
        return 0;
    }
    const std::string whole = driver(p, lines(stream, 0)).run();
    const std::string split = driver(p, lines(stream, cut)).run();
    FUZZ_CHECK(whole == split, "line-split feeding differs:\n  " + show(whole) + "\n  " + show(split));
    return 0;
}
