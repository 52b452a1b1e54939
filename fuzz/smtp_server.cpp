// fuzz/smtp_server.cpp - smtp::server_session (the inbound state machine) fed arbitrary bytes.
// Input: a flags octet (settings, store reply, TLS policy refusal, timeout, EOF), two octets of
// split offset, then the client's byte stream. The driver is server/session.cpp's loop with a
// permissive policy: STARTTLS handshakes succeed, every message is "stored".
// Invariants, beyond no crash / leak / UB / assertion:
// - replies are well-formed (fuzz.hpp check_replies: 3 digits, CRLF, <= 512 octets a line) and
//   bounded: at most a fixed amount of output per line received;
// - a DATA message (the event the driver answers "250 ... queued") only when the data ended
//   with CR LF "." CR LF (or "." CR LF right after the DATA line), never on a bare LF/CR;
// - message bodies have CRLF line ends only, lines <= 998 octets, at most max_message_size;
//   DATA bodies end with CRLF; a message has 1..max_recipients recipients, each one a valid
//   path (parse_path round trip) with a domain (a bare <Postmaster> completed), none twice,
//   and non-ASCII addresses only with SMTPUTF8;
// - with require_tls, no message without TLS; after refuse_commands(), no message at all;
// - input buffered while waiting for a command stays under max_line_length;
// - nothing is written after the close;
// - the stream fed in one piece, split at a fuzz-chosen offset, or byte by byte gives the same
//   replies and messages (up to the first STARTTLS: where the stream is cut decides what was
//   plaintext pipelined before the handshake, discarded by design).
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fuzz.hpp"
#include "smtp/server_session.hpp"

namespace postern::fuzz {
namespace {

using namespace postern::smtp;

// Accepts everything but a few domains, so that refusals (5xx, 4xx, 421, 2xx with text) are
// reachable too; a bare <Postmaster> is Postmaster@mx.example.test.
struct permissive_policy : server_policy {
    std::optional<reply> check_sender(const transaction& t) override {
        if (t.sender.null) return std::nullopt;
        const std::string d = t.sender.box.domain_lower();
        if (d == "blocked.test") return make_reply(554, "5.7.1", "Sender rejected");
        if (d == "shutdown.test") return make_reply(421, "4.3.2", "mx.example.test Service shutting down");
        return std::nullopt;
    }
    std::optional<reply> check_recipient(const transaction&, const mailbox& rcpt) override {
        const std::string d = rcpt.domain_lower();
        if (d == "relay.test") return make_reply(554, "5.7.1", "Relay access denied");
        if (d == "greylist.test") return make_reply(450, "4.7.1", "Try again later");
        if (d == "note.test") return make_reply(251, "2.1.5", "User not local; will forward");
        return std::nullopt;
    }
    std::variant<mailbox, reply> complete_postmaster(const mailbox& bare) override {
        mailbox full = bare;
        full.domain = "mx.example.test";
        return full;
    }
};

struct options {
    server_settings settings;
    reply store_reply;
    bool refuse_after_tls = false;  // refuse_commands() after the handshake (profile not met)
    bool timeout_at_end = false;
    bool eof_at_end = true;
};

options make_options(std::uint8_t flags) {
    options o;
    server_settings& s = o.settings;
    s.hostname = "mx.example.test";
    s.require_tls = flags & 1;
    s.starttls_offered = !(flags & 2) || s.require_tls;
    if (flags & 4) {  // tight limits reach the limit paths with short inputs
        s.max_message_size = 64;
        s.max_recipients = 2;
        s.max_errors = 3;
        s.max_line_length = 64;
    } else {
        s.max_message_size = 10000;
        s.max_recipients = 5;
        s.max_errors = 10;
        s.max_line_length = 512;
    }
    static const reply replies[] = {
        make_reply(250, "2.0.0", "Ok: queued as 4F2A"),
        make_reply(451, "4.3.0", "Error: queue file write error"),
        make_reply(552, "5.3.4", "Error: message too big"),
        make_reply(421, "4.3.0", "mx.example.test Error: shutting down"),
    };
    o.store_reply = replies[(flags >> 3) & 3];
    o.refuse_after_tls = flags & 32;
    o.timeout_at_end = flags & 64;
    o.eof_at_end = !(flags & 128);
    return o;
}

struct outcome {
    std::string output;
    std::vector<std::string> messages;
    bool closed = false;
    // Output and messages up to the first start_tls event (all of it when there is none).
    std::size_t output_before_tls = std::string::npos;
    std::size_t messages_before_tls = std::string::npos;
};

bool valid_path_text(const mailbox& b) {
    // What the session accepted must parse again the same way (spool, logs and the next hop
    // all rely on it).
    const auto p = parse_path("<" + b.str() + ">", false, true, true);
    return p && p->box.local == b.local && p->box.domain == b.domain && p->box.utf8 == b.utf8;
}

class driver {
public:
    driver(const options& o, std::string_view stream)
        : o_(o), stream_(stream), s_(o.settings, policy_) {
        s_.start();
        collect();
    }

    // Feeds stream_[from, to) and runs to need_input or close.
    void feed(std::size_t from, std::size_t to) {
        s_.feed(stream_.substr(from, to - from));
        fed_ = to;
        run();
    }
    void finish() {
        if (o_.timeout_at_end) s_.timeout();
        if (o_.eof_at_end || o_.timeout_at_end) s_.feed_eof();
        run();
        if (res_.closed) {  // nothing more after the close, whatever arrives
            s_.feed("NOOP\r\n");
            FUZZ_CHECK(s_.next() == event::close, "next() after close");
            FUZZ_CHECK(s_.take_output().empty(), "output after close");
        }
        std::size_t lines = 0;
        for (char c : stream_) lines += c == '\n';
        // Each line gets at most a reply and a 421; add the greeting and a timeout's 421.
        FUZZ_CHECK(res_.output.size() <= 1024 * (lines + 2),
                   "output not bounded: " + std::to_string(res_.output.size()) + " octets for " +
                       std::to_string(lines) + " lines");
        check_replies(res_.output);
        if (res_.output_before_tls == std::string::npos) {
            res_.output_before_tls = res_.output.size();
            res_.messages_before_tls = res_.messages.size();
        }
    }

    // Byte-by-byte feeding also knows where each DATA body started (see on_message).
    void set_track_data(bool on) { track_data_ = on; }
    void feed_byte(std::size_t i) {
        const state before = s_.current_state();
        feed(i, i + 1);
        if (!track_data_) return;
        const state after = s_.current_state();
        if (after != state::in_data) data_start_ = npos;  // ended (message or refused) or never began
        else if (before != state::in_data) data_start_ = fed_;
    }

    const outcome& result() const { return res_; }

private:
    void collect() { res_.output += s_.take_output(); }

    void run() {
        for (int guard = 0;; ++guard) {
            FUZZ_CHECK(guard < 1000000, "next() does not settle");
            const event ev = s_.next();
            switch (ev) {
                case event::need_input:
                    collect();
                    FUZZ_CHECK(s_.buffered() < o_.settings.max_line_length,
                               "buffered input beyond the line limit: " + std::to_string(s_.buffered()));
                    return;
                case event::start_tls:
                    collect();
                    if (res_.output_before_tls == std::string::npos) {
                        res_.output_before_tls = res_.output.size();
                        res_.messages_before_tls = res_.messages.size();
                    }
                    FUZZ_CHECK(!s_.tls_active(), "STARTTLS inside TLS");
                    s_.tls_started(tls_facts{"TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256});
                    if (o_.refuse_after_tls) {
                        s_.refuse_commands(make_reply(554, "5.7.0", "TLS version too old"));
                        refused_ = true;
                    }
                    break;
                case event::message:
                    on_message();
                    s_.message_done(o_.store_reply);
                    break;
                case event::close:
                    collect();
                    res_.closed = true;
                    return;
            }
        }
    }

    void on_message() {
        const transaction& t = s_.current();
        const std::string& body = s_.body();
        const bool via_data = data_start_ != npos;  // else BDAT (byte-by-byte feeding only)
        FUZZ_CHECK(!refused_, "message accepted after refuse_commands()");
        FUZZ_CHECK(!o_.settings.require_tls || s_.tls_active(), "message without the required TLS");
        FUZZ_CHECK(!t.recipients.empty() && t.recipients.size() <= o_.settings.max_recipients,
                   "recipient count " + std::to_string(t.recipients.size()));
        FUZZ_CHECK(t.sender.null || valid_path_text(t.sender.box), "sender " + show(t.sender.box.str()));
        FUZZ_CHECK(t.smtputf8 || !t.sender.box.utf8, "non-ASCII sender without SMTPUTF8");
        for (std::size_t i = 0; i < t.recipients.size(); ++i) {
            const auto& r = t.recipients[i];
            FUZZ_CHECK(valid_path_text(r) && !r.domain.empty(), "recipient " + show(r.str()));
            FUZZ_CHECK(t.smtputf8 || !r.utf8, "non-ASCII recipient without SMTPUTF8");
            for (std::size_t j = 0; j < i; ++j)
                FUZZ_CHECK(t.recipients[j].local != r.local || t.recipients[j].domain_lower() != r.domain_lower(),
                           "recipient stored twice: " + show(r.str()));
        }
        FUZZ_CHECK(body.size() <= o_.settings.max_message_size, "body over max_message_size");
        FUZZ_CHECK(crlf_only(body, 998), "body line ends or length: " + show(body));
        if (track_data_ && via_data) {
            // RFC 5321 4.1.1.4: the data ends with CR LF "." CR LF, where the first CR LF may
            // be the DATA command's line end (then the data is just "." CR LF).
            const std::size_t end = fed_ - s_.buffered();
            const std::string_view data = stream_.substr(data_start_, end - data_start_);
            FUZZ_CHECK(data == ".\r\n" || (data.size() >= 5 && data.substr(data.size() - 5) == "\r\n.\r\n"),
                       "message ended without CR LF . CR LF: " + show(data));
            FUZZ_CHECK(body.empty() || body.substr(body.size() - 2) == "\r\n", "DATA body without final CRLF");
            data_start_ = npos;
        }
        std::string m = t.sender.null ? "<>" : t.sender.box.str();
        for (const auto& r : t.recipients) m += " " + r.str();
        m += t.body == body_type::eight_bit_mime ? " 8bit" : " 7bit";
        m += t.smtputf8 ? " utf8 " : " ascii ";
        m += t.helo + (s_.tls_active() ? " tls" : " plain");
        res_.messages.push_back(m + " | " + body);
    }

    static constexpr std::size_t npos = std::string::npos;
    const options& o_;
    std::string_view stream_;
    permissive_policy policy_;  // before s_: the session keeps a reference
    server_session s_;
    outcome res_;
    std::size_t fed_ = 0;
    bool refused_ = false;
    bool track_data_ = false;
    std::size_t data_start_ = npos;
};

void same_before_tls(const outcome& a, const outcome& b, const char* how) {
    const std::size_t n = std::min(a.output_before_tls, b.output_before_tls);
    FUZZ_CHECK(a.output.compare(0, n, b.output, 0, n) == 0,
               std::string(how) + ": replies differ:\n  " + show(a.output.substr(0, n)) + "\n  " +
                   show(b.output.substr(0, n)));
    FUZZ_CHECK(a.output_before_tls == b.output_before_tls, std::string(how) + ": STARTTLS at a different point");
    const std::size_t m = std::min(a.messages_before_tls, b.messages_before_tls);
    for (std::size_t i = 0; i < m; ++i)
        FUZZ_CHECK(a.messages[i] == b.messages[i], std::string(how) + ": message differs: " + show(a.messages[i]) +
                                                       " vs " + show(b.messages[i]));
    FUZZ_CHECK(a.messages_before_tls == b.messages_before_tls, std::string(how) + ": message count differs");
    if (a.output_before_tls == a.output.size() && b.output_before_tls == b.output.size())
        FUZZ_CHECK(a.closed == b.closed, std::string(how) + ": closed differs");
}

}  // namespace
}  // namespace postern::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace postern::fuzz;
    input in(data, size);
    const options o = make_options(in.byte());
    const std::uint16_t split = in.u16();
    const std::string_view stream = in.rest();

    driver whole(o, stream);
    whole.feed(0, stream.size());
    whole.finish();

    const std::size_t k = stream.empty() ? 0 : split % (stream.size() + 1);
    driver two(o, stream);
    two.feed(0, k);
    two.feed(k, stream.size());
    two.finish();
    same_before_tls(whole.result(), two.result(), "split in two");

    driver bytes(o, stream);
    bytes.set_track_data(true);
    for (std::size_t i = 0; i < stream.size(); ++i) bytes.feed_byte(i);
    bytes.finish();
    same_before_tls(whole.result(), bytes.result(), "byte by byte");
    return 0;
}
