// smtp/client_session.hpp - the outbound SMTP state machine: server replies in, commands out.
// No sockets, no clock, no TLS library: outbound/attempt.cpp drives it, decides about TLS
// (tls/policy) and classifies results (delivery/outcome). RFC 5321, 1870 (SIZE), 2920
// (PIPELINING), 3207 (STARTTLS), 6152 (8BITMIME), 6531 (SMTPUTF8), 2034 (enhanced codes).
//
// Driver loop (one TCP connection, possibly several messages):
//   client_session c(settings);
//   for (;;) switch (c.next()) {
//     case client_event::need_input:  write(c.take_output()) (or c.write_failed());
//                                     c.feed(read()) / c.feed_eof(); break;
//     case client_event::ehlo_done:   // capabilities known (c.caps())
//         if (want TLS && c.caps().starttls && !c.tls_active()) c.starttls(); else c.proceed(); break;
//     case client_event::start_tls:   // 220 to STARTTLS: buffered input already discarded
//         write(c.take_output()); handshake -> c.tls_started() or give up (close); break;
//     case client_event::ready:       // idle: c.send_message(m) or c.quit()
//     case client_event::message_done:// c.result() holds every reply of the transaction;
//                                     // then c.send_message(m) if c.reusable(), else c.quit()
//     case client_event::failed:      // c.failure(): connection-level problem; close
//     case client_event::closed:      // after QUIT's reply (or EOF after QUIT); close
//   }
// Events: ehlo_done, start_tls, ready and failed/closed are sticky (next() repeats them until
// the driver acts); message_done is returned once, then next() says ready.
// quit() may also be called at ehlo_done (e.g. mandatory TLS, STARTTLS not offered, SPEC
// 1.2) and after failed with greeting_refused / helo_refused / starttls_refused: QUIT is
// sent politely. Where the connection is unusable (lost, timed out, protocol error, 421,
// during the TLS handshake) quit() goes straight to closed and sends nothing.
// Security (STYLE, issue 3): replies buffered before the TLS handshake are discarded when
// STARTTLS is answered 220 (the "NO STARTTLS" response-injection class); capabilities are
// forgotten at tls_started() and taken only from the EHLO sent inside TLS; reply lines and
// multi-line replies are bounded (client_settings::max_reply_line / max_reply_lines).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/reply.hpp"
#include "util/result.hpp"

namespace postern::smtp {

// Incremental, bounded reply parser (RFC 5321 4.2: "250-..." continuation, "250 ..." last).
// Enhanced status codes (RFC 2034) are split off into reply::enhanced when present and
// consistent with the reply class.
class reply_parser {
public:
    reply_parser(std::size_t max_line = 2048, std::size_t max_lines = 200);
    void feed(std::string_view bytes);
    // A complete reply; an error for a protocol violation (line too long, too many lines,
    // bad code, codes that differ between lines); nullopt when more input is needed.
    std::optional<result<reply>> next();
    void clear();  // forget everything buffered
    std::size_t buffered() const;

private:
    std::string buf_;
    std::size_t pos_ = 0;   // start of the unparsed bytes in buf_
    std::size_t scan_ = 0;  // where the LF search resumes (no LF in [pos_, scan_))
    std::size_t max_line_, max_lines_;
    std::vector<std::string> lines_;  // lines of the reply being read (text after "250-")
    int code_ = 0;
    std::optional<std::string> error_;  // sticky: the stream cannot be resynchronised
};

struct client_settings {
    std::string helo_name = "localhost";  // our name in EHLO/HELO
    bool mime_conversion = true;          // 8-bit content made 7-bit for a server without 8BITMIME
    std::size_t max_reply_line = 2048;
    std::size_t max_reply_lines = 200;
};

struct capabilities {
    bool esmtp = false;  // EHLO accepted (false: HELO fallback)
    bool starttls = false;
    bool pipelining = false;
    bool eight_bit_mime = false;
    bool smtputf8 = false;
    bool enhanced_status_codes = false;
    bool chunking = false;
    std::optional<std::uint64_t> size;  // SIZE limit when advertised (0 = no fixed limit)
    std::string greeting;               // text of the 220 greeting
};

struct outgoing_message {
    std::string sender;                   // "" = null sender
    std::vector<std::string> recipients;  // addresses without brackets
    bool eight_bit = false;               // BODY=8BITMIME
    bool smtputf8 = false;                // needs SMTPUTF8
    std::uint64_t size = 0;               // content octets (for SIZE=)
    std::string_view content;             // CRLF lines; the session dot-stuffs (RFC 5321 4.5.2)
    std::string id;                       // queue id, for the trace field of a 7-bit conversion
};

// Every reply of one transaction, for delivery/outcome to classify.
struct transaction_result {
    std::optional<reply> mail;              // reply to MAIL FROM (absent if never sent)
    std::vector<std::optional<reply>> rcpt; // per recipient, same order (absent if never sent)
    std::optional<reply> data;              // reply to DATA (354 or refusal)
    // Reply after the end of data. Absent when no content was sent, and also when a
    // pipelining server answered DATA with 354 although MAIL failed or no RCPT was accepted:
    // the session then ends the data at once (".") and sends RSET, and the reply to that
    // empty "message" is not a delivery, so it is not recorded (data holds the 354).
    std::optional<reply> final;
    // Set when the message was not attempted because the peer lacks something it needs:
    // SMTPUTF8 (5.6.7), SIZE limit smaller than the message (5.3.4), 8BITMIME (5.6.3).
    std::optional<reply> local_refusal;
};

// RFC 5321 4.5.3.1.8/4.5.3.1.10: a server with a recipient limit refuses the recipients beyond
// it with 452 (a 552 there is to be read as 452), and the client sends the message again to
// them in a new transaction. The positions (into t.rcpt) of those recipients, when the
// transaction delivered the message (final 2xx) to at least one other recipient; empty
// otherwise (then nothing shows the refusals to be a limit, and they stand).
std::vector<std::size_t> over_recipient_limit(const transaction_result& t);

enum class client_event { need_input, ehlo_done, start_tls, ready, message_done, failed, closed };

// Why a connection failed, for classification (all are temporary unless noted).
struct client_failure {
    enum class kind {
        greeting_refused,   // 4xx/5xx greeting (try the next MX)
        helo_refused,       // EHLO and HELO refused
        starttls_refused,   // STARTTLS answered with anything but 220 (a failed handshake, SPEC 1.1)
        protocol_error,     // unparsable / oversized reply
        connection_lost,    // EOF or I/O error before the transaction finished
        timeout,
    } what = kind::connection_lost;
    std::optional<reply> last_reply;  // the refusal, for *_refused only (never set for lost/timeout)
    std::string detail;
    // True when the connection was lost after the end-of-data was sent but before the final
    // reply: the message may have been delivered; it must be retried, never counted as sent.
    bool during_final_reply = false;
};

enum class client_state { greeting, ehlo, helo, starttls, tls_handshake, ready, mail, data, content, quit, done };

class client_session {
public:
    explicit client_session(client_settings settings);
    ~client_session();
    client_session(const client_session&) = delete;
    client_session& operator=(const client_session&) = delete;

    void feed(std::string_view bytes);
    void feed_eof();
    void timeout();  // the driver's timer fired: next() returns failed (kind::timeout)
    // The driver could not write all of take_output() (timed out, or the connection broke):
    // next() returns failed. While the content was being written the end of data never
    // went out, so that is a plain failure, not during_final_reply (RFC 5321 4.5.3.2.5).
    void write_failed(bool timed_out);
    client_event next();
    std::string take_output();
    bool has_output() const;

    // After ehlo_done:
    void starttls();  // send STARTTLS
    void proceed();   // continue without TLS (-> ready)
    // After start_tls: the handshake succeeded; EHLO is sent again (RFC 3207 4.2).
    void tls_started();
    // After ready:
    void send_message(const outgoing_message& m);  // the content must outlive message_done
    void quit();

    const capabilities& caps() const;
    bool tls_active() const;
    // Valid at message_done, and at failed after send_message() (this transaction's replies so
    // far: none when it failed before MAIL FROM went out, never the previous transaction's).
    const transaction_result& result() const;
    const client_failure& failure() const;     // valid at failed
    // Where the session is. After failed it stays the state the failure happened in (e.g.
    // starttls: EOF while waiting for the reply to STARTTLS); done after closed.
    // mail covers the replies to MAIL, RCPT and RSET; content the reply after end of data.
    client_state state() const;
    // Complete replies read so far (a multi-line reply counts once, when its last line is
    // complete). The driver times each reply as a whole (RFC 5321 4.5.3.2): its clock
    // restarts when a command is written or this count moves, never on a partial read.
    std::uint64_t replies_received() const;
    // False after message_done when the connection must not carry another transaction: a
    // 421 was received (RFC 5321 3.8), RSET was refused, the connection was lost while
    // resetting, the server sent unsolicited data, or output is still unsent (take_output()).
    // The driver then calls quit().
    bool reusable() const;

private:
    struct impl;
    std::unique_ptr<impl> p_;
};

const char* to_string(client_event e);
const char* to_string(client_state s);
const char* to_string(client_failure::kind k);

// RFC 5321 4.5.2 dot-stuffing of CRLF content, plus the terminating ".\r\n" (with a CRLF
// added first when the content does not end in one). Appends to `out`. A bare CR or bare LF
// in the content is sent as CRLF (RFC 5321 2.3.8), so content can never smuggle an end of
// data ("\n.\n", "\r.\r") to a lenient next hop.
void dot_stuff(std::string_view content, std::string& out);

}  // namespace postern::smtp
