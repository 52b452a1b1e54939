// smtp/server_session.hpp - the inbound SMTP state machine: bytes in, replies and events out.
// No sockets, no Asio, no clock: server/session.cpp drives it (reads, writes, TLS, timers,
// spool). RFC 5321, 1870 (SIZE), 2920 (PIPELINING), 3030 (CHUNKING), 3207 (STARTTLS),
// 6152 (8BITMIME), 6531 (SMTPUTF8), 2034 (ENHANCEDSTATUSCODES).
//
// Driver loop:
//   s.start();                                  // queues the 220 greeting
//   for (;;) switch (auto ev = s.next(); ev) {
//     case event::need_input: write(s.take_output()); s.feed(read()); break;   // or s.feed_eof()
//                             (output_full() before the take: write, then next() without a read)
//     case event::start_tls:  write(s.take_output()); handshake; s.tls_started(facts) / close; break;
//     case event::message:    store(s.current(), s.body()); s.message_done(reply); break;
//     case event::close:      write(s.take_output()); close; return;
//   }
// Replies are only appended to the output buffer; the driver decides when to flush
// (at need_input, which is when every complete pipelined command has been answered, or when
// max_pending_output octets of replies wait).
// Calling next() while an event is outstanding (after start_tls before tls_started, after
// message before message_done) is a driver bug: it returns need_input and consumes nothing.
// At EOF, complete commands already received are still processed, then next() returns close.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "smtp/address.hpp"
#include "smtp/reply.hpp"

namespace postern::smtp {

// Memory shared by every session for message content being received: a body is held in
// memory until it is stored, so without a shared bound N clients sending large messages at
// once hold N x max_message_size. A message may grow past `free_per_message` only while the
// total held by all sessions fits `limit`; otherwise it is refused at its end with 452 4.3.1
// (a temporary failure: the client retries later). Smaller messages always fit, so a flood
// of large or endless bodies cannot starve ordinary mail. The total is therefore at most
// limit + sessions x free_per_message. Shared by the session threads: lock-free atomics.
class content_budget {
public:
    static constexpr std::uint64_t free_per_message = 1 << 20;
    explicit content_budget(std::uint64_t limit) : limit_(limit) {}
    void set_limit(std::uint64_t limit) { limit_.store(limit, std::memory_order_relaxed); }  // config reload
    std::uint64_t limit() const { return limit_.load(std::memory_order_relaxed); }
    std::uint64_t used() const { return used_.load(std::memory_order_relaxed); }
    // Grow a message from `have` to `want` octets: false (and nothing taken) when it would pass
    // free_per_message while the total does not fit the limit.
    bool grow(std::uint64_t have, std::uint64_t want) {
        if (want <= have) return true;
        const std::uint64_t more = want - have;
        if (want <= free_per_message) {
            used_.fetch_add(more, std::memory_order_relaxed);
            return true;
        }
        const std::uint64_t lim = limit();
        std::uint64_t cur = used_.load(std::memory_order_relaxed);
        do {
            if (cur + more > lim) return false;
        } while (!used_.compare_exchange_weak(cur, cur + more, std::memory_order_relaxed));
        return true;
    }
    void release(std::uint64_t n) {
        std::uint64_t cur = used_.load(std::memory_order_relaxed);
        while (!used_.compare_exchange_weak(cur, cur - std::min(n, cur), std::memory_order_relaxed)) {
        }
    }

private:
    std::atomic<std::uint64_t> limit_;
    std::atomic<std::uint64_t> used_{0};
};

struct server_settings {
    std::string hostname = "localhost";     // used in the greeting, EHLO and 221/421 replies
    std::uint64_t max_message_size = 52428800;
    std::uint32_t max_recipients = 1000;
    std::uint32_t max_errors = 10;           // then 421 4.7.0 and close
    std::size_t max_line_length = 2048;      // command line including CRLF; longer: 500 5.5.2, line discarded
                                             // (past (max_errors + 1) x this, >= 16 KiB, without its end: 421, closed)
    bool starttls_offered = true;            // advertise and accept STARTTLS while not in TLS
    // Inbound mandatory TLS (SPEC 1.2): before TLS, MAIL/RCPT/DATA/BDAT/AUTH get
    // "530 5.7.0 Must issue a STARTTLS command first" (RFC 3207 4).
    bool require_tls = false;
    // The same for RCPT/DATA/BDAT/AUTH outside a transaction only: MAIL is decided by the
    // policy (check_sender: a profile chosen by the sender's domain).
    bool require_tls_until_mail = false;
    // Shared by all sessions (server.max_buffered_size); null = no shared bound.
    std::shared_ptr<content_budget> budget;
    // Replies queued and not yet taken, in octets: once there are this many, next() answers no
    // further pipelined command and returns need_input with output_full() true (RFC 2920 3:
    // the server may stop reading; one 64 KiB read of "EHLO a" lines would otherwise queue
    // 1.3 MiB of replies for a client that may never read them). 0 = no bound.
    std::size_t max_pending_output = 0;
};

struct tls_facts {
    std::string version;  // "TLSv1.3"
    std::string cipher;   // "TLS_AES_256_GCM_SHA384"
    int bits = 0;         // symmetric strength used
    int alg_bits = 0;
};

enum class body_type { seven_bit, eight_bit_mime };

// The envelope of the current transaction (valid at event::message).
struct transaction {
    std::string helo;                 // EHLO/HELO argument
    bool esmtp = false;               // EHLO (true) or HELO
    path sender;                      // reverse-path ("<>" -> null)
    // Accepted recipients, each once (a repeated RCPT, by server_policy::recipient_key(), is
    // answered 250 but not stored again);
    // a bare <Postmaster> is stored as the full address complete_postmaster() gave.
    std::vector<mailbox> recipients;
    body_type body = body_type::seven_bit;
    bool smtputf8 = false;
    std::optional<std::uint64_t> declared_size;  // SIZE= at MAIL
};

// Decisions the session cannot make alone (hosted domains, relay rights, profiles).
// Pure and synchronous; nullopt = accept. A 4xx/5xx reply refuses the MAIL (the transaction
// is not started) or that one RCPT (the transaction continues); a 2xx reply accepts with
// that text instead of the default.
class server_policy {
public:
    virtual ~server_policy() = default;
    virtual std::optional<reply> check_sender(const transaction& t) = 0;
    // Always a full address (local@domain): a bare <Postmaster> was completed first.
    virtual std::optional<reply> check_recipient(const transaction& t, const mailbox& rcpt) = 0;
    // RFC 5321 4.1.1.3 / 4.5.1: RCPT TO:<Postmaster> without a domain must be accepted. The full
    // address of this server's postmaster that `bare` stands for (then treated as if the client
    // had sent it: the envelope stores it, check_recipient sees it), or a 4xx/5xx refusal when
    // the server has no postmaster mailbox.
    virtual std::variant<mailbox, reply> complete_postmaster(const mailbox& bare) = 0;
    // Recipients of one transaction with the same key are the same mailbox: a later one is
    // answered 250 but not stored again (so delivered once). Called before check_recipient.
    // By default the address in its RFC 5321 4.1.2 equivalence: the local part unquoted
    // ("\"bob\"" = "bob", case kept: it may be case-sensitive), the domain by its A-label form,
    // ignoring case. A policy that knows where mail lands may merge more (a maildir folder).
    virtual std::string recipient_key(const mailbox& rcpt);
};

enum class event { need_input, start_tls, message, close };
enum class state { greeting, need_helo, ready, in_mail, in_data, in_bdat, waiting_store, waiting_tls, closed };

class server_session {
public:
    server_session(server_settings settings, server_policy& policy);

    void start();                          // queues "220 hostname ESMTP Postern"
    void feed(std::string_view bytes);     // append received bytes
    void feed_eof();                       // peer closed: next() returns close
    void timeout();                        // queues "421 4.4.2 ... timeout" and closes
    event next();                          // process input until an event

    std::string take_output();             // replies queued so far (then cleared)
    bool has_output() const;
    // max_pending_output octets of replies are queued: at need_input, take and write them,
    // then call next() again *before* reading (commands already received wait in the session).
    bool output_full() const;

    // After event::start_tls: the handshake succeeded. Every piece of session state is reset
    // (RFC 3207 4.2); input received before the handshake was already discarded.
    void tls_started(const tls_facts& facts);
    // After event::message: the body and envelope were handled; queue `r` (250 ... or 4xx/5xx).
    void message_done(const reply& r);
    // From now on every command but QUIT is answered `r` (e.g. "554 5.7.0 TLS version too
    // old" when the TLS session does not meet the profile: RFC 3207 4.1, SPEC 1.2).
    // BDAT chunks are still consumed so the stream stays in sync.
    void refuse_commands(const reply& r);

    const transaction& current() const;    // envelope at event::message
    // Message content at event::message: DATA bodies are dot-unstuffed with CRLF line
    // endings (bare CR/LF normalised, see data_decoder.hpp); BDAT bodies are the chunks'
    // octets as sent. Released by message_done().
    const std::string& body() const;
    bool tls_active() const;
    const std::optional<tls_facts>& tls() const;
    state current_state() const;
    std::uint32_t error_count() const;
    // Received octets not yet processed (bounded by max_line_length while reading commands;
    // grows only while an event is outstanding and the driver keeps feeding).
    std::size_t buffered() const;

    server_session(const server_session&) = delete;
    server_session& operator=(const server_session&) = delete;
    ~server_session();

private:
    struct impl;
    std::unique_ptr<impl> p_;
};

}  // namespace postern::smtp
