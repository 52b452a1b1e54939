// server/session.cpp - inbound session coroutine: socket <-> smtp::server_session, STARTTLS,
// timeouts, durable queueing before 250. The protocol decisions live in src/smtp; this file
// only moves bytes, runs the TLS handshake and asks the spool to commit.
#include "server/session.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <optional>
#include <variant>

#include <fmt/format.h>

#include "dns/resolver.hpp"
#include "log/log.hpp"
#include "message/received.hpp"
#include "policy/recipient.hpp"
#include "profile/inbound.hpp"
#include "profile/policy.hpp"
#include "tls/client.hpp"
#include "tls/verify.hpp"
#include "runtime/blocking.hpp"
#include "runtime/connection.hpp"
#include "runtime/queue_runner.hpp"
#include "server/shutdown_notice.hpp"
#include "smtp/server_session.hpp"
#include "tls/context.hpp"

namespace postern::server {
namespace {

using tcp = asio::ip::tcp;
constexpr auto tok = asio::experimental::as_tuple(asio::use_awaitable);

using connection = runtime::timed_connection;

// Replies held for a client at most (plus one reply): smtp::server_settings::max_pending_output.
// Ample for a pipelined transaction's replies (1,000 accepted RCPTs: 14 KiB).
constexpr std::size_t max_pending_output = 16 * 1024;

// What every log line of the session carries (log::session_tags): the profile that applies and
// the TLS verdict so far; both can change during the session (STARTTLS, a sender-domain
// profile at MAIL FROM).
struct session_log {
    std::string sid, client;
    std::string profile;      // "" = none
    std::string tls = "none";  // none | untrusted | trusted | verified | refused
    log::session_tags tags() const { return {sid, client, profile, tls}; }
};

// The session's policy: recipient/relay decisions from policy/recipient.cpp, plus SPEC 1.2's
// "a profile matched by sender domain enforces this at MAIL FROM": when the TLS decision waits
// for MAIL FROM (profile::inbound_tls_plan::at_mail_from), the profile resolver's value for the
// sender's domain ("*" when none matches, and for the null sender), checked with tls::evaluate
// on the live session. Every refusal is logged as a `reject` event.
class session_policy final : public smtp::server_policy {
public:
    session_policy(const config::config& cfg, smtp::server_policy& inner, session_log& slog,
                   const profile::inbound_facts& facts, bool tls_at_mail_from, runtime::timed_connection& conn)
        : cfg_(cfg), inner_(inner), log_(slog), facts_(facts), tls_at_mail_from_(tls_at_mail_from), conn_(conn) {}
    std::optional<smtp::reply> check_sender(const smtp::transaction& t) override {
        auto r = inner_.check_sender(t);
        if (!r && tls_at_mail_from_)
            r = sender_tls(t.sender.null ? std::nullopt : std::optional(t.sender.box.domain_lower()));
        if (r) log::message_rejected(log_.tags(), fmt::format("MAIL FROM:<{}>: {} {} {}", t.sender.box.str(),
                                                               r->code, r->enhanced, r->lines.front()));
        return r;
    }
    std::optional<smtp::reply> check_recipient(const smtp::transaction& t, const smtp::mailbox& rcpt) override {
        auto r = inner_.check_recipient(t, rcpt);
        if (r) log::message_rejected(log_.tags(), fmt::format("RCPT TO:<{}>: {} {} {}", rcpt.str(), r->code,
                                                               r->enhanced, r->lines.front()));
        return r;
    }
    std::variant<smtp::mailbox, smtp::reply> complete_postmaster(const smtp::mailbox& bare) override {
        auto full = inner_.complete_postmaster(bare);
        if (const auto* r = std::get_if<smtp::reply>(&full))
            log::message_rejected(log_.tags(), fmt::format("RCPT TO:<{}>: {} {} {}", bare.str(), r->code,
                                                           r->enhanced, r->lines.front()));
        return full;
    }
    std::string recipient_key(const smtp::mailbox& rcpt) override { return inner_.recipient_key(rcpt); }

private:
    std::optional<smtp::reply> sender_tls(std::optional<std::string> domain) {
        auto facts = facts_;
        facts.sender_domain = std::move(domain);
        const auto pol = profile::resolve_inbound(cfg_, facts);
        log_.profile = pol.profile;
        if (!profile::requires_tls(pol.level)) {
            // No check for this sender: what the session is (an earlier transaction's verdict,
            // `refused` or `verified`, is not this message's).
            log_.tls = conn_.tls ? "untrusted" : "none";
            return std::nullopt;
        }
        if (!conn_.tls) return smtp::make_reply(530, "5.7.0", "Must issue a STARTTLS command first");
        auto v = tls::evaluate(conn_.tls->native_handle(), pol, /*is_server_side=*/true);
        log_.tls = v.ok ? tls::to_string(v.trust) : "refused";
        log::tls_policy_checked(log_.tags(), profile::to_string(pol.level), v.ok, v.reason);
        if (!v.ok) return smtp::make_reply(554, "5.7.0", v.reason);
        return std::nullopt;
    }

    const config::config& cfg_;
    smtp::server_policy& inner_;
    session_log& log_;
    const profile::inbound_facts& facts_;
    const bool tls_at_mail_from_;
    runtime::timed_connection& conn_;
};

std::string tls_summary(const std::optional<smtp::tls_facts>& t) {
    return t ? fmt::format("{} {}", t->version, t->cipher) : std::string();
}

}  // namespace

asio::awaitable<void> run_session(context& ctx, std::shared_ptr<const generation> gen, tcp::socket sock,
                                  tcp::endpoint remote, unsigned short local_port, std::string sid,
                                  policy::admission::slot place) {
    // `gen`: the config the session started with, kept to its end. This runs on a session
    // thread: the resolver and the queue runner are reached on the main event loop.
    const config::config& cfg = *gen->cfg;
    const std::string client_ip = remote.address().to_string();
    const std::string client = fmt::format("{}:{}", client_ip, remote.port());

    auto conn = std::make_shared<connection>(std::move(sock));
    connection::watch(conn);
    session_log slog{sid, client, "", "none"};

    // The client's host name (forward-confirmed reverse DNS), looked up only when a profile
    // names hosts and the client's IP address did not already select a profile (the IP comes
    // first, SPEC §1.4). A lookup that failed temporarily must not let a client escape a
    // mandatory profile it would match by name: its commands get 451 4.4.3 (try later).
    profile::inbound_facts facts{client_ip, std::nullopt, std::nullopt};
    bool name_unknown_for_now = false;
    std::string name_error;
    if (const auto use = profile::client_names_used(cfg);
        use.needed && ctx.resolver && profile::match_inbound(cfg, facts).step != profile::match_step::client_ip) {
        auto n = co_await asio::co_spawn(ctx.main, dns::forward_confirmed_name(*ctx.resolver, client_ip),
                                          asio::use_awaitable);
        facts.client_name = std::move(n.name);
        name_unknown_for_now = n.temporary && use.mandatory;
        name_error = std::move(n.error);
    }

    // Relay rights come from the connection profile matched by client IP or name (SPEC §1.4;
    // the sender domain never grants relay).
    const bool relay = profile::relay_allowed(cfg, facts);
    policy::inbound_policy decide(cfg, relay);
    // TLS policy for this client (SPEC 1.2-1.4), planned in src/profile/inbound.cpp: a profile
    // matched by IP or name (or "*" when no profile has sender domains) decides at connect and
    // is checked right after STARTTLS; otherwise the decision is made at each MAIL FROM with the
    // sender's domain (session_policy).
    const auto plan = profile::plan_inbound(cfg, facts);
    const auto& tls_pol = plan.connection;
    session_policy pol(cfg, decide, slog, facts, plan.at_mail_from, *conn);
    slog.profile = tls_pol.profile;
    log::connection_opened(slog.tags(), fmt::format("{}", local_port),
                           facts.client_name.value_or("unknown"), profile::to_string(tls_pol.level));
    smtp::server_settings settings;
    settings.hostname = cfg.hostname;
    settings.max_message_size = cfg.server.max_message_size;
    settings.max_recipients = cfg.server.max_recipients;
    settings.max_errors = cfg.server.max_errors;
    settings.max_line_length = cfg.server.max_line_length;
    // Mandatory wins over tls.opportunistic = false; tls = "none" turns STARTTLS off.
    settings.starttls_offered = gen->tls != nullptr && plan.offer_starttls;
    settings.require_tls = plan.require_tls_at_connect;  // 530 5.7.0 before STARTTLS
    settings.require_tls_until_mail = plan.require_tls_until_mail;
    settings.budget = ctx.content_budget;
    settings.max_pending_output = max_pending_output;
    smtp::server_session core(settings, pol);
    core.start();
    if (name_unknown_for_now) {
        log::message_rejected(slog.tags(), "client host name lookup failed: " + name_error);
        core.refuse_commands(smtp::make_reply(451, "4.4.3", "Temporary failure looking up your host name; try again later"));
    }

    std::string reason = "quit";
    unsigned messages = 0;
    // Plaintext reads go through one buffer per thread (read_when_ready: filled and consumed
    // without a suspension in between); TLS reads need their own, taken at STARTTLS.
    static thread_local std::vector<char> shared_buf(65536);
    std::vector<char> tls_buf;
    std::string out;  // replies being written (outlives the co_await)
    for (bool done = false; !done;) {
        switch (core.next()) {
            case smtp::event::need_input: {
                // Replies to pipelined commands are sent at most max_pending_output at a time:
                // the commands after them are answered once these have gone (a client that
                // never reads holds that much here, not a reply to every command it sent).
                const bool more_commands = core.output_full();
                if (auto ec = co_await conn->write(out = core.take_output(), cfg.server.command_timeout)) {
                    reason = conn->timed_out ? "write timeout" : "write error: " + ec.message();
                    done = true;
                    break;
                }
                if (more_commands) break;
                const auto st = core.current_state();
                const auto limit = (st == smtp::state::in_data || st == smtp::state::in_bdat)
                                       ? cfg.server.data_timeout
                                       : cfg.server.command_timeout;
                // RFC 5321 3.8: shutting down, a session outside a transaction is told so at
                // once (server/shutdown_notice.hpp); one in a transaction may finish it.
                const bool idle = st == smtp::state::need_helo || st == smtp::state::ready;
                auto say_shutdown = [&]() -> asio::awaitable<void> {
                    reason = "shutdown";
                    out = smtp::make_reply(421, "4.3.2",
                                           cfg.hostname + " Service shutting down, closing transmission channel")
                              .wire();
                    co_await conn->write(out, cfg.server.command_timeout);
                };
                if (idle && shutting_down()) {
                    co_await say_shutdown();
                    done = true;
                    break;
                }
                asio::error_code ec;
                char* buf = conn->tls ? tls_buf.data() : shared_buf.data();
                std::size_t n = 0;
                {
                    std::optional<idle_wait> announced;
                    if (idle) announced.emplace(*conn);
                    n = conn->tls ? co_await conn->read_some(buf, tls_buf.size(), limit, ec)
                                  : co_await conn->read_when_ready(buf, shared_buf.size(), limit, ec);
                }
                if (ec) {
                    if (idle && !conn->timed_out && ec == asio::error::operation_aborted && shutting_down()) {
                        co_await say_shutdown();
                        done = true;
                        break;
                    }
                    if (conn->timed_out) {
                        reason = "timeout";
                        core.timeout();
                    } else {
                        reason = (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
                                     ? "lost connection"
                                     : "read error: " + ec.message();
                        core.feed_eof();
                    }
                    break;
                }
                core.feed(std::string_view(buf, n));
                break;
            }
            case smtp::event::start_tls: {
                if (co_await conn->write(out = core.take_output(), cfg.server.command_timeout)) {
                    reason = "write error";
                    done = true;
                    break;
                }
                conn->tls.emplace(conn->sock, *gen->tls);
                tls_buf.resize(16384);
                if (plan.request_client_certificate) tls::request_client_certificate(conn->tls->native_handle());
                conn->arm(cfg.server.command_timeout);
                auto [ec] = co_await conn->tls->async_handshake(asio::ssl::stream_base::server, tok);
                conn->disarm();
                if (ec) {
                    std::string why = conn->timed_out ? "handshake timeout" : ec.message();
                    log::tls_failed(slog.tags(), why);
                    reason = "TLS handshake failed";
                    done = true;
                    break;
                }
                const auto tls_facts = tls::session_facts(conn->tls->native_handle());
                // No client certificate was asked for unless a profile requires one.
                slog.tls = "untrusted";
                std::optional<tls::tls_verdict> verdict;
                if (plan.require_tls_at_connect) {
                    // The one check of the session against the profile (RFC 3207 4.1: a session
                    // that does not meet the requirements gets 554 to every command but QUIT).
                    verdict = tls::evaluate(conn->tls->native_handle(), tls_pol, /*is_server_side=*/true);
                    slog.tls = verdict->ok ? tls::to_string(verdict->trust) : "refused";
                }
                log::tls_established(slog.tags(), tls_facts.version, tls_facts.cipher, tls_facts.bits);
                core.tls_started(tls_facts);
                if (verdict) {
                    log::tls_policy_checked(slog.tags(), profile::to_string(tls_pol.level), verdict->ok,
                                            verdict->reason);
                    if (!verdict->ok) core.refuse_commands(smtp::make_reply(554, "5.7.0", verdict->reason));
                }
                break;
            }
            case smtp::event::message: {
                const smtp::transaction& t = core.current();
                const auto now = std::chrono::system_clock::now();
                queue::envelope env;
                env.id = ctx.spool->new_id();
                env.arrived = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
                env.sender = t.sender.null ? std::string() : t.sender.box.str();
                env.recipients.reserve(t.recipients.size());
                for (const auto& r : t.recipients) env.recipients.push_back(r.str());
                env.eight_bit = t.body == smtp::body_type::eight_bit_mime;
                env.smtputf8 = t.smtputf8;
                env.client_ip = client_ip;
                env.helo = t.helo;
                env.tls = tls_summary(core.tls());
                message::received_facts rf;
                rf.helo = t.helo;
                // Forward-confirmed only (an unconfirmed PTR name is no name); not looked up
                // unless a profile names hosts: then "unknown".
                if (facts.client_name) rf.client_name = *facts.client_name;
                rf.client_ip = client_ip;
                rf.by = cfg.hostname;
                rf.id = env.id;
                rf.esmtp = t.esmtp;
                rf.smtputf8 = t.smtputf8;
                rf.tls = core.tls() ? &*core.tls() : nullptr;
                if (t.recipients.size() == 1) rf.for_rcpt = env.recipients[0];
                rf.unix_time = env.arrived;
                const std::string received = message::received_header(rf);
                const std::string& body = core.body();
                env.size = received.size() + body.size();
                const bool hold = cfg.queue.hold;
                const auto where = hold ? queue::area::hold : queue::area::active;
                std::optional<queue::spool_failure> failure;
                if (ctx.committer) {  // spool.sync = "filesystem": batched on the committer thread
                    std::vector<std::string_view> parts;
                    parts.push_back(received);
                    parts.push_back(body);
                    failure = co_await runtime::async_commit(*ctx.committer, env, std::move(parts), where,
                                                             asio::use_awaitable);
                } else {
                    failure = co_await runtime::run_blocking(*ctx.disk_pool, [&] {
                        return ctx.spool->commit(env, {received, body}, where);
                    });
                }
                if (failure) {
                    log::spool_error(env.id, failure->message);
                    // SPEC: full disk -> 452 4.3.1 (a quota, or a file-size limit, likewise);
                    // any other spool failure is also temporary.
                    if (failure->errnum == ENOSPC || failure->errnum == EDQUOT || failure->errnum == EFBIG)
                        core.message_done(smtp::make_reply(452, "4.3.1", "Error: insufficient system storage"));
                    else
                        core.message_done(smtp::make_reply(451, "4.3.0", "Error: queue file write error"));
                    break;
                }
                ++messages;
                log::message_queued(slog.tags(), env.id, env.sender, env.recipients.size(), env.size,
                                    core.tls() ? core.tls()->version : "", core.tls() ? core.tls()->cipher : "", hold);
                if (!hold && ctx.runner) {
                    // Handed over in memory (before message_done() clears the body): the first
                    // delivery pass does not read back what was just written (the page cache
                    // has it, but a disk-pool round trip and the file's system calls cost more
                    // than this copy).
                    queue::loaded_message fresh;
                    fresh.data.reserve(received.size() + body.size());
                    fresh.data.append(received).append(body);
                    fresh.env = env;
                    asio::post(ctx.main, [runner = ctx.runner, m = std::move(fresh)]() mutable {
                        runner->submit(std::move(m));
                    });
                }
                core.message_done(smtp::make_reply(250, "2.0.0", "Ok: queued as " + env.id));
                break;
            }
            case smtp::event::close: {
                out = core.take_output();
                // After QUIT on TLS the reply leaves with the close_notify below (one segment).
                const std::size_t staged =
                    (conn->tls && !conn->timed_out && reason == "quit") ? conn->stage(out) : 0;
                co_await conn->write(std::string_view(out).substr(staged), std::chrono::seconds(10));
                done = true;
                break;
            }
        }
    }
    // The SMTP session is over: its place goes back now, before the TLS close_notify exchange
    // (up to 2 s for a client that never answers it) and the close, so that a client
    // reconnecting as soon as it has the 221 (or sees the close) finds it free.
    place.release();
    // ... but the drain at SIGTERM still waits for it to close and to log that it has.
    struct closing_count {
        std::shared_ptr<std::atomic<unsigned>> n;
        explicit closing_count(std::shared_ptr<std::atomic<unsigned>> c) : n(std::move(c)) { ++*n; }
        ~closing_count() { --*n; }
    } still_closing(ctx.closing);
    if (conn->tls && !conn->timed_out && (reason == "quit" || reason == "shutdown")) {
        conn->arm(std::chrono::seconds(2));
        co_await conn->tls->async_shutdown(tok);
        conn->disarm();
    }
    conn->shutdown();
    log::connection_closed(slog.tags(), reason, messages, core.error_count());
}

namespace {

asio::awaitable<void> refuse(tcp::socket s, std::string reply) {
    // The timer's handler shares the socket: should the timer expire just as the write
    // completes, its handler may run after this frame is gone (cancel() cannot recall it).
    auto sock = std::make_shared<tcp::socket>(std::move(s));
    asio::steady_timer t(sock->get_executor());
    t.expires_after(std::chrono::seconds(5));
    t.async_wait([sock](asio::error_code ec) {
        asio::error_code ig;
        if (!ec) sock->close(ig);
    });
    co_await asio::async_write(*sock, asio::buffer(reply), tok);
    t.cancel();
    asio::error_code ig;
    sock->shutdown(tcp::socket::shutdown_both, ig);
    sock->close(ig);
}

}  // namespace

asio::awaitable<void> accept_loop(context& ctx, tcp::acceptor& acceptor) {
    asio::error_code lec;
    const unsigned short local_port = acceptor.local_endpoint(lec).port();
    for (;;) {
        // The connection is accepted straight onto the session thread policy::loop_choice
        // picks (the first one not busy).
        const asio::any_io_executor session_ex =
            ctx.workers.empty() ? acceptor.get_executor()
                                : asio::any_io_executor(ctx.workers[ctx.loops.pick() % ctx.workers.size()]->get_executor());
        tcp::endpoint peer;  // from accept(2) itself: no getpeername(2) per connection
        auto [ec, sock] = co_await acceptor.async_accept(session_ex, peer, tok);
        if (ec) {
            if (ec == asio::error::operation_aborted || ctx.draining || !acceptor.is_open()) co_return;
            log::warning("accept", ec.message());
            // EMFILE and friends: back off a little instead of spinning.
            asio::steady_timer t(acceptor.get_executor());
            t.expires_after(std::chrono::milliseconds(100));
            co_await t.async_wait(tok);
            continue;
        }
        asio::error_code ig;
        sock.set_option(tcp::no_delay(true), ig);
        const std::string ip = peer.address().to_string();
        const config::config& cfg = *ctx.current->cfg;
        const auto ex = sock.get_executor();
        const auto admitted = ctx.admitted.admit(ip, cfg.server.max_connections, cfg.server.max_connections_per_ip);
        if (admitted != policy::admission::verdict::admitted) {
            const bool per_ip = admitted == policy::admission::verdict::too_many_from_ip;
            log::connection_refused(ip, per_ip ? "too many connections from this address" : "too many connections");
            asio::co_spawn(ex,
                           refuse(std::move(sock),
                                  per_ip ? fmt::format("421 4.7.0 {} Error: too many connections from {}\r\n",
                                                       cfg.hostname, ip)
                                         : fmt::format("421 4.7.0 {} Error: too many connections\r\n", cfg.hostname)),
                           asio::detached);
            continue;
        }
        std::string sid = fmt::format("{:X}", ctx.next_session++);
        // The session gives its place back on its own thread (thread-safe), or its frame does.
        asio::co_spawn(ex,
                       run_session(ctx, ctx.current, std::move(sock), peer, local_port, std::move(sid),
                                   policy::admission::slot(ctx.admitted, ip)),
                       [](std::exception_ptr e) {
                           if (!e) return;
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::exception& ex) {
                               log::error("session", ex.what());
                           }
                       });
    }
}

}  // namespace postern::server
