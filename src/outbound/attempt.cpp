// outbound/attempt.cpp - drive one outbound SMTP conversation per host until the message is
// handed over, refused, or every host has been tried: a recipient failed temporarily (4xx, or
// a lost connection before the end of data) goes on to the next address or host (RFC 5321
// 5.1), one that may have been delivered (no final reply) does not. Recipients a server refused
// for its recipient limit (452, RFC 5321 4.5.3.1.10) in a transaction that delivered to others
// get the message again at once, in a new transaction on the same connection. TLS decisions follow SPEC §1.1
// (opportunistic): STARTTLS whenever offered; a failed handshake defers the recipients
// (the queue waits tls.handshake_retry_delay); the second failure for the same message and
// host, once that delay has passed since the first, reconnects and delivers without TLS
// (tls=fallback; after_failed_handshake() decides). Mandatory TLS (SPEC §1.2) per the
// profile's resolved policy: never a plaintext fallback. The one place outbound TLS policy is
// enforced; `postern tls-policy --probe` runs the same conversation in probe mode.
#include "outbound/attempt.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <asio/connect.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <numeric>
#include <optional>
#include <random>

#include <fmt/format.h>

#include "delivery/myself.hpp"
#include "delivery/outcome.hpp"
#include "runtime/connection.hpp"
#include "smtp/client_session.hpp"
#include "profile/policy.hpp"
#include "profile/requirements.hpp"
#include "tls/chain.hpp"
#include "tls/client.hpp"
#include "tls/verify.hpp"
#include "tls/context.hpp"

namespace postern::outbound {
namespace {

using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto tok = asio::experimental::as_tuple(asio::use_awaitable);

// RFC 5321 4.5.3.2: replies within delivery.command_timeout (5 min), the final reply within
// delivery.final_timeout (10 min). One watchdog per connection enforces the current limit.
constexpr auto connect_timeout = 30s;
// The reply to QUIT, where it is waited for: only the probe of `postern tls-policy` (a
// delivery closes without waiting, quit_and_close in converse()). RFC 5321 4.5.3.2 sets no
// limit for QUIT; a server that never answers it holds the probe this long, not 5 min.
constexpr auto quit_timeout = 10s;
constexpr std::size_t data_block = 64 * 1024;  // see write_out in converse()

bool is_ip_literal(const std::string& s) {
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

using connection = runtime::timed_connection;

// stale: a reused connection died; not_started: req.stopping() (stopping, or the config was
// replaced by a reload) before the first transaction: QUIT, nothing sent
enum class verdict { next_host, tls_failed, done, stale, not_started };

// One transaction's share of an attempt: its recipients and the policy each was resolved under
// (all with the same profile::session_requirements, so the first one's is the one enforced).
struct transaction {
    std::vector<std::size_t> recipients;                        // indexes into env->recipients
    std::vector<const profile::resolved_tls_policy*> policies;  // parallel to recipients
};

struct conversation {
    verdict v = verdict::next_host;
    delivery::outcome why;  // for next_host / tls_failed
    // No connection made: the address was found unreachable lately (`why` says so; the
    // session facts say relay=none). Not counted as an address tried.
    bool suspended = false;
    session_facts facts;    // the session, its certificate judged for the policy enforced
    std::vector<recipient_result> results;  // on done: one per transaction recipient, in order
    // Parallel to results: failed temporarily where nothing can have been delivered, so the
    // next address or host may still take it (delivery::classify_transaction).
    std::vector<bool> next_host;
    // Parallel to results: sent, and already handed to req.record_sent before a further
    // transaction on the connection (recipients over the server's limit sent again).
    std::vector<bool> recorded;
    // Parallel to results: over the server's limit, but not sent again because req.stopping()
    // said so: left as they were (not attempted), like recipients of a transaction not started.
    std::vector<bool> held_back;
};

// "mx.partner.test[192.0.2.1]:25", "mx.partner.test[2001:db8::1]:25" (Postfix's form; the
// brackets keep an IPv6 address apart from the port).
std::string relay_name(const std::string& host, const std::string& ip, std::uint16_t port) {
    return fmt::format("{}[{}]:{}", host, ip, port);
}

// The message to the recipients of tx at positions `at`.
smtp::outgoing_message outgoing(const attempt_request& req, const transaction& tx, const std::vector<std::size_t>& at) {
    smtp::outgoing_message m;
    m.sender = req.env->sender;
    for (auto j : at) m.recipients.push_back(req.env->recipients[tx.recipients[j]]);
    m.eight_bit = req.env->eight_bit;
    m.smtputf8 = req.env->smtputf8;
    m.size = req.content.size();
    m.content = req.content;
    m.id = req.env->id;
    return m;
}

// Probe mode: what the established TLS session is and what the policy's check found.
void note_tls(tls::probe_facts* probe, SSL* ssl, const smtp::tls_facts& facts, tls::peer_trust trust,
              const std::string& detail, bool enforced, const std::string& unmet) {
    if (!probe) return;
    probe->tls_version = facts.version;
    probe->tls_cipher = facts.cipher;
    probe->tls_bits = facts.bits;
    probe->chain = tls::summarize_peer_chain(ssl);
    probe->trust = tls::to_string(trust);
    probe->check = detail;
    probe->enforced = enforced;
    probe->unmet = unmet;
}

}  // namespace

deliverer::deliverer(dns::resolver& resolver, std::shared_ptr<const config::config> cfg,
                     std::shared_ptr<asio::ssl::context> client_tls, connection_cache* cache,
                     policy::unreachable_addresses* unreachable)
    : resolver_(resolver), cfg_(std::move(cfg)), tls_(std::move(client_tls)), cache_(cache), unreachable_(unreachable) {}

namespace {

// One TCP connection to `ip`, one transaction for tx.recipients under `pol` (the policy of
// tx.policies.front()), and further ones on it for the recipients it refused for the server's
// recipient limit (smtp::over_recipient_limit) while each delivers to some. Fills out.results
// (and out.next_host, out.recorded) on `done`. `fallback`: the plaintext reconnection after
// failed handshakes (SPEC §1.1), shown as tls=fallback in the results.
// With `probe` (postern tls-policy --probe): the same session, recording its facts in *probe,
// ends with QUIT where MAIL FROM would be sent (`done` then means "would deliver").
asio::awaitable<conversation> converse(const std::shared_ptr<const config::config>& cfgp, asio::ssl::context* tls_ctx,
                                       const attempt_request& req, const transaction& tx,
                                       const delivery::target_host& t, const std::string& ip,
                                       const profile::resolved_tls_policy& pol, bool try_tls,
                                       connection_cache* cache, policy::unreachable_addresses* unreachable,
                                       tls::probe_facts* probe = nullptr, bool fallback = false) {
    const config::config& cfg = *cfgp;
    auto ex = co_await asio::this_coro::executor;
    const std::string relay = relay_name(t.name, ip, t.port);
    // A parked session is reused only under the same requirements it met: the profile, the
    // level, versions, cipher strength, trust store, pins and, when the certificate must name
    // the peer, the names (by default they include the recipient domain, so another domain's
    // mail to the same host needs its own check). The rest of the profile comes with the
    // configuration, which take() compares.
    const std::string cache_key = connection_cache::key(t.name, ip, t.port) + "|" + profile::session_requirements(pol);
    const bool mandatory = profile::requires_tls(pol.level);
    conversation out;
    out.facts.relay = relay;
    out.facts.profile = pol.profile;
    std::optional<tls::peer_trust> judged;  // the certificate's verdict, once TLS is up

    std::shared_ptr<connection> conn;
    std::unique_ptr<smtp::client_session> session;
    auto established = std::chrono::steady_clock::now();  // a reused session keeps its own
    // Any level may be parked and reused: the key holds the level and the profile, so a
    // session without TLS (level none) serves only messages whose policy says none too. A
    // fallback session (SPEC §1.1) is given no cache at all.
    const bool reused = cache != nullptr &&
                        [&] {
                            auto p = cache->take(cache_key, cfgp);
                            if (!p) return false;
                            conn = std::move(p->conn);
                            session = std::move(p->session);
                            established = p->established;
                            out.facts.tls = p->tls;
                            out.facts.tls_version = p->tls_version;
                            out.facts.tls_cipher = p->tls_cipher;
                            judged = p->trust;
                            // Judged for the names of the policy it was first checked under: the
                            // log says what a fresh connection would for this one's.
                            if (judged && conn->tls)
                                out.facts.tls = tls::to_string(tls::trust_for_names(conn->tls->native_handle(), *judged, pol));
                            return true;
                        }();
    if (!reused) {
        asio::error_code ec;
        const auto addr = asio::ip::make_address(ip, ec);
        if (ec) {
            out.why = {delivery::outcome::kind::transient, "4.4.1", fmt::format("bad address {} for {}", ip, t.name)};
            co_return out;
        }
        // An address found unreachable lately is not connected to until the first retry step
        // (policy/unreachable.hpp); a parked session to it (taken above) still serves.
        const std::string where = fmt::format("{}|{}", ip, t.port);
        const auto hold = cfg.queue.retry_schedule.empty() ? std::chrono::seconds(60) : cfg.queue.retry_schedule.front();
        if (unreachable)
            if (auto why = unreachable->down(where, std::chrono::steady_clock::now(), hold)) {
                out.suspended = true;
                out.facts.relay = "none";
                out.why = {delivery::outcome::kind::transient, "4.4.1", "delivery temporarily suspended: " + *why};
                co_return out;
            }
        conn = std::make_shared<connection>(ex);
        connection::watch(conn);
        conn->arm(connect_timeout);
        const auto started = std::chrono::steady_clock::now();
        std::tie(ec) = co_await conn->sock.async_connect(tcp::endpoint(addr, t.port), tok);
        conn->disarm();
        if (ec) {
            conn->shutdown();
            out.why = {delivery::outcome::kind::transient, "4.4.1",
                       fmt::format("connect to {}: {}", relay, conn->timed_out ? "timed out" : ec.message())};
            if (unreachable && policy::says_unreachable(ec, conn->timed_out))
                unreachable->failed(where, started, std::chrono::steady_clock::now(), out.why.reason, hold);
            co_return out;
        }
        if (unreachable) unreachable->reached(where, std::chrono::steady_clock::now());
        if (probe) probe->connected = true;
        asio::error_code ig;
        conn->sock.set_option(tcp::no_delay(true), ig);
        smtp::client_settings settings;
        settings.helo_name = cfg.hostname;
        settings.mime_conversion = cfg.delivery.mime_conversion;
        session = std::make_unique<smtp::client_session>(settings);
    }
    smtp::client_session& c = *session;
    // The current transaction's recipients (positions in tx.recipients): all of them, then
    // those over the server's recipient limit, sent again.
    std::vector<std::size_t> current(tx.recipients.size());
    std::iota(current.begin(), current.end(), std::size_t{0});
    smtp::outgoing_message m = req.env ? outgoing(req, tx, current) : smtp::outgoing_message{};
    std::vector<std::size_t> again;  // after a transaction: the recipients to send it again to
    std::size_t transactions = 0;    // on this connection for tx (at most one per recipient)
    bool sent = false, finished = false;
    // Each recipient's facts: the session's, the certificate judged for its own policy's names
    // (a transaction may carry domains whose names differ where the level does not check them).
    auto recipient_facts = [&] {
        std::vector<session_facts> v(tx.recipients.size(), out.facts);
        if (!judged || !conn->tls) return v;
        std::map<const profile::resolved_tls_policy*, std::string> seen;
        for (std::size_t k = 0; k < v.size(); ++k) {
            auto [it, fresh] = seen.try_emplace(tx.policies[k]);
            if (fresh) it->second = tls::to_string(tls::trust_for_names(conn->tls->native_handle(), *judged, *tx.policies[k]));
            v[k].tls = it->second;
        }
        return v;
    };
    // The current transaction's verdict for each of its recipients (failure: how the
    // connection failed in it); an earlier transaction's recipients keep theirs.
    auto settle = [&](const smtp::client_failure* failure) {
        const auto facts = recipient_facts();
        out.results.resize(tx.recipients.size());
        out.next_host.resize(tx.recipients.size());
        out.recorded.resize(tx.recipients.size());
        out.held_back.resize(tx.recipients.size());
        for (std::size_t k = 0; k < current.size(); ++k) {
            const std::size_t j = current[k];
            auto v = delivery::classify_transaction(c.result(), k, failure, relay);
            out.results[j] = {tx.recipients[j], std::move(v.out), facts[j]};
            if (fallback) out.results[j].via.tls = "fallback";
            out.next_host[j] = v.next_host;
        }
    };
    // RFC 5321 4.5.3.1.10: after a transaction, its recipients refused for the server's
    // recipient limit, as long as they failed temporarily (may go to another host).
    auto over_limit = [&] {
        std::vector<std::size_t> v;
        for (const auto k : smtp::over_recipient_limit(c.result()))
            if (out.next_host[current[k]]) v.push_back(current[k]);
        return v;
    };
    // Before a further transaction: what this connection delivered so far is recorded (a crash
    // while it runs must not deliver it again), once.
    auto hand_over_sent = [&]() -> asio::awaitable<void> {
        std::vector<recipient_result> fresh;
        for (std::size_t j = 0; j < out.results.size(); ++j)
            if (out.results[j].out.result == delivery::outcome::kind::sent && !out.recorded[j]) {
                fresh.push_back(out.results[j]);
                out.recorded[j] = true;
            }
        if (!fresh.empty() && req.record_sent) co_await req.record_sent(std::move(fresh));
    };

    const auto command_timeout = cfg.delivery.command_timeout;
    std::vector<char> buf(16384);
    std::string pending;  // kept alive across the write (no temporary in a co_await)
    // RFC 5321 4.5.3.2.5: the content is timed per data block sent, not as a whole (a large
    // message to a slow but steady reader must get through). Commands and a content up to one
    // block go out in one write (with the pipelined commands, as before); a larger content in
    // blocks of data_block octets, each within command_timeout. Asio writes at most 64 KiB per
    // system call anyway, so this adds no system call.
    auto write_out = [&]() -> asio::awaitable<asio::error_code> {
        pending = c.take_output();
        std::string_view rest = pending;
        for (; rest.size() > data_block; rest.remove_prefix(data_block))
            if (auto ec = co_await conn->write(rest.substr(0, data_block), command_timeout)) co_return ec;
        co_return co_await conn->write(rest, command_timeout);
    };
    // The session is over and every result settled: QUIT goes out and the connection is closed
    // without waiting for the 221 (Postfix's smtp_skip_quit_response = yes), so the attempt
    // returns and the pass records what was sent at once. Waiting (up to quit_timeout) left
    // delivered recipients unrecorded meanwhile: a stop's drain or a crash in that time
    // delivered them again at the next start.
    // On TLS the close_notify follows the QUIT in the same segment (close_with).
    auto quit_and_close = [&] {
        c.quit();
        conn->close_with(c.take_output());
    };
    // RFC 5321 4.5.3.2: the limits are per reply, not per read. A reply's clock starts when
    // a command has been written or the previous reply is complete; a server that trickles
    // a reply (a byte, or a "250-" line, at a time) is given up when it runs out.
    auto reply_deadline = std::chrono::steady_clock::now() + command_timeout;
    auto replies_seen = c.replies_received();
    std::optional<std::uint64_t> replies_before_tls;  // TLS 1.3: set when our side of the handshake is done
    std::string read_error;                         // the last failed read's error text
    bool read_error_is_tls = false;                 // ... and it came from the TLS layer (an alert)
    bool peer_closed = false;                       // a read or write failed, not by timing out
    std::uint64_t replies_before_mail = 0;          // replies_received() when MAIL FROM was sent
    // Whether a failure may be a parked connection's: only in its first transaction here (a
    // further one's is this message's, and the first one's recipients are decided).
    bool may_be_stale = reused;
    // A parked connection the server has since given up on (SPEC §3.4): what its idle timeout
    // said while the session was parked is read as the reply to MAIL. A 421 ("timeout
    // exceeded", RFC 5321 3.8), or any other refusal ("451 4.7.0 Timeout", a 5xx) when the
    // connection then closed without another reply. Not this message's answer: once more on a
    // fresh connection, like an EOF there. A first-use connection's refusal is the server's.
    auto stale_reply = [&] {
        const auto& mail = c.result().mail;
        if (!may_be_stale || !mail || mail->positive()) return false;
        return mail->code == 421 || (peer_closed && c.replies_received() == replies_before_mail + 1);
    };

    for (;;) {
        switch (c.next()) {
            case smtp::client_event::need_input: {
                const bool wrote = c.has_output();
                if (auto wec = co_await write_out()) {
                    peer_closed = !conn->timed_out;
                    c.write_failed(conn->timed_out);
                    break;
                }
                if (wrote || c.replies_received() != replies_seen) {
                    replies_seen = c.replies_received();
                    reply_deadline = std::chrono::steady_clock::now() +
                                     (c.state() == smtp::client_state::content ? cfg.delivery.final_timeout
                                      : c.state() == smtp::client_state::quit
                                          ? std::min<std::chrono::steady_clock::duration>(command_timeout, quit_timeout)
                                          : command_timeout);
                }
                const auto left = reply_deadline - std::chrono::steady_clock::now();
                if (left <= 0s) {
                    c.timeout();
                    break;
                }
                asio::error_code rec;
                std::size_t n = co_await conn->read_some(buf.data(), buf.size(), left, rec);
                if (rec) {
                    if (conn->timed_out) {
                        c.timeout();
                    } else {
                        read_error = rec.message();  // a TLS alert's text, say
                        read_error_is_tls = rec.category() == asio::error::get_ssl_category();
                        peer_closed = true;
                        c.feed_eof();
                    }
                } else {
                    c.feed(std::string_view(buf.data(), n));
                }
                break;
            }
            case smtp::client_event::ehlo_done: {
                const auto next = c.tls_active() ? profile::after_ehlo::proceed
                                                 : profile::next_after_ehlo(pol.level, try_tls,
                                                                            c.caps().starttls && tls_ctx != nullptr);
                if (probe && !c.tls_active()) {
                    probe->greeting = c.caps().greeting;
                    probe->starttls_offered = c.caps().starttls;
                    probe->starttls_issued = next == profile::after_ehlo::starttls;
                }
                if (next == profile::after_ehlo::refuse) {
                    // SPEC §1.2: TLS required but not offered: no mail on this connection, QUIT.
                    quit_and_close();
                    out.v = verdict::next_host;
                    out.why = {delivery::outcome::kind::transient, "4.7.4",
                               fmt::format("TLS required but not offered by {}", relay)};
                    co_return out;
                }
                if (next == profile::after_ehlo::starttls) c.starttls();
                else c.proceed();
                break;
            }
            case smtp::client_event::start_tls: {
                if (auto wec = co_await write_out()) {
                    conn->shutdown();
                    out.v = mandatory ? verdict::next_host : verdict::tls_failed;
                    out.why = {delivery::outcome::kind::transient, "4.7.5",
                               fmt::format("TLS handshake with {} failed: {}", relay, wec.message())};
                    co_return out;
                }
                conn->tls.emplace(conn->sock, *tls_ctx);
                tls::prepare_client(conn->tls->native_handle(), t.name);
                conn->arm(command_timeout);
                auto [hec] = co_await conn->tls->async_handshake(asio::ssl::stream_base::client, tok);
                conn->disarm();
                if (hec) {
                    std::string why = conn->timed_out ? "timed out" : hec.message();
                    conn->shutdown();
                    out.v = mandatory ? verdict::next_host : verdict::tls_failed;
                    out.why = {delivery::outcome::kind::transient, "4.7.5",
                               fmt::format("TLS handshake with {} failed: {}", relay, why)};
                    co_return out;
                }
                SSL* ssl = conn->tls->native_handle();
                auto facts = tls::session_facts(ssl);
                out.facts.tls_version = facts.version;
                out.facts.tls_cipher = facts.cipher;
                if (mandatory) {
                    // The one enforcement point (STYLE: policy decides, verify checks).
                    auto v = tls::evaluate(ssl, pol, /*is_server_side=*/false);
                    judged = v.trust;
                    out.facts.tls = tls::to_string(v.trust);
                    note_tls(probe, ssl, facts, v.trust, v.detail, true, v.ok ? "" : v.reason);
                    if (!v.ok) {
                        // QUIT inside the rejected TLS session (nothing else is ever sent on it).
                        conn->close_with("QUIT\r\n");
                        out.v = verdict::next_host;
                        out.why = {delivery::outcome::kind::transient, v.dsn.empty() ? "4.7.5" : v.dsn,
                                   fmt::format("{} ({})", v.reason, relay)};
                        co_return out;
                    }
                } else {
                    // pol.names: the MX host and the recipient domain by default (resolve_outbound).
                    auto check = tls::check_peer(ssl, pol.names);
                    judged = check.trust;
                    out.facts.tls = tls::to_string(check.trust);
                    note_tls(probe, ssl, facts, check.trust, check.detail, false, "");
                }
                c.tls_started();
                // Only TLS 1.3 lets the server judge the client's flight after the client's
                // side of the handshake is done (TLS 1.2's server Finished came first).
                if (SSL_version(ssl) == TLS1_3_VERSION) replies_before_tls = c.replies_received();
                break;
            }
            case smtp::client_event::ready:
                if (!sent && probe) {  // where MAIL FROM would go: the mail would be delivered
                    c.quit();
                    finished = true;
                } else if (!sent && (req.superseded ? req.superseded() : req.stopping && req.stopping())) {
                    // Stopping, or a reload replaced the config while this connection was set
                    // up (a slow greeting, a slow handshake): no transaction under the old one.
                    quit_and_close();
                    out.v = verdict::not_started;
                    co_return out;
                } else if (!sent) {
                    replies_before_mail = c.replies_received();
                    c.send_message(m);
                    sent = true;
                    ++transactions;
                } else if (!again.empty() && c.reusable() && transactions < tx.recipients.size()) {
                    // The recipients over the server's limit: the message again, to them only,
                    // in a new transaction on this connection (RFC 5321 4.5.3.1.10). What was
                    // delivered is recorded first; then, stopping (or the config replaced),
                    // they are held back: left as they were, the connection ended.
                    co_await hand_over_sent();
                    if (req.stopping && req.stopping()) {
                        for (const auto j : std::exchange(again, {})) out.held_back[j] = true;
                        quit_and_close();
                        out.v = verdict::done;
                        co_return out;
                    }
                    current = std::exchange(again, {});
                    m = outgoing(req, tx, current);
                    replies_before_mail = c.replies_received();
                    may_be_stale = false;
                    finished = false;
                    c.send_message(m);
                    ++transactions;
                } else if (cache && c.reusable()) {
                    // Park the session for the next message to this host (SPEC §3.4).
                    cache->put(cache_key, {conn, std::move(session), out.facts.tls, out.facts.tls_version,
                                           out.facts.tls_cipher, judged, cfgp, established});
                    out.v = verdict::done;
                    co_return out;
                } else {
                    quit_and_close();
                    out.v = verdict::done;
                    co_return out;
                }
                break;
            case smtp::client_event::message_done: {
                if (stale_reply()) {
                    conn->shutdown();
                    out.v = verdict::stale;
                    co_return out;
                }
                settle(nullptr);
                again = over_limit();
                finished = true;
                break;
            }
            case smtp::client_event::failed: {
                const auto& f = c.failure();
                using fk = smtp::client_failure::kind;
                if (f.what == fk::starttls_refused || f.what == fk::greeting_refused || f.what == fk::helo_refused) {
                    // The connection still works: end it properly (RFC 5321 4.1.1.10).
                    c.quit();
                    co_await write_out();
                }
                conn->shutdown();
                if (finished) {
                    out.v = verdict::done;
                    co_return out;
                }
                // TLS 1.3: the client's side of the handshake is done before the server has
                // judged the client's flight; a server that then aborts (an alert such as
                // certificate_required, RFC 8446 4.4.2.4, or a close) before any reply inside
                // TLS failed the handshake (SPEC §1.1), not an established session.
                // A plain close or reset there is an ordinary lost connection (another host may
                // do better); only a TLS alert (an error of the TLS layer) is the server's verdict.
                const bool tls_unconfirmed = replies_before_tls && c.replies_received() == *replies_before_tls &&
                                             f.what == smtp::client_failure::kind::connection_lost &&
                                             read_error_is_tls;
                const bool in_tls_setup =
                    f.what == smtp::client_failure::kind::starttls_refused ||
                    c.state() == smtp::client_state::starttls || c.state() == smtp::client_state::tls_handshake ||
                    tls_unconfirmed;
                auto o = delivery::classify_failure(f, relay);
                if (tls_unconfirmed && !read_error.empty()) o.reason = read_error;
                if (in_tls_setup && mandatory) {  // SPEC §1.2: next MX, else defer; never plaintext
                    out.v = verdict::next_host;
                    out.why = {delivery::outcome::kind::transient, "4.7.5",
                               fmt::format("TLS handshake with {} failed: {}", relay, o.reason)};
                    co_return out;
                }
                if (in_tls_setup) {
                    // STARTTLS refused, or the peer closed after "220 Ready": a failed handshake.
                    out.v = verdict::tls_failed;
                    out.why = {delivery::outcome::kind::transient, "4.7.5",
                               fmt::format("TLS handshake with {} failed: {}", relay, o.reason)};
                    co_return out;
                }
                // The parked connection went stale: no reply to MAIL, or a stale one.
                if (may_be_stale && !finished && (!c.result().mail || stale_reply())) {
                    out.v = verdict::stale;
                    co_return out;
                }
                if (!sent) {  // never got as far as MAIL: another host may do better
                    out.v = verdict::next_host;
                    out.why = o;
                    co_return out;
                }
                settle(&f);
                out.v = verdict::done;
                co_return out;
            }
            case smtp::client_event::closed:
                conn->shutdown();
                if (may_be_stale && !finished && !c.result().mail) {
                    out.v = verdict::stale;
                    co_return out;
                }
                if (!finished) {
                    out.v = verdict::next_host;
                    out.why = {delivery::outcome::kind::transient, "4.4.2", fmt::format("{} closed the connection", relay)};
                    co_return out;
                }
                out.v = verdict::done;
                co_return out;
        }
    }
}

// Random order among equal MX preferences and among one host's addresses.
std::mt19937& shuffle_rng() {
    static thread_local std::mt19937 rng{std::random_device{}()};
    return rng;
}

// The hosts a route leads to, in the order to try them, or what ends delivery before any
// connection (null MX, NXDOMAIN, a failed MX lookup).
struct host_plan {
    std::vector<delivery::target_host> hosts;
    std::optional<delivery::mx_verdict> mx;  // MX routes
    std::string note;                        // on a usable MX answer (records ignored, ...)
    std::optional<delivery::outcome> stop;
    bool backup = false;  // this host is an MX: the records at and above its preference were discarded
};

// This machine's interface addresses, for a wildcard listener (delivery/myself.hpp); read
// with getifaddrs(3) at most once a minute per thread.
std::vector<std::string> local_interface_addresses() {
    static thread_local std::vector<std::string> cached;
    static thread_local std::optional<std::chrono::steady_clock::time_point> read_at;
    const auto now = std::chrono::steady_clock::now();
    if (read_at && now - *read_at < 60s) return cached;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return cached;
    cached.clear();
    for (const ifaddrs* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr) continue;
        char text[INET6_ADDRSTRLEN] = {};
        const int family = i->ifa_addr->sa_family;
        const void* a = family == AF_INET    ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr)
                        : family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr)
                                             : nullptr;
        if (a && ::inet_ntop(family, a, text, sizeof text)) cached.emplace_back(text);
    }
    ::freeifaddrs(list);
    read_at = now;
    return cached;
}

// RFC 5321 5.1: our own MX record, and every one at or above its preference, is discarded
// (Postfix smtp_addr.c). A host is us by name, or by an address we listen on at its port; the
// addresses are looked up only when some listener is on that port (they are looked up again
// for the connection: the resolver's cache answers). Returns whether we were among the hosts.
asio::awaitable<bool> discard_myself(dns::resolver& resolver, delivery::self_identity me,
                                     std::vector<delivery::target_host>& hosts) {
    std::optional<std::string> mine;  // the best-preference host that is us (hosts are in order)
    for (const auto& h : hosts) {
        if (delivery::is_my_name(me, h.name)) {
            mine = h.name;
            break;
        }
        if (!delivery::listens_on_port(me, h.port)) continue;
        if (me.local_addresses.empty() && delivery::listens_on_wildcard(me, h.port))
            me.local_addresses = local_interface_addresses();
        const auto a = co_await resolver.addresses(h.name);
        if (std::any_of(a.addresses.begin(), a.addresses.end(),
                        [&](const std::string& ip) { return delivery::is_my_address(me, ip, h.port); })) {
            mine = h.name;
            break;
        }
    }
    if (!mine) co_return false;
    co_return delivery::discard_self_and_worse(hosts, [&](const delivery::target_host& h) { return h.name == *mine; });
}

asio::awaitable<host_plan> plan_hosts(dns::resolver& resolver, const delivery::route& where,
                                      const delivery::self_identity& me) {
    host_plan out;
    if (where.literal) {
        // RFC 5321 5.1: an address literal naming this host (as a connection reaches it: an
        // unspecified address is the loopback) would come back here, hop after hop.
        const auto& hp = where.hosts.front();
        delivery::self_identity mine = me;
        if (delivery::listens_on_wildcard(mine, hp.port)) mine.local_addresses = local_interface_addresses();
        if (delivery::is_my_address(mine, hp.host, hp.port)) {
            out.stop = {delivery::outcome::kind::permanent, "5.4.6",
                        fmt::format("mail for {} loops back to myself", where.domain)};
            co_return out;
        }
    }
    if (where.how == delivery::route::kind::static_hosts) {
        for (const auto& hp : where.hosts) out.hosts.push_back({hp.host, 0, hp.port});
        co_return out;
    }
    if (!where.domain.empty() && where.domain.front() == '[') {
        // A literal that is no IPv4 or IPv6 address ("[x-tag:content]", RFC 5321 4.1.3's
        // General-address-literal): nothing to connect to, and no name to look up.
        out.stop = {delivery::outcome::kind::permanent, "5.1.2",
                    fmt::format("address literal {} is not an IPv4 or IPv6 address", where.domain)};
        co_return out;
    }
    auto ans = co_await resolver.mx(where.domain);
    auto plan = delivery::plan_mx(ans, where.domain, where.port, shuffle_rng());
    out.mx = plan.verdict;
    switch (plan.verdict) {
        case delivery::mx_verdict::null_mx:
            out.stop = {delivery::outcome::kind::permanent, "5.1.10",
                        fmt::format("domain {} does not accept mail (null MX, RFC 7505)", where.domain)};
            break;
        case delivery::mx_verdict::no_such_domain:
            out.stop = {delivery::outcome::kind::permanent, "5.1.2", fmt::format("domain {} does not exist", where.domain)};
            break;
        case delivery::mx_verdict::no_usable_host:  // final: every retry gets the same records
            out.stop = {delivery::outcome::kind::permanent, "5.4.4", plan.reason};
            break;
        case delivery::mx_verdict::temporary:
            // plan.reason: "MX lookup for DOMAIN failed temporarily (why)" or "...: DNSSEC
            // validation failed (why)"; said once, not wrapped in a second "MX lookup for".
            out.stop = {delivery::outcome::kind::transient, "4.4.3", plan.reason};
            break;
        case delivery::mx_verdict::ok:
        case delivery::mx_verdict::implicit:
            out.hosts = std::move(plan.hosts);
            if (plan.verdict == delivery::mx_verdict::ok) out.note = plan.reason;
            break;
    }
    if (!out.hosts.empty() && co_await discard_myself(resolver, me, out.hosts)) {
        out.backup = true;
        if (out.hosts.empty())
            out.stop = {delivery::outcome::kind::permanent, "5.4.6",
                        fmt::format("mail for {} loops back to myself", where.domain)};
        else
            out.note += std::string(out.note.empty() ? "" : "; ") +
                        "this host is an MX: records at and above its preference discarded";
    }
    co_return out;
}

// The addresses of one host (an IP literal is its own); none, and why, when it has no usable one.
struct host_addresses {
    std::vector<std::string> ips;
    delivery::outcome error;
    bool not_found = false;  // the name does not exist, or has neither A nor AAAA (not a DNS failure)
};

asio::awaitable<host_addresses> addresses_of(dns::resolver& resolver, const delivery::target_host& t) {
    host_addresses out;
    if (is_ip_literal(t.name)) {
        out.ips.push_back(t.name);
        co_return out;
    }
    auto a = co_await resolver.addresses(t.name);
    if (a.status != dns::dns_status::ok || a.addresses.empty()) {
        out.error = {delivery::outcome::kind::transient, "4.4.3",
                     fmt::format("cannot find an address for {}{}", t.name, a.error.empty() ? "" : ": " + a.error)};
        out.not_found = a.status == dns::dns_status::nxdomain || a.status == dns::dns_status::nodata;
        co_return out;
    }
    out.ips = std::move(a.addresses);
    delivery::order_addresses(out.ips, shuffle_rng());  // Postfix's smtp_randomize_addresses
    co_return out;
}

// The profile for this destination (recipient domain -> host IP -> host name -> *), resolved
// as a value; this file only enforces it.
profile::resolved_tls_policy policy_for(const config::config& cfg, const std::string& domain,
                                        const delivery::target_host& t, const std::string& ip) {
    return profile::resolve_outbound(cfg, {domain, ip, t.name});
}

// The domain a recipient's policy is resolved for: its route's (the A-label form, as the queue
// runner routes it), or this host's name for an address without one.
std::string recipient_domain(const config::config& cfg, std::string_view address) {
    const auto at = address.rfind('@');
    const std::string_view d = at == std::string_view::npos ? std::string_view{} : address.substr(at + 1);
    return delivery::routing_domain(d.empty() ? std::string_view(cfg.hostname) : d);
}

// SPEC §1.1/§1.2: STARTTLS is issued (when offered) at every level but none.
bool try_tls_under(const profile::resolved_tls_policy& pol) { return pol.level != profile::tls_level::none; }

std::int64_t unix_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

failed_handshake after_failed_handshake(std::optional<std::int64_t> first, std::int64_t now_ms,
                                        std::chrono::seconds delay) {
    // Times are kept in whole seconds: this failure counts from the second after it (rounded
    // up), so that "first + delay" is never earlier than the delay really is.
    const std::int64_t failed_at = (now_ms + 999) / 1000;
    failed_handshake out;
    out.first = first ? std::min(*first, failed_at) : failed_at;  // a future time: the clock went back
    out.retry_at = out.first + delay.count();
    out.fallback = first.has_value() && now_ms >= out.retry_at * 1000;
    return out;
}

asio::awaitable<attempt_result> deliverer::deliver(const attempt_request& req) {
    const config::config& cfg = *cfg_;
    const std::size_t n = req.recipients.size();
    // Per recipient (by position in req.recipients): its result once `decided`; until then what
    // it is deferred or bounced with when no later host takes it.
    std::vector<recipient_result> out(n);
    std::vector<bool> decided(n, false);
    for (std::size_t k = 0; k < n; ++k)
        out[k] = {req.recipients[k], {delivery::outcome::kind::transient, "4.4.1", "no host to deliver to"}, {}, 0};
    const host_plan plan = co_await plan_hosts(resolver_, req.where, delivery::identity_of(cfg));
    attempt_result res;
    if (plan.stop) {
        for (auto& r : out) r.out = *plan.stop;
        res.results = std::move(out);
        co_return res;
    }
    // A host's failure for the recipients still open: its reason, unless an earlier host's TLS
    // reason says more (SPEC §1.2); `via` (the session tried) when there was one.
    auto note = [&](std::size_t k, const delivery::outcome& why, const session_facts* via) {
        if (decided[k] || delivery::keeps_reason_over(out[k].out, why)) return;
        out[k].out = why;
        if (via) out[k].via = *via;
    };
    auto decide = [&](std::size_t k, recipient_result r) {
        out[k] = std::move(r);
        decided[k] = true;
    };
    auto open = [&] { return std::find(decided.begin(), decided.end(), false) != decided.end(); };
    std::vector<recipient_result> unrecorded;  // sent by a host, not yet handed to req.record_sent
    bool stopping = false;
    auto stop_now = [&] {
        if (!stopping && req.stopping && req.stopping()) stopping = true;
        return stopping;
    };
    // Like Postfix's smtp_mx_session_limit (2): after two addresses whose sessions left
    // recipients open (a 4xx after MAIL FROM: greylisting, a full mailbox, a host in trouble),
    // no further address or host is tried in this attempt; the recipients are deferred with the
    // reply. Counted per address, not per policy group's session at that address.
    constexpr int max_failed_sessions = 2;
    int failed_sessions = 0;
    // Like Postfix's smtp_mx_address_limit (5): at most five addresses are tried, whatever
    // became of each (refused, timed out, a 4xx greeting, a session); every address of the
    // list counts, also one already tried under another host name (100 MX names on one
    // black-hole address are 100 tries). Without it a domain with hundreds of black-hole
    // addresses (a forged sender's bounce goes there) holds a delivery slot for hours. The
    // recipients left are deferred with the last host's reason. Both limits are per next-hop
    // destination, as Postfix enforces them (smtp_connect.c): an MX route is one (its MX hosts
    // share them); each host of a relay_to or [[route]] list is one of its own (a fall-back
    // relay is not cut short by the addresses and sessions of the relays before it).
    constexpr int max_addresses = 5;
    int addresses_tried = 0;
    auto go_on = [&] {
        return open() && !stop_now() && failed_sessions < max_failed_sessions && addresses_tried < max_addresses;
    };

    // SPEC §1.4: each recipient's policy is resolved for its own domain (and the host's facts
    // below), never for another recipient's.
    std::vector<std::string> domains;     // distinct, in order of their first recipient
    std::vector<std::size_t> domain_of(n);  // recipient position -> index in domains
    for (std::size_t k = 0; k < n; ++k) {
        const std::string d = recipient_domain(cfg, req.env->recipients[req.recipients[k]]);
        const auto it = std::find(domains.begin(), domains.end(), d);
        domain_of[k] = static_cast<std::size_t>(it - domains.begin());
        if (it == domains.end()) domains.push_back(d);
    }

    // An MX route (explicit or implicit) whose every host does not exist or has no address
    // (NXDOMAIN / nodata, never a DNS failure) bounces 5.4.4 like Postfix's "Host or domain
    // name not found", instead of deferring until queue.max_age. Static routes still defer:
    // a configured host that does not resolve is a configuration error, not the recipient's.
    // Nor does a backup MX (this host among the records): its primary missing from DNS for a
    // while (a DNS change) defers, as Postfix's "unable to find primary relay" does.
    bool none_exist = plan.mx.has_value() && !plan.hosts.empty() && !plan.backup;
    for (const auto& t : plan.hosts) {
        // What earlier hosts took is recorded before anything else, even a DNS lookup, is
        // waited for.
        if (!unrecorded.empty() && req.record_sent) co_await req.record_sent(std::exchange(unrecorded, {}));
        if (!plan.mx.has_value()) failed_sessions = addresses_tried = 0;  // a static host: its own next hop
        if (!go_on()) break;
        const host_addresses addrs = co_await addresses_of(resolver_, t);
        if (addrs.ips.empty()) {
            for (std::size_t k = 0; k < n; ++k) note(k, addrs.error, nullptr);
            none_exist = none_exist && addrs.not_found;
            continue;
        }
        none_exist = false;
        for (const auto& ip : addrs.ips) {
            if (!go_on()) break;
            bool tried_here = false;      // a connection was made or attempted (not suspended)
            bool left_open_here = false;  // a session at this address left recipients open
            // Each domain's policy at this host; the open recipients of the domains whose
            // policies require the same of the session go in one transaction (one, when all
            // do), the others in their own, each on its own connection or one parked under
            // the same requirements.
            std::vector<profile::resolved_tls_policy> pols;
            for (const auto& d : domains) pols.push_back(policy_for(cfg, d, t, ip));
            for (const auto& same : profile::group_by_requirements(pols)) {
                transaction tx;
                std::vector<std::size_t> at;  // the transaction's recipients' positions
                for (std::size_t k = 0; k < n; ++k)
                    if (!decided[k] && std::find(same.begin(), same.end(), domain_of[k]) != same.end()) {
                        at.push_back(k);
                        tx.recipients.push_back(req.recipients[k]);
                        tx.policies.push_back(&pols[domain_of[k]]);
                    }
                if (at.empty()) continue;
                if (stop_now()) break;
                if (!unrecorded.empty() && req.record_sent) co_await req.record_sent(std::exchange(unrecorded, {}));
                const profile::resolved_tls_policy& pol = *tx.policies.front();
                const bool try_tls = try_tls_under(pol);
                auto conv = co_await converse(cfg_, tls_.get(), req, tx, t, ip, pol, try_tls, cache_, unreachable_);
                if (conv.v == verdict::stale && !stop_now())  // a parked connection had died: once more, fresh
                    conv = co_await converse(cfg_, tls_.get(), req, tx, t, ip, pol, try_tls, nullptr, unreachable_);
                tried_here = tried_here || !conv.suspended;
                if (conv.v == verdict::tls_failed) {
                    // Remembered by host AND port: two relay_to hosts on one address but
                    // different ports are two servers (one's failure is not the other's).
                    const std::string failed_key = fmt::format("{}:{}", t.name, t.port);
                    std::optional<std::int64_t> before;
                    if (const auto it = req.tls_failed_hosts.find(failed_key); it != req.tls_failed_hosts.end())
                        before = it->second;
                    const failed_handshake fh =
                        after_failed_handshake(before, unix_now_ms(), cfg.tls.handshake_retry_delay);
                    queue::note_tls_failure(res.tls_failed_hosts, failed_key, fh.first);
                    if (!fh.fallback) {
                        // The first failure, or one before handshake_retry_delay has passed since
                        // it: nothing is sent; defer until that delay after the first failure.
                        conv.facts.tls = "none";
                        for (std::size_t j = 0; j < at.size(); ++j)
                            decide(at[j], {tx.recipients[j], conv.why, conv.facts, fh.retry_at});
                        continue;
                    }
                    // SPEC §1.1: the second failed handshake for this message and host, the
                    // delay after the first one past: reconnect and deliver without TLS in this
                    // same attempt.
                    if (stop_now()) break;  // not when stopping: left as they were
                    conv = co_await converse(cfg_, tls_.get(), req, tx, t, ip, pol, /*try_tls=*/false, nullptr,
                                             unreachable_, /*probe=*/nullptr, /*fallback=*/true);
                }
                if (conv.v == verdict::not_started) {  // stopping: these recipients stay as they were
                    stop_now();
                    break;
                }
                if (conv.v == verdict::done) {  // conv.results: one per recipient of tx
                    // RFC 5321 5.1: a recipient this host failed temporarily, where nothing can
                    // have been delivered, stays open for the next address or host; the others
                    // (sent, bounced, or possibly delivered) are decided here.
                    if (std::find(conv.next_host.begin(), conv.next_host.end(), true) != conv.next_host.end())
                        left_open_here = true;
                    for (std::size_t j = 0; j < at.size(); ++j) {
                        if (conv.held_back[j]) {  // not sent again: stopping (marked below)
                            stop_now();
                            continue;
                        }
                        if (conv.next_host[j]) {
                            note(at[j], conv.results[j].out, &conv.results[j].via);
                            continue;
                        }
                        if (conv.results[j].out.result == delivery::outcome::kind::sent && !conv.recorded[j])
                            unrecorded.push_back(conv.results[j]);
                        decide(at[j], std::move(conv.results[j]));
                    }
                    continue;
                }
                for (const auto k : at) note(k, conv.why, &conv.facts);
            }
            if (tried_here) ++addresses_tried;
            if (left_open_here) ++failed_sessions;
        }
    }
    if (stopping) {
        for (std::size_t k = 0; k < n; ++k) out[k].not_attempted = !decided[k];
        none_exist = false;
    }
    for (std::size_t k = 0; k < n; ++k)
        if (!decided[k] && none_exist)
            out[k].out = {delivery::outcome::kind::permanent, "5.4.4", "Host or domain name not found: " + out[k].out.reason};
    res.results = std::move(out);
    co_return res;
}

asio::awaitable<void> deliverer::probe(tls::policy_report& report, bool connect) {
    const config::config& cfg = *cfg_;
    report.probed = connect;
    report.handshake_retry_delay = cfg.tls.handshake_retry_delay;
    host_plan plan = co_await plan_hosts(resolver_, report.where, delivery::identity_of(cfg));
    report.mx = plan.mx;
    report.mx_note = plan.note;
    report.stop = plan.stop;

    attempt_request req;  // no envelope: a probe ends where MAIL FROM would be sent
    req.where = report.where;
    req.domain = report.domain;
    for (const auto& t : plan.hosts) {
        const host_addresses addrs = co_await addresses_of(resolver_, t);
        if (addrs.ips.empty()) report.hosts.push_back({t, "", addrs.error, {}, std::nullopt});
        for (const auto& ip : addrs.ips) {
            tls::host_report h{t, ip, {}, policy_for(cfg, req.domain, t, ip), std::nullopt};
            if (connect) {
                tls::probe_facts f;
                const auto conv = co_await converse(cfg_, tls_.get(), req, transaction{}, t, ip, h.policy,
                                                    try_tls_under(h.policy), /*cache=*/nullptr,
                                                    /*unreachable=*/nullptr, &f);
                switch (conv.v) {
                    case verdict::done: f.verdict = tls::probe_verdict::deliver; break;
                    case verdict::tls_failed: f.verdict = tls::probe_verdict::defer_tls; break;
                    case verdict::next_host:
                    case verdict::stale:
                    case verdict::not_started:
                        f.verdict = f.connected ? tls::probe_verdict::refuse : tls::probe_verdict::unreachable;
                        break;
                }
                f.why = conv.why;
                h.probe = std::move(f);
            }
            report.hosts.push_back(std::move(h));
        }
    }
}

}  // namespace postern::outbound
