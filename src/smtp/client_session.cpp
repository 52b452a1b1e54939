// smtp/client_session.cpp - the outbound SMTP state machine: server replies in, commands out.
// RFC 5321 (greeting, EHLO/HELO, MAIL/RCPT/DATA/RSET/QUIT, dot-stuffing), 1870 (SIZE),
// 2920 (PIPELINING), 3207 (STARTTLS), 6152 (8BITMIME), 6531 (SMTPUTF8), 2034 (enhanced
// status codes). outbound/attempt.cpp drives it (see client_session.hpp for the loop).
//
// Security notes:
// - STARTTLS: when the server answers 220, everything it sent after that reply in
//   plaintext is discarded unread (response injection, the client-side twin of
//   CVE-2011-0411), and so is anything fed before tls_started(). tls_started() forgets the
//   capabilities: only the EHLO reply received inside TLS counts (RFC 3207 4.2).
// - Replies are bounded (reply_parser): line length, lines per reply; a server that talks
//   out of turn (data buffered after the greeting, the EHLO reply or the 354 to DATA) is a
//   protocol error, and a session with unsent output is never reused.
// - A loss of the connection (or a timeout) after the end of data and before the final
//   reply is flagged (during_final_reply): the message must be retried, never counted sent.
//   One while the content is still being written (write_failed) is not: the end of data
//   never went out.
// - Addresses with control characters are never written into a command (command injection
//   into the next hop), and content leaves dot-stuffed with CRLF line ends only.
//
// Connection reuse (SPEC 3.4): after message_done the session is ready for the next
// transaction. Like Postfix, RSET is sent only when needed: when a transaction is abandoned
// before its end of data (MAIL refused, no recipient accepted, DATA refused), never after a
// final reply, which ends the transaction whatever its code (RFC 5321 4.1.1.4).
//
// Recipient limits (RFC 5321 4.5.3.1.10): over_recipient_limit() names the recipients of a
// transaction that the driver sends again in a new one (outbound/attempt.cpp).
#include "smtp/client_session.hpp"

#include "message/headers.hpp"
#include "message/seven_bit.hpp"
#include "smtp/address.hpp"
#include "smtp/text.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>

namespace postern::smtp {
namespace {

// What the session is doing. Waiting modes read replies; the others wait for the driver.
enum class mode {
    greeting,       // waiting for the greeting
    ehlo,           // waiting for the reply to EHLO
    helo,           // waiting for the reply to HELO (EHLO fallback)
    ehlo_done,      // driver: starttls() / proceed() / quit()
    starttls,       // waiting for the reply to STARTTLS
    tls_handshake,  // driver: handshake, then tls_started()
    ready,          // driver: send_message() / quit()
    mail,           // waiting for the reply to MAIL
    rcpt,           // waiting for the reply to RCPT number next_rcpt
    data,           // waiting for the reply to DATA
    content,        // end of data sent: waiting for the final reply
    dot_discard,    // empty data ended after an unwarranted 354: waiting for its reply
    rset,           // waiting for the reply to RSET
    message_done,   // next() reports message_done, then ready
    quit,           // waiting for the reply to QUIT
    failed,
    closed,
};



int reply_class(const reply& r) { return r.code / 100; }

// RFC 2920 3.1: a client must not deadlock writing commands while the server, blocked
// writing replies, stops reading. At most this many commands are left unanswered; larger
// recipient lists are topped up as replies arrive (Postfix bounds its pipeline likewise).
constexpr std::size_t pipeline_window = 100;

// RFC 1870 4: "SIZE" [SP number]; a missing or unusable number means no fixed limit (0).
std::uint64_t parse_size_param(std::string_view p) {
    while (!p.empty() && p.front() == ' ') p.remove_prefix(1);
    while (!p.empty() && p.back() == ' ') p.remove_suffix(1);
    if (p.empty() || p.size() > 19) return 0;
    std::uint64_t n = 0;
    for (char c : p) {
        if (c < '0' || c > '9') return 0;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
}

// RFC 5321 4.1.1.1: the EHLO reply is the domain on the first line, then one extension
// per line: keyword [SP parameters]. Keywords are case-insensitive.
void parse_ehlo(const reply& r, capabilities& caps) {
    for (std::size_t i = 1; i < r.lines.size(); ++i) {
        std::string_view l = r.lines[i];
        const std::size_t sp = l.find(' ');
        const std::string_view kw = l.substr(0, sp);
        const std::string_view params = sp == std::string_view::npos ? std::string_view() : l.substr(sp + 1);
        if (iequals(kw, "STARTTLS")) caps.starttls = true;                  // RFC 3207 4
        else if (iequals(kw, "PIPELINING")) caps.pipelining = true;         // RFC 2920 3
        else if (iequals(kw, "8BITMIME")) caps.eight_bit_mime = true;       // RFC 6152 2
        else if (iequals(kw, "SMTPUTF8")) caps.smtputf8 = true;             // RFC 6531 3.1
        else if (iequals(kw, "ENHANCEDSTATUSCODES")) caps.enhanced_status_codes = true;  // RFC 2034 3
        else if (iequals(kw, "CHUNKING")) caps.chunking = true;             // RFC 3030 2
        else if (iequals(kw, "SIZE")) caps.size = parse_size_param(params); // RFC 1870 4
    }
}

}  // namespace

struct client_session::impl {
    explicit impl(client_settings s)
        : settings(std::move(s)), parser(settings.max_reply_line, settings.max_reply_lines) {}

    client_settings settings;
    reply_parser parser;
    mode m = mode::greeting;
    client_state failed_in = client_state::greeting;
    std::string out;
    capabilities caps;
    bool tls = false;
    bool eof = false;
    bool reusable = true;  // another transaction may follow
    bool gone = false;     // the connection is unusable: quit() sends nothing
    transaction_result res;
    client_failure failure;
    std::uint64_t replies = 0;  // complete replies parsed

    // The transaction in progress.
    std::string sender;
    std::vector<std::string> recipients;
    std::string_view content;
    std::string converted;  // the content made 7-bit for a server without 8BITMIME (or empty)
    std::size_t next_rcpt = 0;  // index of the RCPT whose reply is awaited
    std::size_t sent_rcpt = 0;  // RCPT commands written
    bool data_sent = false;
    bool pipelined = false;
    bool mail_ok = false;
    bool any_rcpt_ok = false;

    void send(std::string_view command) {
        out += command;
        out += "\r\n";
    }

    client_state public_state() const {
        switch (m) {
            case mode::greeting: return client_state::greeting;
            case mode::ehlo: return client_state::ehlo;
            case mode::ehlo_done: return caps.esmtp ? client_state::ehlo : client_state::helo;
            case mode::helo: return client_state::helo;
            case mode::starttls: return client_state::starttls;
            case mode::tls_handshake: return client_state::tls_handshake;
            case mode::ready:
            case mode::message_done: return client_state::ready;
            case mode::mail:
            case mode::rcpt:
            case mode::rset: return client_state::mail;
            case mode::data: return client_state::data;
            case mode::content:
            case mode::dot_discard: return client_state::content;
            case mode::quit: return client_state::quit;
            case mode::failed: return failed_in;
            case mode::closed: return client_state::done;
        }
        return client_state::done;
    }

    const char* awaited() const {
        switch (m) {
            case mode::greeting: return "the greeting";
            case mode::ehlo: return "the reply to EHLO";
            case mode::helo: return "the reply to HELO";
            case mode::starttls: return "the reply to STARTTLS";
            case mode::mail: return "the reply to MAIL FROM";
            case mode::rcpt: return "the reply to RCPT TO";
            case mode::data: return "the reply to DATA";
            case mode::content: return "the reply to the end of data";
            case mode::dot_discard: return "the reply to an empty DATA";
            case mode::rset: return "the reply to RSET";
            case mode::quit: return "the reply to QUIT";
            case mode::tls_handshake: return "the TLS handshake";
            default: return "the next command";
        }
    }

    // --- failures ------------------------------------------------------------------------

    void fail(client_failure::kind k, std::string detail, std::optional<reply> r = std::nullopt) {
        using kind = client_failure::kind;
        failure = client_failure{};
        failure.what = k;
        failure.detail = std::move(detail);
        // After the end of data the message may have been delivered: never count it as sent
        // and never as refused; it is retried.
        failure.during_final_reply = m == mode::content;
        const bool refused = k == kind::greeting_refused || k == kind::helo_refused ||
                             k == kind::starttls_refused;
        // RFC 5321 3.8: after a 421 the server closes the connection.
        gone = !refused || (r && r->code == 421);
        reusable = false;
        failure.last_reply = std::move(r);
        failed_in = public_state();
        m = mode::failed;
    }

    // EOF, timeout or a reply that cannot be parsed.
    void trouble(client_failure::kind k, const char* what) {
        switch (m) {
            case mode::failed:
            case mode::closed:
                return;
            case mode::quit:  // RFC 5321 4.1.1.10: the reply to QUIT is a courtesy
                gone = true;
                m = mode::closed;
                return;
            case mode::rset:
            case mode::dot_discard:
                // The transaction's outcome is already known (nothing was delivered); only
                // the connection is lost.
                finish_gone();
                return;
            default:
                fail(k, std::string(what) + " (waiting for " + awaited() + ")");
                return;
        }
    }

    // --- transaction ends -----------------------------------------------------------------

    // The transaction's 7-bit copy (message/seven_bit.hpp) is not kept once it is in `out` or
    // will not go: a parked session holds no copy of a message.
    void release_converted() {
        content = {};
        std::string().swap(converted);
    }

    void finish() {
        release_converted();
        m = mode::message_done;
        // Nothing may follow the last reply (RFC 2920 3.1: replies only answer commands);
        // a server that talks out of turn does not get another transaction, nor does a
        // session with output still unsent (it would go ahead of the next MAIL FROM).
        if (parser.buffered() > 0 || !out.empty()) reusable = false;
    }

    void finish_gone() {  // 421 (RFC 5321 3.8) or the connection lost while resetting
        gone = true;
        reusable = false;
        m = mode::message_done;
    }

    // RFC 5321 4.1.1.5: abandon the transaction; the server forgets MAIL and RCPTs.
    void start_rset() {
        release_converted();
        send("RSET");
        m = mode::rset;
    }

    void send_ehlo() {
        send("EHLO " + settings.helo_name);  // RFC 5321 4.1.1.1
        m = mode::ehlo;
    }

    void enter_ehlo_done() {
        if (parser.buffered() > 0) {  // nothing was asked: an injected or broken reply
            fail(client_failure::kind::protocol_error, "unsolicited data after the reply to " +
                                                           std::string(caps.esmtp ? "EHLO" : "HELO"));
            return;
        }
        m = mode::ehlo_done;
    }

    void send_rcpt(std::size_t i) {  // RFC 5321 4.1.1.3
        send("RCPT TO:<" + recipients[i] + ">");
        sent_rcpt = i + 1;
    }

    // RFC 2920 3.1: with PIPELINING, MAIL, the RCPTs and DATA go out without waiting, DATA
    // last; at most pipeline_window commands are unanswered at any time.
    void pipeline_top_up() {
        const std::size_t answered = (res.mail ? 1 : 0) + next_rcpt;
        while (sent_rcpt < recipients.size() && 1 + sent_rcpt - answered < pipeline_window)
            send_rcpt(sent_rcpt);
        if (sent_rcpt == recipients.size() && !data_sent) {
            send("DATA");  // RFC 5321 4.1.1.4
            data_sent = true;
        }
    }

    // --- replies -------------------------------------------------------------------------

    void on_reply(reply r) {
        using kind = client_failure::kind;
        const int cls = reply_class(r);
        switch (m) {
            case mode::greeting:
                // RFC 5321 3.1 / 4.3.2: 220 opens the session; 554 (or 4xx) refuses it.
                if (cls != 2) return fail(kind::greeting_refused, "greeting refused", std::move(r));
                caps.greeting = r.lines.empty() ? std::string() : r.lines.front();
                if (parser.buffered() > 0)  // RFC 5321 4.3.1: the server waits for EHLO
                    return fail(kind::protocol_error, "unsolicited data after the greeting");
                return send_ehlo();

            case mode::ehlo:
                if (cls == 2) {
                    const std::string greeting = std::move(caps.greeting);
                    caps = capabilities{};
                    caps.greeting = greeting;
                    caps.esmtp = true;
                    parse_ehlo(r, caps);
                    return enter_ehlo_done();
                }
                // RFC 5321 3.2 / 4.1.4: a server that does not know EHLO (500/502, or any
                // other permanent refusal) gets HELO; a temporary refusal ends the attempt.
                if (cls == 5) {
                    send("HELO " + settings.helo_name);
                    m = mode::helo;
                    return;
                }
                return fail(kind::helo_refused, "EHLO refused", std::move(r));

            case mode::helo:
                if (cls != 2) return fail(kind::helo_refused, "HELO refused", std::move(r));
                {
                    const std::string greeting = std::move(caps.greeting);
                    caps = capabilities{};  // RFC 5321 4.1.1.1: HELO means no extensions
                    caps.greeting = greeting;
                }
                return enter_ehlo_done();

            case mode::starttls:
                // RFC 3207 4: 220 is the only go-ahead; 454 (or anything else) refuses.
                if (r.code != 220) return fail(kind::starttls_refused, "STARTTLS refused", std::move(r));
                // RFC 3207 5 / response injection: whatever followed the 220 in plaintext
                // was not asked for; it is dropped, never read as a reply.
                parser.clear();
                m = mode::tls_handshake;
                return;

            case mode::mail:
                if (cls == 3) return fail(kind::protocol_error, "unexpected 3xx reply to MAIL FROM");
                mail_ok = cls == 2;
                res.mail = std::move(r);
                if (res.mail->code == 421) return finish_gone();
                if (pipelined) {  // RCPTs (and DATA) are already on their way
                    m = mode::rcpt;
                    if (mail_ok) pipeline_top_up();
                } else if (mail_ok) {
                    send_rcpt(0);
                    m = mode::rcpt;
                } else {
                    start_rset();
                }
                return;

            case mode::rcpt: {
                if (cls == 3) return fail(kind::protocol_error, "unexpected 3xx reply to RCPT TO");
                const bool is_421 = r.code == 421;
                if (cls == 2) any_rcpt_ok = true;
                res.rcpt[next_rcpt] = std::move(r);
                if (is_421) return finish_gone();
                ++next_rcpt;
                if (pipelined) {
                    if (mail_ok) pipeline_top_up();
                    if (next_rcpt < sent_rcpt) return;  // more replies are on their way
                    if (data_sent) {                    // DATA went with the last RCPT
                        m = mode::data;
                        return;
                    }
                    return start_rset();  // MAIL refused: the rest of a long list never went
                }
                if (next_rcpt < recipients.size()) {
                    send_rcpt(next_rcpt);
                } else if (any_rcpt_ok) {
                    send("DATA");  // RFC 5321 4.1.1.4
                    m = mode::data;
                } else {
                    start_rset();  // no recipient: no DATA (RFC 5321 3.3)
                }
                return;
            }

            case mode::data:
                if (r.code == 354) {
                    res.data = std::move(r);
                    // RFC 5321 4.1.1.4: after 354 the server waits for the content. A reply
                    // already behind it answers nothing we sent: read as the reply to the end of
                    // data it would count content never written as delivered, and that content,
                    // left in the output, would go ahead of the next transaction's MAIL FROM.
                    if (parser.buffered() > 0) {
                        if (mail_ok && any_rcpt_ok)
                            return fail(kind::protocol_error, "unsolicited data after 354 to DATA");
                        return finish_gone();  // nothing to deliver anyway; the connection is not used again
                    }
                    if (mail_ok && any_rcpt_ok) {
                        dot_stuff(content, out);  // RFC 5321 4.5.2, 4.1.1.4
                        m = mode::content;
                    } else {
                        // RFC 2920 3.1: with PIPELINING DATA went out before the MAIL/RCPT
                        // replies were known; a server that answers 354 regardless gets an
                        // empty message ended at once, and then RSET. Nothing is recorded
                        // as delivered (result().final stays empty).
                        out += ".\r\n";
                        m = mode::dot_discard;
                    }
                    release_converted();  // in `out` now, or never to go
                    return;
                }
                if (cls == 2 || cls == 3)
                    return fail(kind::protocol_error, "unexpected reply to DATA: " + std::to_string(r.code));
                res.data = std::move(r);
                if (res.data->code == 421) return finish_gone();
                return start_rset();  // the server may still hold MAIL and RCPTs

            case mode::content:
                if (cls == 3) return fail(kind::protocol_error, "unexpected 3xx reply to the end of data");
                res.final = std::move(r);
                if (res.final->code == 421) return finish_gone();
                return finish();  // RFC 5321 4.1.1.4: the transaction is over, whatever the code

            case mode::dot_discard:
                if (r.code == 421) return finish_gone();
                return start_rset();

            case mode::rset:
                if (cls != 2) {  // the server's state is unknown: no further transaction
                    reusable = false;
                    if (r.code == 421) gone = true;
                }
                return finish();

            case mode::quit:
                gone = true;
                m = mode::closed;
                return;

            default:
                assert(false && "reply parsed in a mode that does not wait for one");
                return;
        }
    }

    // --- the loop ------------------------------------------------------------------------

    client_event next() {
        for (;;) {
            switch (m) {
                case mode::failed: return client_event::failed;
                case mode::closed: return client_event::closed;
                case mode::ehlo_done: return client_event::ehlo_done;
                case mode::tls_handshake: return client_event::start_tls;
                case mode::ready: return client_event::ready;
                case mode::message_done:
                    m = mode::ready;
                    return client_event::message_done;
                default:
                    break;
            }
            auto r = parser.next();
            if (!r) {
                if (!eof) return client_event::need_input;
                trouble(client_failure::kind::connection_lost, "connection closed by the server");
                continue;
            }
            if (!r->ok()) {
                trouble(client_failure::kind::protocol_error, r->error_message().c_str());
                continue;
            }
            ++replies;
            on_reply(std::move(r->value()));
        }
    }

    // --- the transaction -----------------------------------------------------------------

    // What the message declares and really needs. RFC 6152 / RFC 6531 3.2: to a server without
    // the extension, a declaration the message does not need is dropped rather than bounced
    // (Postfix likewise). SMTPUTF8 is needed only for UTF-8 in the envelope or in the header
    // section (RFC 6531 3.2, RFC 6532 3): ASCII addresses and headers go without it, whatever
    // the body holds; a UTF-8 body is 8-bit content, which needs only BODY=8BITMIME (RFC 6152),
    // so it is declared then. All-ASCII content needs no BODY=8BITMIME. The content is scanned
    // only on these rare paths.
    // An address whose only non-ASCII part is a domain also goes without SMTPUTF8, its domain as
    // A-labels (RFC 6531 3.2; RFC 5890: the A-label is the same name; Postfix likewise): only
    // an internationalized local part, or UTF-8 in the headers, needs the extension.
    struct needs {
        bool eight_bit;
        bool smtputf8;
        bool a_labels = false;  // send the addresses' domains as A-labels (ascii_address)
    };
    needs needs_of(const outgoing_message& msg) const {
        needs n{msg.eight_bit, msg.smtputf8};
        if (n.smtputf8 && !caps.smtputf8 && is_ascii(message::header_section(msg.content)) &&
            ascii_address(msg.sender) &&
            std::all_of(msg.recipients.begin(), msg.recipients.end(),
                        [](const std::string& r) { return ascii_address(r).has_value(); })) {
            n.smtputf8 = false;
            n.a_labels = !is_ascii(msg.sender) || std::any_of(msg.recipients.begin(), msg.recipients.end(),
                                                              [](const std::string& r) { return !is_ascii(r); });
            n.eight_bit = n.eight_bit || !is_ascii(msg.content);
        }
        if (n.eight_bit && !caps.eight_bit_mime && is_ascii(msg.content)) n.eight_bit = false;
        return n;
    }

    // Checks made before MAIL: what the server lacks for this message (`size`: the octets that
    // would go). Returns the refusal.
    std::optional<reply> local_check(const outgoing_message& msg, needs n, std::uint64_t size) const {
        if (msg.recipients.empty()) return make_reply(554, "5.5.1", "no recipients");
        // Command injection: an address never carries CR/LF/NUL into a command line.
        if (has_control(msg.sender))
            return make_reply(553, "5.1.7", "sender address contains control characters");
        for (const auto& r : msg.recipients)
            if (has_control(r) || r.empty())
                return make_reply(553, "5.1.3", "recipient address is empty or contains control characters");
        // RFC 6531 3.2: without SMTPUTF8 from the server the client MUST NOT send the
        // message but reject or bounce it; X.6.7 is the SMTPUTF8 status code (RFC 6531 3.5,
        // RFC 5248). 550 (not 553) since it is the message, not one address, that fails.
        if (n.smtputf8 && !caps.smtputf8)
            return make_reply(550, "5.6.7", "SMTPUTF8 required but not supported by the server");
        // RFC 1870 5: a client does not send a message larger than the server's declared
        // fixed maximum (SIZE 0 means no fixed maximum); 5.3.4 is RFC 3463's "too big".
        if (caps.size && *caps.size > 0 && size > *caps.size)
            return make_reply(552, "5.3.4", "message size exceeds the server's limit of " +
                                                std::to_string(*caps.size));
        // 8-bit content left 8-bit (SMTPUTF8 asked too: the header section or envelope is
        // UTF-8, not for a 7-bit form): RFC 3463's "conversion required but not supported".
        if (n.eight_bit && !caps.eight_bit_mime)
            return make_reply(554, "5.6.3", "8-bit content but the server does not support 8BITMIME");
        return std::nullopt;
    }

    void send_message(const outgoing_message& msg) {
        assert(m == mode::ready);  // called without ready: driver bug
        if (m != mode::ready) return;
        // Forget the previous transaction first: a failure below must not leave its replies in
        // result(), where they would read as this message's (sent, and never transmitted).
        res = transaction_result{};
        res.rcpt.assign(msg.recipients.size(), std::nullopt);
        if (!reusable) {
            fail(client_failure::kind::connection_lost, "connection not reusable for another message");
            return;
        }
        if (parser.buffered() > 0) {  // fed while idle: nothing was asked
            fail(client_failure::kind::protocol_error, "unsolicited data before MAIL FROM");
            return;
        }
        needs n = needs_of(msg);
        // RFC 6152 3: 8-bit content goes only to a server that offers 8BITMIME; to one without,
        // it is made 7-bit (message/seven_bit.hpp, as Postfix does) or, where that cannot be
        // done, refused: RFC 3463's "conversion required but not supported". 8-bit content a
        // client sent without declaring it (BODY=8BITMIME) is made 7-bit too where it can be,
        // and otherwise goes as it came, as it always did (the content is scanned for it only
        // for a server without 8BITMIME, which is rare). With the conversion switched off
        // (delivery.mime_conversion, for signed mail) declared 8-bit content is refused and
        // undeclared content goes as it came.
        converted.clear();
        std::string_view body = msg.content;
        std::uint64_t size = msg.size;
        std::optional<reply> refusal;
        const bool undeclared = settings.mime_conversion && !n.eight_bit && !n.smtputf8 && !caps.eight_bit_mime &&
                                !is_ascii(msg.content);
        if (n.eight_bit && !caps.eight_bit_mime && !n.smtputf8 && !settings.mime_conversion) {
            refusal = make_reply(554, "5.6.3", "8-bit content but the server does not support 8BITMIME, and "
                                               "MIME conversion is off (delivery.mime_conversion)");
        } else if ((n.eight_bit || undeclared) && !caps.eight_bit_mime && !n.smtputf8) {
            auto seven = message::to_seven_bit(msg.content, settings.helo_name, msg.id);
            if (seven.content) {
                converted = std::move(*seven.content);
                body = converted;
                size = converted.size();
                n.eight_bit = false;
            } else if (!undeclared) {
                refusal = make_reply(554, "5.6.3", "8-bit content but the server does not support 8BITMIME, and it "
                                                   "cannot be made 7-bit: " + seven.why);
            }
        }
        if (!refusal) refusal = local_check(msg, n, size);
        if (refusal) {  // nothing is sent; the connection stays ready
            release_converted();
            res.local_refusal = std::move(refusal);
            m = mode::message_done;
            return;
        }
        sender = n.a_labels ? *ascii_address(msg.sender) : msg.sender;
        recipients = msg.recipients;
        if (n.a_labels)
            for (auto& r : recipients) r = *ascii_address(r);
        content = body;
        next_rcpt = sent_rcpt = 0;
        data_sent = false;
        mail_ok = any_rcpt_ok = false;
        pipelined = caps.pipelining;

        // RFC 5321 4.1.1.2: MAIL FROM:<reverse-path> [SP mail-parameters]; parameters only
        // when the server offered the extension (never after HELO, where caps are empty).
        std::string mail = "MAIL FROM:<" + sender + ">";
        if (caps.size) mail += " SIZE=" + std::to_string(size);        // RFC 1870 6
        if (n.eight_bit && caps.eight_bit_mime) mail += " BODY=8BITMIME";  // RFC 6152 2
        if (n.smtputf8) mail += " SMTPUTF8";                              // RFC 6531 3.4
        send(mail);
        // RFC 2920 3.1: MAIL, the RCPTs and DATA in one group, DATA last; the replies are
        // then read in order.
        if (pipelined) pipeline_top_up();
        m = mode::mail;
    }

    void quit() {
        switch (m) {
            case mode::closed:
            case mode::quit:
                return;
            case mode::ehlo_done:
            case mode::ready:
            case mode::message_done:
            case mode::failed:
                if (!gone) {
                    send("QUIT");  // RFC 5321 4.1.1.10
                    m = mode::quit;
                    return;
                }
                break;
            default:  // replies outstanding or TLS handshake under way: cannot resynchronise
                break;
        }
        gone = true;
        out.clear();
        m = mode::closed;
    }
};

client_session::client_session(client_settings settings)
    : p_(std::make_unique<impl>(std::move(settings))) {}

client_session::~client_session() = default;

void client_session::feed(std::string_view bytes) {
    auto& s = *p_;
    // RFC 3207 5: plaintext arriving while the handshake is pending is never read.
    if (s.m == mode::tls_handshake || s.m == mode::failed || s.m == mode::closed) return;
    s.parser.feed(bytes);
}

void client_session::feed_eof() { p_->eof = true; }

void client_session::timeout() {
    p_->trouble(client_failure::kind::timeout, "timeout");
}

void client_session::write_failed(bool timed_out) {
    auto& s = *p_;
    if (s.m != mode::content) {  // a command: as if the read had failed
        if (timed_out) timeout();
        else feed_eof();
        return;
    }
    // The content (and its final ".") did not all go out: nothing can have been delivered.
    const auto k = timed_out ? client_failure::kind::timeout : client_failure::kind::connection_lost;
    s.fail(k, std::string(timed_out ? "timeout" : "connection lost") + " while sending the message content");
    s.failure.during_final_reply = false;
}

client_event client_session::next() { return p_->next(); }

std::string client_session::take_output() { return std::exchange(p_->out, std::string()); }

bool client_session::has_output() const { return !p_->out.empty(); }

void client_session::starttls() {
    auto& s = *p_;
    assert(s.m == mode::ehlo_done && !s.tls);  // driver bug otherwise
    if (s.m != mode::ehlo_done || s.tls) return;
    s.send("STARTTLS");  // RFC 3207 4
    s.m = mode::starttls;
}

void client_session::proceed() {
    auto& s = *p_;
    assert(s.m == mode::ehlo_done);
    if (s.m != mode::ehlo_done) return;
    s.m = mode::ready;
}

void client_session::tls_started() {
    auto& s = *p_;
    assert(s.m == mode::tls_handshake);
    if (s.m != mode::tls_handshake) return;
    s.tls = true;
    // RFC 3207 4.2: discard all knowledge obtained from the server before TLS (the greeting
    // text is kept for the logs), and send EHLO again.
    const std::string greeting = std::move(s.caps.greeting);
    s.caps = capabilities{};
    s.caps.greeting = greeting;
    s.parser.clear();
    s.send_ehlo();
}

void client_session::send_message(const outgoing_message& m) { p_->send_message(m); }

void client_session::quit() { p_->quit(); }

const capabilities& client_session::caps() const { return p_->caps; }
bool client_session::tls_active() const { return p_->tls; }
const transaction_result& client_session::result() const { return p_->res; }
const client_failure& client_session::failure() const { return p_->failure; }
client_state client_session::state() const { return p_->public_state(); }
bool client_session::reusable() const { return p_->reusable && !p_->gone && p_->out.empty(); }
std::uint64_t client_session::replies_received() const { return p_->replies; }

const char* to_string(client_event e) {
    switch (e) {
        case client_event::need_input: return "need_input";
        case client_event::ehlo_done: return "ehlo_done";
        case client_event::start_tls: return "start_tls";
        case client_event::ready: return "ready";
        case client_event::message_done: return "message_done";
        case client_event::failed: return "failed";
        case client_event::closed: return "closed";
    }
    return "?";
}

const char* to_string(client_state s) {
    switch (s) {
        case client_state::greeting: return "greeting";
        case client_state::ehlo: return "ehlo";
        case client_state::helo: return "helo";
        case client_state::starttls: return "starttls";
        case client_state::tls_handshake: return "tls_handshake";
        case client_state::ready: return "ready";
        case client_state::mail: return "mail";
        case client_state::data: return "data";
        case client_state::content: return "content";
        case client_state::quit: return "quit";
        case client_state::done: return "done";
    }
    return "?";
}

const char* to_string(client_failure::kind k) {
    using kind = client_failure::kind;
    switch (k) {
        case kind::greeting_refused: return "greeting_refused";
        case kind::helo_refused: return "helo_refused";
        case kind::starttls_refused: return "starttls_refused";
        case kind::protocol_error: return "protocol_error";
        case kind::connection_lost: return "connection_lost";
        case kind::timeout: return "timeout";
    }
    return "?";
}

std::vector<std::size_t> over_recipient_limit(const transaction_result& t) {
    std::vector<std::size_t> out;
    auto completed = [](const std::optional<reply>& r) { return r && r->code >= 200 && r->code < 300; };
    if (!completed(t.final) || std::none_of(t.rcpt.begin(), t.rcpt.end(), completed)) return out;
    for (std::size_t k = 0; k < t.rcpt.size(); ++k)
        if (t.rcpt[k] && (t.rcpt[k]->code == 452 || t.rcpt[k]->code == 552)) out.push_back(k);
    return out;
}

// RFC 5321 4.5.2: before sending a line of content, a "." at its start is doubled; the
// content ends with CRLF "." CRLF. Lines end in CRLF only (RFC 5321 2.3.8): a bare LF or a
// bare CR is sent as CRLF and starts a new line, so "\n.\n" or "\r.\r" inside the content
// can never end the data at a lenient next hop (SMTP smuggling). Runs are appended whole.
void dot_stuff(std::string_view content, std::string& out) {
    out.reserve(out.size() + content.size() + content.size() / 64 + 5);
    const char* const data = content.data();
    const std::size_t n = content.size();
    std::size_t pos = 0;
    bool line_start = true;
    while (pos < n) {
        if (line_start && data[pos] == '.') out += '.';
        const void* lf = std::memchr(data + pos, '\n', n - pos);
        const std::size_t end = lf ? static_cast<std::size_t>(static_cast<const char*>(lf) - data) : n;
        // The line is [pos, text_end); a CR right before the LF belongs to its line end.
        const std::size_t text_end = (lf && end > pos && data[end - 1] == '\r') ? end - 1 : end;
        if (const void* cr = std::memchr(data + pos, '\r', text_end - pos)) {  // a bare CR
            const std::size_t at = static_cast<std::size_t>(static_cast<const char*>(cr) - data);
            out.append(data + pos, at - pos);
            out += "\r\n";
            pos = at + 1;
            line_start = true;
            continue;
        }
        out.append(data + pos, text_end - pos);
        if (!lf) {  // the last line has no line end
            pos = n;
            line_start = false;
            break;
        }
        out += "\r\n";
        pos = end + 1;
        line_start = true;
    }
    if (!line_start) out += "\r\n";  // content not ending in CRLF: end the line first
    out += ".\r\n";
}

}  // namespace postern::smtp
