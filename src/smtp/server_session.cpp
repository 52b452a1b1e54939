// smtp/server_session.cpp - the inbound SMTP state machine: bytes in, replies and events out.
// RFC 5321 (commands, replies, limits), 1870 (SIZE), 2920 (PIPELINING), 3030 (CHUNKING/BDAT),
// 3207 (STARTTLS), 6152 (8BITMIME), 6531 (SMTPUTF8), 2034/3463 (enhanced status codes).
//
// Security notes:
// - STARTTLS: the input buffered when STARTTLS is accepted is discarded, and so is anything
//   fed before tls_started(): plaintext pipelined after STARTTLS is never executed
//   (CVE-2011-0411). tls_started() forgets everything the client told us (RFC 3207 4.2).
// - DATA: only CR LF "." CR LF ends the data (see data_decoder.hpp, SMTP smuggling).
// - BDAT: a chunk whose size can be read is read as content even when its BDAT line is
//   refused (bad end-marker included); a size that cannot be skipped closes the session.
// - Memory is bounded: a command line longer than max_line_length is discarded as it
//   arrives; message bodies stop growing at max_message_size (or at an overlong line), and
//   past content_budget::free_per_message only while all sessions' bodies together fit the
//   shared content_budget (else 452 4.3.1 at the end of the message).
// - Command lines may end in a bare LF (strip an optional CR); NUL or a stray CR in a
//   command line is refused.
// - Like OpenSMTPD, the command table separates checking (state, syntax) from acting.
#include "smtp/server_session.hpp"

#include "smtp/text.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <unordered_set>
#include <utility>
#include <variant>

#include "smtp/command.hpp"
#include "smtp/data_decoder.hpp"

namespace postern::smtp {
namespace {

// What next() is doing; current_state() derives the public state from it.
enum class mode { greeting, command, data, bdat, waiting_store, waiting_tls, closed };

// RFC 1870 6: size-value = 1*20DIGIT (leading zeros allowed), or nullopt. A value past
// 2^64-1 saturates there: it exceeds any size limit and is refused as such, not as syntax.
std::optional<std::uint64_t> parse_size_value(std::string_view v) {
    if (v.empty() || v.size() > 20) return std::nullopt;
    std::uint64_t n = 0;
    for (const char c : v) {
        if (c < '0' || c > '9') return std::nullopt;
        const auto d = static_cast<std::uint64_t>(c - '0');
        n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
    }
    return n;
}

// The text of a 553 for a domain with no A-label form (`why`: libidn2's reason).
std::string bad_idn(const std::string& why) {
    return "domain is not a valid internationalized domain name (" + why + ")";
}

}  // namespace

struct server_session::impl {
    impl(server_settings s, server_policy& p) : settings(std::move(s)), policy(p) {}
    ~impl() { uncharge(); }
    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;

    server_settings settings;
    server_policy& policy;
    mode m = mode::greeting;

    // Envelope state. `tx.helo`/`tx.esmtp` survive a transaction reset.
    bool helo_done = false;
    bool in_tx = false;  // MAIL accepted
    transaction tx;
    std::unordered_set<std::string> rcpt_seen;  // policy.recipient_key() of tx.recipients: duplicates
    std::string body;
    std::uint64_t charged = 0;  // octets of `body` taken from settings.budget
    bool over_budget = false;   // this message no longer fits the shared budget: 452 at its end

    // Input: bytes [pos, in.size()) are unprocessed; `scan` is where the LF search resumes.
    std::string in;
    std::size_t pos = 0;
    std::size_t scan = 0;
    bool discarding = false;  // inside an overlong command line
    std::uint64_t discarded = 0;  // octets of it dropped so far
    bool eof = false;

    std::string out;
    std::optional<tls_facts> tls;
    std::uint32_t errors = 0;
    std::optional<reply> refuse_all;

    // DATA
    std::optional<data_decoder> decoder;

    // BDAT (RFC 3030)
    bool bdat_active = false;             // this transaction has accepted BDAT chunks
    std::uint64_t bdat_total = 0;         // octets in accepted chunks so far
    std::optional<reply> bdat_failure;    // sticky until LAST/RSET: refuse later chunks too
    std::uint64_t chunk_size = 0;
    std::uint64_t chunk_left = 0;
    bool chunk_last = false;
    bool chunk_store = false;             // false: consume and discard
    std::optional<reply> chunk_reply;     // refusal sent once the chunk is consumed

    // --- replies -------------------------------------------------------------------------

    void send(const reply& r, bool counts_as_error = true) {
        out += r.wire();
        if (r.code == 421) {  // RFC 5321 3.8: 421 closes the transmission channel
            m = mode::closed;
            return;
        }
        if (r.code >= 400 && counts_as_error && m != mode::closed) {
            ++errors;
            if (errors > settings.max_errors) {
                out += make_reply(421, "4.7.0", settings.hostname + " Error: too many errors").wire();
                m = mode::closed;
            }
        }
    }
    void send(int code, const char* enhanced, std::string text) {
        send(make_reply(code, enhanced, std::move(text)));
    }

    // --- state ---------------------------------------------------------------------------

    // RFC 5321 4.1.1.5 (RSET), 4.1.4 (EHLO/HELO also reset): envelope cleared, HELO kept.
    void reset_transaction() {
        transaction fresh;
        fresh.helo = std::move(tx.helo);
        fresh.esmtp = tx.esmtp;
        tx = std::move(fresh);
        rcpt_seen.clear();
        in_tx = false;
        std::string().swap(body);  // a body can be large: give the memory back
        uncharge();
        over_budget = false;
        decoder.reset();
        bdat_active = false;
        bdat_total = 0;
        bdat_failure.reset();
    }

    void reset_all() {
        reset_transaction();
        tx = transaction{};
        helo_done = false;
    }

    void discard_input() {
        in.clear();
        pos = scan = 0;
        discarding = false;
        discarded = 0;
    }

    bool tls_missing() const { return settings.require_tls && !tls; }
    // RCPT, DATA, BDAT, AUTH: also while no MAIL has chosen a profile by its sender's domain.
    bool tls_missing_until_mail() const { return tls_missing() || (settings.require_tls_until_mail && !tls && !in_tx); }

    // The body grew: take the growth from the shared budget, or refuse the message (its
    // content is dropped from now on; the input is still read to the end of the message).
    void charge() {
        if (!settings.budget) return;
        if (!over_budget && settings.budget->grow(charged, body.capacity())) {
            charged = std::max<std::uint64_t>(charged, body.capacity());
            return;
        }
        over_budget = true;
        uncharge();
        std::string().swap(body);
    }
    void uncharge() {
        if (settings.budget) settings.budget->release(charged);
        charged = 0;
    }
    // Room for `more` octets of body, taken from the shared budget before it is allocated. The
    // budget counts the memory a body holds (its capacity), not only its content: a string
    // that doubles would otherwise hold up to twice what was charged (20 sessions of endless
    // DATA peaked at 650 MiB for a 512 MiB budget). Growth doubles, as libstdc++'s own does,
    // so appends stay amortised; when the budget has no room for that, by a quarter, then by
    // exactly what is needed (a copy into a string of that size: libstdc++'s reserve() never
    // grows by less than double); when not even that fits, the body is dropped at once, as in
    // charge(). Growth past `more` (a bare LF written as CR LF) is charged afterwards, by charge().
    void make_room(std::size_t more) {
        if (!settings.budget || over_budget) return;
        const std::size_t have = body.capacity(), need = body.size() + more;
        if (need <= have) return;
        for (const std::size_t cap : {std::max(need, 2 * have), need + need / 4, need}) {
            if (!settings.budget->grow(charged, cap)) continue;
            charged = std::max<std::uint64_t>(charged, cap);
            if (cap >= 2 * have) {
                body.reserve(cap);
            } else {
                std::string grown;
                grown.reserve(cap);
                grown.append(body);
                body.swap(grown);
            }
            return;
        }
        over_budget = true;
        uncharge();
        std::string().swap(body);
    }
    static reply no_storage() {  // RFC 5321 4.2.2 452, RFC 3463 4.3.1
        return make_reply(452, "4.3.1", "Error: insufficient system storage, try again later");
    }

    // --- input ---------------------------------------------------------------------------

    // How much of one overlong command line is read and dropped before the session ends:
    // as many maximal lines as the client may make errors (at least 16 KiB).
    std::uint64_t max_discarded_line() const {
        return std::max<std::uint64_t>(16 * 1024, std::uint64_t{settings.max_line_length} * (settings.max_errors + 1));
    }

    // The next complete command line (without its line end), or nullopt when more input
    // is needed. Overlong lines are answered and skipped here.
    std::optional<std::string_view> take_line() {
        while (m == mode::command || m == mode::greeting) {
            const std::size_t nl = in.find('\n', std::max(scan, pos));
            if (discarding) {
                if (nl == std::string::npos) {
                    discarded += in.size() - pos;
                    pos = scan = in.size();  // drop as it arrives: memory stays bounded
                    // A line that never ends would hold the session forever (each read
                    // restarts the command timeout, as Postfix's smtpd_timeout does without
                    // smtpd_per_record_deadline): past this much, the client is not speaking
                    // SMTP, and the session ends.
                    if (discarded >= max_discarded_line()) {
                        send(500, "5.5.2", "Error: line too long");
                        if (m != mode::closed)
                            send(421, "4.7.0", settings.hostname + " Error: line too long, closing connection");
                    }
                    return std::nullopt;
                }
                pos = scan = nl + 1;
                discarding = false;
                discarded = 0;
                send(500, "5.5.2", "Error: line too long");
                continue;
            }
            if (nl == std::string::npos) {
                scan = in.size();
                // No LF yet and already max_line_length octets: with its LF, the line
                // would exceed the limit.
                if (in.size() - pos >= settings.max_line_length) {
                    discarding = true;
                    discarded = in.size() - pos;
                    pos = scan = in.size();
                }
                return std::nullopt;
            }
            const std::size_t start = pos;
            pos = scan = nl + 1;
            if (nl + 1 - start > settings.max_line_length) {  // RFC 5321 4.5.3.1.4
                send(500, "5.5.2", "Error: line too long");
                continue;
            }
            std::string_view line(in.data() + start, nl - start);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            return line;
        }
        return std::nullopt;
    }

    // --- commands ------------------------------------------------------------------------

    using handler = std::optional<event> (impl::*)(std::string_view arg);
    struct command_entry {
        const char* verb;
        handler fn;
    };

    std::optional<event> handle_line(std::string_view line) {
        if (line.find('\0') != std::string_view::npos) {
            send(500, "5.5.2", "Error: NUL character in command");
            return std::nullopt;
        }
        if (line.find('\r') != std::string_view::npos || line.empty()) {
            send(500, "5.5.2", "Error: bad syntax");
            return std::nullopt;
        }
        const command_line c = split_command(line);
        static const command_entry table[] = {
            {"EHLO", &impl::cmd_ehlo},   {"HELO", &impl::cmd_helo},
            {"MAIL", &impl::cmd_mail},   {"RCPT", &impl::cmd_rcpt},
            {"DATA", &impl::cmd_data},   {"BDAT", &impl::cmd_bdat},
            {"RSET", &impl::cmd_rset},   {"NOOP", &impl::cmd_noop},
            {"QUIT", &impl::cmd_quit},   {"VRFY", &impl::cmd_vrfy},
            {"EXPN", &impl::cmd_expn},   {"HELP", &impl::cmd_help},
            {"STARTTLS", &impl::cmd_starttls}, {"AUTH", &impl::cmd_auth},
            // Cross-protocol requests (an HTTP client talking to port 25): like Postfix
            // smtpd_forbidden_commands, hang up at once.
            {"CONNECT", &impl::cmd_forbidden}, {"GET", &impl::cmd_forbidden},
            {"POST", &impl::cmd_forbidden},
        };
        for (const auto& e : table) {
            if (c.verb != e.verb) continue;
            if (refuse_all && c.verb != "QUIT") {
                // RFC 3207 4.1: a TLS session that does not meet the policy gets every
                // command but QUIT refused. A BDAT chunk is still read, to stay in sync.
                if (c.verb == "BDAT") {
                    if (const auto b = parse_bdat(c.arg)) return begin_chunk(*b, *refuse_all);
                    return bad_bdat(c.arg, *refuse_all);
                }
                send(*refuse_all);
                return std::nullopt;
            }
            return (this->*e.fn)(c.arg);
        }
        send(500, "5.5.2", "Error: command not recognized");
        return std::nullopt;
    }

    std::optional<event> hello(std::string_view arg, bool esmtp) {
        // RFC 5321 4.1.1.1: "EHLO" SP ( Domain / address-literal ). Like Postfix we do not
        // insist on a valid name (many clients send none), only on printable text, safe to
        // log. It is kept as sent; the Received: header shows only its host-name characters
        // (message/received.cpp), so spaces or parentheses in it cannot forge clauses there.
        if (arg.empty() || has_control(arg)) {
            send(501, "5.5.4", esmtp ? "Syntax: EHLO hostname" : "Syntax: HELO hostname");
            return std::nullopt;
        }
        reset_transaction();  // RFC 5321 4.1.4: EHLO/HELO in a transaction acts as RSET
        tx.helo = std::string(arg);
        tx.esmtp = esmtp;
        helo_done = true;
        if (!esmtp) {
            send(250, "", settings.hostname);
            return std::nullopt;
        }
        // RFC 5321 4.1.1.1: "250-" Domain, then one extension keyword per line.
        reply r;
        r.code = 250;
        r.lines.push_back(settings.hostname);
        r.lines.push_back("PIPELINING");                                   // RFC 2920
        r.lines.push_back("SIZE " + std::to_string(settings.max_message_size));  // RFC 1870
        r.lines.push_back("8BITMIME");                                     // RFC 6152
        r.lines.push_back("ENHANCEDSTATUSCODES");                          // RFC 2034
        if (settings.starttls_offered && !tls) r.lines.push_back("STARTTLS");  // RFC 3207
        r.lines.push_back("SMTPUTF8");                                     // RFC 6531
        r.lines.push_back("CHUNKING");                                     // RFC 3030
        send(r);
        return std::nullopt;
    }
    std::optional<event> cmd_ehlo(std::string_view arg) { return hello(arg, true); }
    std::optional<event> cmd_helo(std::string_view arg) { return hello(arg, false); }

    std::optional<event> cmd_mail(std::string_view arg) {
        if (tls_missing()) return refuse_530();
        if (!helo_done) return fail(503, "5.5.1", "Error: send HELO/EHLO first");
        if (in_tx) return fail(503, "5.5.1", "Error: nested MAIL command");
        const path_args pa = split_path_args(arg, "FROM:");
        if (!pa.keyword_ok) return fail(501, "5.5.4", "Syntax: MAIL FROM:<address>");
        if (!pa.path_ok) return fail(501, "5.1.7", "Bad sender address syntax");
        auto p = parse_path(pa.path, /*allow_null=*/true, /*utf8_allowed=*/true, false);
        if (!p) return fail(501, "5.1.7", "Bad sender address syntax");
        auto params = parse_params(pa.params);
        if (!params) return fail(501, "5.5.4", "Syntax error in parameters");

        transaction t;
        t.helo = tx.helo;
        t.esmtp = tx.esmtp;
        t.sender = std::move(*p);
        bool seen_size = false, seen_body = false, seen_utf8 = false;
        for (const auto& prm : *params) {
            // RFC 5321 4.1.1.2 / 2.2.1: MAIL parameters are service extensions, EHLO only.
            if (!t.esmtp) return unsupported(prm.key);
            if (prm.key == "SIZE") {  // RFC 1870 6: SIZE=<octets>
                const auto size = seen_size || !prm.has_value ? std::nullopt : parse_size_value(prm.value);
                if (!size) return fail(501, "5.5.4", "Bad message size syntax");
                seen_size = true;
                t.declared_size = *size;
                if (*size > settings.max_message_size)  // RFC 1870 6.2
                    return fail(552, "5.3.4", "Message size exceeds fixed limit");
            } else if (prm.key == "BODY") {  // RFC 6152 2; BINARYMIME (RFC 3030 3) not offered
                if (seen_body) return fail(501, "5.5.4", "Duplicate BODY parameter");
                seen_body = true;
                if (iequals(prm.value, "7BIT")) t.body = body_type::seven_bit;
                else if (iequals(prm.value, "8BITMIME")) t.body = body_type::eight_bit_mime;
                else return fail(555, "5.5.4", "Unsupported BODY parameter value");
            } else if (prm.key == "SMTPUTF8") {  // RFC 6531 3.4: no value
                if (seen_utf8 || prm.has_value) return fail(501, "5.5.4", "Bad SMTPUTF8 parameter");
                seen_utf8 = true;
                t.smtputf8 = true;
            } else {
                return unsupported(prm.key);
            }
        }
        // RFC 6531 3.5: a non-ASCII address needs SMTPUTF8 on this MAIL command.
        if (t.sender.box.utf8 && !t.smtputf8)
            return fail(553, "5.6.7", "Error: non-ASCII sender address requires SMTPUTF8");
        // RFC 6531 3.2: matched and routed by its A-label; a domain without one is refused.
        if (!t.sender.idna_error.empty())
            return fail(553, "5.1.7", "Bad sender address: " + bad_idn(t.sender.idna_error));

        if (auto r = policy.check_sender(t); r && !r->positive()) {
            send(*r);
            return std::nullopt;
        } else {
            tx = std::move(t);
            rcpt_seen.clear();
            in_tx = true;
            send(r ? *r : make_reply(250, "2.1.0", "Ok"));
        }
        return std::nullopt;
    }

    std::optional<event> cmd_rcpt(std::string_view arg) {
        if (tls_missing_until_mail()) return refuse_530();
        if (!in_tx) return fail(503, "5.5.1", "Error: need MAIL command");
        if (bdat_active) return fail(503, "5.5.1", "Error: RCPT not allowed after BDAT");
        const path_args pa = split_path_args(arg, "TO:");
        if (!pa.keyword_ok) return fail(501, "5.5.4", "Syntax: RCPT TO:<address>");
        if (!pa.path_ok) return fail(501, "5.1.3", "Bad recipient address syntax");
        // RFC 5321 4.1.1.3: "<>" is not a forward-path; <Postmaster> needs no domain.
        auto p = parse_path(pa.path, /*allow_null=*/false, /*utf8_allowed=*/true, true);
        if (!p) return fail(501, "5.1.3", "Bad recipient address syntax");
        auto params = parse_params(pa.params);
        if (!params) return fail(501, "5.5.4", "Syntax error in parameters");
        if (!params->empty())  // no RCPT extension (DSN NOTIFY/ORCPT) is offered
            return unsupported(params->front().key);
        if (p->box.utf8 && !tx.smtputf8)  // RFC 6531 3.5
            return fail(553, "5.6.7", "Error: non-ASCII recipient address requires SMTPUTF8");
        if (!p->idna_error.empty())  // RFC 6531 3.2, as for the sender
            return fail(553, "5.1.3", "Bad recipient address: " + bad_idn(p->idna_error));
        mailbox box = std::move(p->box);
        // RFC 5321 4.1.1.3: a bare <Postmaster> is this server's postmaster; from here on it is
        // the full address the policy names (stored, compared, checked as such).
        if (box.domain.empty()) {
            auto full = policy.complete_postmaster(box);
            if (auto* refusal = std::get_if<reply>(&full)) {
                send(*refusal);
                return std::nullopt;
            }
            box = std::move(std::get<mailbox>(full));
        }
        // Like Postfix, a recipient repeated in one transaction is accepted again but stored
        // (and so delivered) once, and is not counted again toward max_recipients.
        std::string key = policy.recipient_key(box);
        if (rcpt_seen.contains(key)) {
            send(250, "2.1.5", "Ok");
            return std::nullopt;
        }
        // RFC 5321 4.5.3.1.10: 452 for too many recipients (the client may retry the rest).
        // Not a client error (like Postfix's recipient overshoot): a client with more
        // recipients than the limit sends the rest in a later transaction.
        if (tx.recipients.size() >= settings.max_recipients) {
            send(make_reply(452, "4.5.3", "Too many recipients"), /*counts_as_error=*/false);
            return std::nullopt;
        }
        if (auto r = policy.check_recipient(tx, box); r && !r->positive()) {
            send(*r);
        } else {
            rcpt_seen.insert(std::move(key));
            tx.recipients.push_back(std::move(box));
            send(r ? *r : make_reply(250, "2.1.5", "Ok"));
        }
        return std::nullopt;
    }

    std::optional<event> cmd_data(std::string_view arg) {
        if (tls_missing_until_mail()) return refuse_530();
        if (!arg.empty()) return fail(501, "5.5.4", "Syntax: DATA");  // RFC 5321 4.1.1.4
        if (!in_tx) return fail(503, "5.5.1", "Error: need RCPT command");
        // RFC 3030 2: a transaction uses either DATA or BDAT, never both.
        if (bdat_active) return fail(503, "5.5.1", "Error: DATA cannot be mixed with BDAT");
        if (tx.recipients.empty()) return fail(554, "5.5.1", "Error: no valid recipients");
        body.clear();
        decoder.emplace(settings.max_message_size);
        m = mode::data;
        send(354, "", "End data with <CR><LF>.<CR><LF>");
        return std::nullopt;
    }

    std::optional<event> cmd_bdat(std::string_view arg) {
        const auto b = parse_bdat(arg);
        if (!b) return bad_bdat(arg, make_reply(501, "5.5.4", "Syntax: BDAT count [LAST]"));
        // RFC 3030 3: a refused BDAT still has its chunk read (and thrown away).
        if (tls_missing_until_mail())
            return begin_chunk(*b, make_reply(530, "5.7.0", "Must issue a STARTTLS command first"));
        if (!helo_done)
            return begin_chunk(*b, make_reply(503, "5.5.1", "Error: send HELO/EHLO first"));
        // RFC 3030 2 / RFC 5321 2.2.1: CHUNKING is a service extension, offered only after EHLO.
        if (!tx.esmtp)
            return begin_chunk(*b, make_reply(503, "5.5.1", "Error: send EHLO first (BDAT is an ESMTP extension)"));
        if (!in_tx) return begin_chunk(*b, make_reply(503, "5.5.1", "Error: need MAIL command"));
        if (tx.recipients.empty()) {
            // The message has lost this chunk: it fails like a chunk too big (RCPT gets 503,
            // later chunks this refusal, until LAST or RSET), never stored with a hole.
            bdat_active = true;
            if (!bdat_failure) bdat_failure = make_reply(554, "5.5.1", "Error: no valid recipients");
            return begin_chunk(*b, *bdat_failure);
        }
        if (!bdat_failure && b->size > settings.max_message_size - std::min(bdat_total, settings.max_message_size))
            bdat_failure = make_reply(552, "5.3.4", "Error: message too big");  // RFC 1870, 3030 3
        if (bdat_failure) {
            bdat_active = true;
            return begin_chunk(*b, *bdat_failure);
        }
        if (!bdat_active) body.clear();
        bdat_active = true;
        bdat_total += b->size;
        return begin_chunk(*b, std::nullopt);
    }

    // A BDAT line parse_bdat() refuses, answered `r` (501 syntax, or a refusal of every command).
    // RFC 3030 2: its chunk follows whatever we make of the line, so when the size can be read
    // the chunk is read and dropped, never executed as commands; then, in a transaction that
    // could take chunks, the message has lost one: it fails like a chunk too big (later chunks
    // refused, until LAST or RSET), never stored with a hole. No size at all: nothing follows
    // that we could skip. A size past 2^64-1: the chunk can be neither read nor skipped, and
    // whatever follows is content, not commands: the session cannot resynchronise, so it ends.
    std::optional<event> bad_bdat(std::string_view arg, reply r) {
        const bdat_size size = parse_bdat_size(arg);
        switch (size.what) {
            case bdat_size::kind::none:
                send(r);
                return std::nullopt;
            case bdat_size::kind::too_big:
                send(552, "5.3.4", "Error: message too big; the BDAT chunk cannot be skipped, closing connection");
                m = mode::closed;
                return event::close;
            case bdat_size::kind::known:
                break;
        }
        if (in_tx && tx.esmtp) {  // with recipients or not yet: RCPT after it gets 503
            bdat_active = true;
            if (!bdat_failure)
                bdat_failure = make_reply(554, "5.5.0", "Error: message incomplete, a BDAT chunk was refused");
        }
        return begin_chunk(bdat_args{size.size, false}, std::move(r));
    }

    std::optional<event> begin_chunk(const bdat_args& b, std::optional<reply> refusal) {
        chunk_size = chunk_left = b.size;
        chunk_last = b.last;
        chunk_store = !refusal;
        chunk_reply = std::move(refusal);
        m = mode::bdat;
        return std::nullopt;
    }

    std::optional<event> cmd_rset(std::string_view arg) {
        if (!arg.empty()) return fail(501, "5.5.4", "Syntax: RSET");  // RFC 5321 4.1.1.5
        reset_transaction();
        send(250, "2.0.0", "Ok");
        return std::nullopt;
    }

    std::optional<event> cmd_noop(std::string_view) {  // RFC 5321 4.1.1.9: argument ignored
        send(250, "2.0.0", "Ok");
        return std::nullopt;
    }

    std::optional<event> cmd_quit(std::string_view) {  // RFC 5321 4.1.1.10
        send(221, "2.0.0", settings.hostname + " closing connection");
        m = mode::closed;
        return event::close;
    }

    std::optional<event> cmd_vrfy(std::string_view arg) {
        if (arg.empty()) return fail(501, "5.5.4", "Syntax: VRFY address");
        // RFC 5321 3.5.3 / 7.3: 252, never confirm or deny a mailbox. RFC 3463: X.0.0 (other
        // or undefined status), as Postfix; X.5.2 would say "syntax error".
        send(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery");
        return std::nullopt;
    }

    std::optional<event> cmd_expn(std::string_view) {  // RFC 5321 7.3: EXPN may be disabled
        return fail(502, "5.5.1", "Error: command not implemented");
    }

    std::optional<event> cmd_help(std::string_view) {  // RFC 5321 4.1.1.8
        send(214, "2.0.0",
             "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS");
        return std::nullopt;
    }

    std::optional<event> cmd_auth(std::string_view) {
        if (tls_missing_until_mail()) return refuse_530();
        return fail(502, "5.5.1", "Error: authentication not enabled");
    }

    std::optional<event> cmd_forbidden(std::string_view) {
        send(221, "2.7.0", "Error: I can break rules, too. Goodbye.");
        m = mode::closed;
        return event::close;
    }

    std::optional<event> cmd_starttls(std::string_view arg) {
        if (tls) return fail(503, "5.5.1", "Error: TLS already active");  // RFC 3207 4.2
        if (!settings.starttls_offered) return fail(502, "5.5.1", "Error: command not implemented");
        if (!arg.empty()) return fail(501, "5.5.4", "Syntax: STARTTLS");  // RFC 3207 4
        if (in_tx) return fail(503, "5.5.1", "Error: MAIL transaction in progress");
        send(220, "2.0.0", "Ready to start TLS");
        // RFC 3207 5 / CVE-2011-0411: nothing received before the handshake is executed.
        discard_input();
        m = mode::waiting_tls;
        return event::start_tls;
    }

    std::optional<event> fail(int code, const char* enhanced, std::string text) {
        send(code, enhanced, std::move(text));
        return std::nullopt;
    }
    // RFC 5321 4.1.1.11. The keyword is the client's (up to a command line long): only its
    // start is echoed, so the reply line stays within 512 octets (RFC 5321 4.5.3.1.5; found
    // by fuzz/smtp_server).
    std::optional<event> unsupported(const std::string& keyword) {
        constexpr std::size_t max_echo = 64;
        return fail(555, "5.5.4",
                    "Unsupported option: " +
                        (keyword.size() <= max_echo ? keyword : keyword.substr(0, max_echo) + "..."));
    }
    std::optional<event> refuse_530() {  // SPEC 1.2, RFC 3207 4
        return fail(530, "5.7.0", "Must issue a STARTTLS command first");
    }

    // --- DATA and BDAT bodies ------------------------------------------------------------

    std::optional<event> run_data() {
        // Room for the input as it is (dot-stuffing only shrinks it); none once the message
        // is refused anyway.
        if (!decoder->too_big() && !decoder->line_too_long()) make_room(in.size() - pos);
        pos += decoder->consume(std::string_view(in).substr(pos), body);
        scan = pos;
        charge();
        if (!decoder->done()) return std::nullopt;
        m = mode::command;
        const bool too_big = decoder->too_big(), too_long = decoder->line_too_long();
        decoder.reset();
        if (too_big || too_long || over_budget) {
            reset_transaction();
            if (too_big)  // RFC 1870 6.3 / RFC 5321 4.5.3.1.10
                send(552, "5.3.4", "Error: message too big");
            else if (too_long)  // RFC 5321 4.5.3.1.6
                send(554, "5.6.0", "Error: message line longer than 998 octets");
            else  // our shortage, not the client's error
                send(no_storage(), /*counts_as_error=*/false);
            return std::nullopt;
        }
        m = mode::waiting_store;
        return event::message;
    }

    std::optional<event> run_bdat() {
        const std::size_t avail = in.size() - pos;
        const std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(avail, chunk_left));
        if (chunk_store) make_room(take);
        if (chunk_store && !over_budget) body.append(in, pos, take);  // RFC 3030 2: octets as sent, no stuffing
        pos = scan = pos + take;
        chunk_left -= take;
        if (chunk_store) {
            charge();
            if (over_budget) {  // this chunk and the later ones get 452 (RFC 3030 3)
                chunk_store = false;
                bdat_failure = chunk_reply = no_storage();
            }
        }
        if (chunk_left > 0) return std::nullopt;
        m = mode::command;
        if (chunk_reply) {
            if (chunk_last && bdat_active) reset_transaction();  // the failed message is over
            const reply r = std::move(*chunk_reply);
            chunk_reply.reset();
            send(r, /*counts_as_error=*/r.code != 452);  // our shortage, not the client's error
            return std::nullopt;
        }
        if (!chunk_last) {
            send(250, "2.0.0", std::to_string(chunk_size) + " octets received");
            return std::nullopt;
        }
        // BINARYMIME is not offered, so BDAT content is text lines: store it exactly like DATA
        // content (bare CR / bare LF -> CRLF, lines of at most 998 octets), so nothing received
        // over BDAT can smuggle an end-of-data into a later DATA relay.
        // The copy that makes is charged to the shared budget before it is made (both strings
        // are alive while it is written), and what is left afterwards is the new body's.
        if (const std::size_t grown = normalized_size(body); grown != body.size() && settings.budget) {
            if (grown > settings.max_message_size) {
                reset_transaction();
                send(552, "5.3.4", "Error: message too big");
                return std::nullopt;
            }
            if (!settings.budget->grow(charged, charged + grown)) {
                reset_transaction();
                send(no_storage(), /*counts_as_error=*/false);  // our shortage, not the client's error
                return std::nullopt;
            }
            charged += grown;
        }
        const auto norm = normalize_line_endings(body, settings.max_message_size);
        if (settings.budget && charged > body.capacity()) {
            settings.budget->release(charged - body.capacity());
            charged = body.capacity();
        }
        if (norm != normalize_result::ok) {
            reset_transaction();
            if (norm == normalize_result::too_big)
                send(552, "5.3.4", "Error: message too big");
            else
                send(554, "5.6.0", "Error: message line longer than 998 octets");
            return std::nullopt;
        }
        m = mode::waiting_store;
        return event::message;
    }

    // --- the loop ------------------------------------------------------------------------

    event next() {
        for (;;) {
            switch (m) {
                case mode::closed:
                    return event::close;
                case mode::waiting_store:
                case mode::waiting_tls:
                    return event::need_input;  // driver bug: an event is outstanding
                case mode::data:
                    if (auto ev = run_data()) return *ev;
                    if (m == mode::data) return input_exhausted();
                    break;
                case mode::bdat:
                    if (auto ev = run_bdat()) return *ev;
                    if (m == mode::bdat) return input_exhausted();
                    break;
                case mode::greeting:
                case mode::command: {
                    if (output_full()) return event::need_input;  // the rest once these are sent
                    const auto line = take_line();
                    if (!line) {
                        if (m == mode::closed) return event::close;
                        return input_exhausted();
                    }
                    if (auto ev = handle_line(*line)) return *ev;
                    break;
                }
            }
        }
    }

    bool output_full() const { return settings.max_pending_output != 0 && out.size() >= settings.max_pending_output; }

    event input_exhausted() {
        if (!eof) return event::need_input;
        m = mode::closed;  // peer closed: nothing to answer
        return event::close;
    }
};

// The same recipient: the local part unquoted, exactly (RFC 5321 2.4: it may be
// case-sensitive; 4.1.2: "\"bob\"" and "bob" are one mailbox), the domain by its A-label form
// (ignoring case; "b\u00fccher.test" = "xn--bcher-kva.test"). No local part or domain
// contains NUL (refused in command lines), so the two parts cannot run into each other.
std::string server_policy::recipient_key(const mailbox& rcpt) {
    return unquote_local_part(rcpt.local) + '\0' + rcpt.domain_lower();
}

server_session::server_session(server_settings settings, server_policy& policy)
    : p_(std::make_unique<impl>(std::move(settings), policy)) {}

server_session::~server_session() = default;

void server_session::start() {
    if (p_->m != mode::greeting) return;
    // RFC 5321 4.2 / 3.1: greeting; "ESMTP" tells the client EHLO is understood.
    p_->out += make_reply(220, "", p_->settings.hostname + " ESMTP Postern").wire();
    p_->m = mode::command;
}

void server_session::feed(std::string_view bytes) {
    auto& s = *p_;
    // Plaintext arriving while the TLS handshake is pending is never executed (RFC 3207 5).
    if (s.m == mode::waiting_tls || s.m == mode::closed) return;
    if (s.pos == s.in.size()) {
        s.in.clear();
        s.pos = s.scan = 0;
    } else if (s.pos >= 4096 && s.pos * 2 >= s.in.size()) {
        s.in.erase(0, s.pos);
        s.scan -= s.pos;
        s.pos = 0;
    }
    s.in.append(bytes);
}

void server_session::feed_eof() { p_->eof = true; }

void server_session::timeout() {
    auto& s = *p_;
    if (s.m == mode::closed) return;
    // RFC 5321 4.5.3.2: the server may close after a timeout, with a 421 reply.
    s.out += make_reply(421, "4.4.2", s.settings.hostname + " Error: timeout exceeded").wire();
    s.m = mode::closed;
}

event server_session::next() { return p_->next(); }

std::string server_session::take_output() { return std::exchange(p_->out, std::string()); }

bool server_session::has_output() const { return !p_->out.empty(); }

bool server_session::output_full() const { return p_->output_full(); }

void server_session::tls_started(const tls_facts& facts) {
    auto& s = *p_;
    if (s.m == mode::closed) return;
    assert(s.m == mode::waiting_tls);  // called without event::start_tls: driver bug
    if (s.m != mode::waiting_tls) return;
    // RFC 3207 4.2: discard all knowledge obtained from the client; EHLO is needed again.
    s.reset_all();
    s.discard_input();
    s.tls = facts;
    s.m = mode::command;
}

void server_session::message_done(const reply& r) {
    auto& s = *p_;
    if (s.m == mode::closed) return;     // timeout() while the message was being stored
    assert(s.m == mode::waiting_store);  // called without event::message: driver bug
    if (s.m != mode::waiting_store) return;
    s.m = mode::command;
    s.reset_transaction();
    // The outcome of storing (250, or 451/452 when the spool failed): a failure is ours, never
    // counted as the client's error towards max_errors (a client retrying while the disk is
    // full is not cut off for it).
    s.send(r, /*counts_as_error=*/false);
}

void server_session::refuse_commands(const reply& r) { p_->refuse_all = r; }

const transaction& server_session::current() const { return p_->tx; }
const std::string& server_session::body() const { return p_->body; }
bool server_session::tls_active() const { return p_->tls.has_value(); }
const std::optional<tls_facts>& server_session::tls() const { return p_->tls; }
std::uint32_t server_session::error_count() const { return p_->errors; }
std::size_t server_session::buffered() const { return p_->in.size() - p_->pos; }

state server_session::current_state() const {
    switch (p_->m) {
        case mode::greeting: return state::greeting;
        case mode::command:
            return !p_->helo_done ? state::need_helo : p_->in_tx ? state::in_mail : state::ready;
        case mode::data: return state::in_data;
        case mode::bdat: return state::in_bdat;
        case mode::waiting_store: return state::waiting_store;
        case mode::waiting_tls: return state::waiting_tls;
        case mode::closed: return state::closed;
    }
    return state::closed;
}

}  // namespace postern::smtp
