// outbound/attempt.cpp - drive one outbound SMTP conversation per host until the message is
// handed over, refused, or every host has been tried. TLS decisions follow SPEC §1.1
// (opportunistic): STARTTLS whenever offered; a failed handshake defers the recipients
// (the queue waits tls.handshake_retry_delay); the second failure for the same message and
// host reconnects and delivers without TLS (tls=fallback). Mandatory TLS comes with profiles.
#include "outbound/attempt.hpp"

#include <arpa/inet.h>

#include <asio/connect.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <optional>
#include <random>

#include <fmt/format.h>

#include "delivery/outcome.hpp"
#include "runtime/connection.hpp"
#include "smtp/client_session.hpp"
#include "profile/policy.hpp"
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

bool is_ip_literal(const std::string& s) {
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

using connection = runtime::timed_connection;

enum class verdict { next_host, tls_failed, done, stale };  // stale: a reused connection died

struct conversation {
    verdict v = verdict::next_host;
    delivery::outcome why;  // for next_host / tls_failed
};

std::string relay_name(const std::string& host, const std::string& ip, std::uint16_t port) {
    return ip.find(':') != std::string::npos ? fmt::format("{}[{}]:{}", host, ip, port)
                                             : fmt::format("{}[{}]:{}", host, ip, port);
}

}  // namespace

deliverer::deliverer(dns::resolver& resolver, std::shared_ptr<const config::config> cfg,
                     std::shared_ptr<asio::ssl::context> client_tls, connection_cache* cache)
    : resolver_(resolver), cfg_(std::move(cfg)), tls_(std::move(client_tls)), cache_(cache) {}

namespace {

// One TCP connection to `ip`, one transaction. Fills res.results on `done`.
asio::awaitable<conversation> converse(const config::config& cfg, asio::ssl::context* tls_ctx,
                                       const attempt_request& req, const delivery::target_host& t,
                                       const std::string& ip, const profile::resolved_tls_policy& pol,
                                       bool try_tls, attempt_result& res, connection_cache* cache) {
    auto ex = co_await asio::this_coro::executor;
    const std::string relay = relay_name(t.name, ip, t.port);
    // A parked session is reused only under the same policy (profile and level) it met.
    const std::string cache_key = connection_cache::key(t.name, ip, t.port) + "|" + pol.profile + "|" +
                                  std::string(profile::to_string(pol.level));
    const bool mandatory = profile::requires_tls(pol.level);
    res.relay = relay;
    conversation out;
    res.tls = "none";
    res.tls_version.clear();
    res.tls_cipher.clear();

    std::shared_ptr<connection> conn;
    std::unique_ptr<smtp::client_session> session;
    const bool reused = cache != nullptr && try_tls &&
                        [&] {
                            auto p = cache->take(cache_key);
                            if (!p) return false;
                            conn = std::move(p->conn);
                            session = std::move(p->session);
                            res.tls = p->tls;
                            res.tls_version = p->tls_version;
                            res.tls_cipher = p->tls_cipher;
                            return true;
                        }();
    if (!reused) {
        asio::error_code ec;
        const auto addr = asio::ip::make_address(ip, ec);
        if (ec) {
            out.why = {delivery::outcome::kind::transient, "4.4.1", fmt::format("bad address {} for {}", ip, t.name)};
            co_return out;
        }
        conn = std::make_shared<connection>(ex);
        connection::watch(conn);
        conn->arm(connect_timeout);
        std::tie(ec) = co_await conn->sock.async_connect(tcp::endpoint(addr, t.port), tok);
        conn->disarm();
        if (ec) {
            conn->shutdown();
            out.why = {delivery::outcome::kind::transient, "4.4.1",
                       fmt::format("connect to {}: {}", relay, conn->timed_out ? "timed out" : ec.message())};
            co_return out;
        }
        asio::error_code ig;
        conn->sock.set_option(tcp::no_delay(true), ig);
        smtp::client_settings settings;
        settings.helo_name = cfg.hostname;
        session = std::make_unique<smtp::client_session>(settings);
    }
    smtp::client_session& c = *session;
    smtp::outgoing_message m;
    m.sender = req.env->sender;
    for (auto i : req.recipients) m.recipients.push_back(req.env->recipients[i]);
    m.eight_bit = req.env->eight_bit;
    m.smtputf8 = req.env->smtputf8;
    m.size = req.content.size();
    m.content = req.content;
    bool sent = false, finished = false;

    const auto command_timeout = cfg.delivery.command_timeout;
    std::vector<char> buf(16384);
    std::string pending;  // kept alive across the write (no temporary in a co_await)
    auto write_out = [&]() -> asio::awaitable<asio::error_code> {
        pending = c.take_output();
        co_return co_await conn->write(pending, command_timeout);
    };
    // RFC 5321 4.5.3.2: the limits are per reply, not per read. A reply's clock starts when
    // a command has been written or the previous reply is complete; a server that trickles
    // a reply (a byte, or a "250-" line, at a time) is given up when it runs out.
    auto reply_deadline = std::chrono::steady_clock::now() + command_timeout;
    auto replies_seen = c.replies_received();

    for (;;) {
        switch (c.next()) {
            case smtp::client_event::need_input: {
                const bool wrote = c.has_output();
                if (auto wec = co_await write_out()) {
                    if (conn->timed_out) c.timeout();
                    else c.feed_eof();
                    break;
                }
                if (wrote || c.replies_received() != replies_seen) {
                    replies_seen = c.replies_received();
                    reply_deadline = std::chrono::steady_clock::now() +
                                     (c.state() == smtp::client_state::content ? cfg.delivery.final_timeout
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
                    if (conn->timed_out) c.timeout();
                    else c.feed_eof();
                } else {
                    c.feed(std::string_view(buf.data(), n));
                }
                break;
            }
            case smtp::client_event::ehlo_done:
                if (mandatory && !c.tls_active() && (!c.caps().starttls || !tls_ctx)) {
                    // SPEC §1.2: TLS required but not offered: no mail on this connection, QUIT.
                    c.quit();
                    co_await write_out();
                    conn->shutdown();
                    out.v = verdict::next_host;
                    out.why = {delivery::outcome::kind::transient, "4.7.4",
                               fmt::format("TLS required but not offered by {}", relay)};
                    co_return out;
                }
                if (try_tls && tls_ctx && c.caps().starttls && !c.tls_active()) c.starttls();
                else c.proceed();
                break;
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
                res.tls_version = facts.version;
                res.tls_cipher = facts.cipher;
                if (mandatory) {
                    // The one enforcement point (STYLE: policy decides, verify checks).
                    auto v = tls::evaluate(ssl, pol, /*is_server_side=*/false);
                    res.tls = tls::to_string(v.trust);
                    if (!v.ok) {
                        // QUIT inside the rejected TLS session (nothing else is ever sent on it).
                        co_await conn->write("QUIT\r\n", std::chrono::seconds(10));
                        conn->shutdown();
                        out.v = verdict::next_host;
                        out.why = {delivery::outcome::kind::transient, v.dsn.empty() ? "4.7.5" : v.dsn,
                                   fmt::format("{} ({})", v.reason, relay)};
                        co_return out;
                    }
                } else {
                    auto check = tls::check_peer(ssl, pol.names.empty() ? std::vector<std::string>{t.name, req.domain}
                                                                        : pol.names);
                    res.tls = tls::to_string(check.trust);
                }
                c.tls_started();
                break;
            }
            case smtp::client_event::ready:
                if (!sent) {
                    c.send_message(m);
                    sent = true;
                } else if (cache && try_tls && c.reusable()) {
                    // Park the session for the next message to this host (SPEC §3.4).
                    cache->put(cache_key, {conn, std::move(session), res.tls, res.tls_version, res.tls_cipher});
                    out.v = verdict::done;
                    co_return out;
                } else {
                    c.quit();
                }
                break;
            case smtp::client_event::message_done: {
                const auto& tr = c.result();
                res.results.clear();
                for (std::size_t k = 0; k < req.recipients.size(); ++k)
                    res.results.push_back({req.recipients[k], delivery::classify_recipient(tr, k)});
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
                const bool in_tls_setup =
                    f.what == smtp::client_failure::kind::starttls_refused ||
                    c.state() == smtp::client_state::starttls || c.state() == smtp::client_state::tls_handshake;
                auto o = delivery::classify_failure(f, relay);
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
                if (reused && !finished && !c.result().mail) {  // the parked connection went stale
                    out.v = verdict::stale;
                    co_return out;
                }
                if (!sent) {  // never got as far as MAIL: another host may do better
                    out.v = verdict::next_host;
                    out.why = o;
                    co_return out;
                }
                res.results.clear();
                for (auto i : req.recipients) res.results.push_back({i, o});
                out.v = verdict::done;
                co_return out;
            }
            case smtp::client_event::closed:
                conn->shutdown();
                if (reused && !finished && !c.result().mail) {
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

}  // namespace

asio::awaitable<attempt_result> deliverer::deliver(const attempt_request& req) {
    attempt_result res;
    res.relay = "none";
    res.tls = "none";
    auto fail_all = [&](delivery::outcome o) {
        res.results.clear();
        for (auto i : req.recipients) res.results.push_back({i, o});
    };
    const config::config& cfg = *cfg_;

    std::vector<delivery::target_host> targets;
    if (req.where.how == delivery::route::kind::static_hosts) {
        for (const auto& hp : req.where.hosts) targets.push_back({hp.host, 0, hp.port});
    } else {
        auto ans = co_await resolver_.mx(req.where.domain);
        static thread_local std::mt19937 rng{std::random_device{}()};
        auto plan = delivery::plan_mx(ans, req.where.domain, req.where.port, rng);
        switch (plan.verdict) {
            case delivery::mx_verdict::null_mx:
                fail_all({delivery::outcome::kind::permanent, "5.1.10",
                          fmt::format("domain {} does not accept mail (null MX, RFC 7505)", req.where.domain)});
                co_return res;
            case delivery::mx_verdict::no_such_domain:
                fail_all({delivery::outcome::kind::permanent, "5.1.2",
                          fmt::format("domain {} does not exist", req.where.domain)});
                co_return res;
            case delivery::mx_verdict::temporary:
                fail_all({delivery::outcome::kind::transient, "4.4.3",
                          fmt::format("MX lookup for {} failed: {}", req.where.domain, plan.reason)});
                co_return res;
            case delivery::mx_verdict::ok:
            case delivery::mx_verdict::implicit:
                targets = plan.hosts;
                break;
        }
    }

    delivery::outcome last{delivery::outcome::kind::transient, "4.4.1", "no host to deliver to"};
    for (const auto& t : targets) {
        std::vector<std::string> addrs;
        if (is_ip_literal(t.name)) {
            addrs.push_back(t.name);
        } else {
            auto a = co_await resolver_.addresses(t.name);
            if (a.status != dns::dns_status::ok || a.addresses.empty()) {
                last = {delivery::outcome::kind::transient, "4.4.3",
                        fmt::format("cannot find an address for {}{}", t.name, a.error.empty() ? "" : ": " + a.error)};
                continue;
            }
            addrs = a.addresses;
        }
        for (const auto& ip : addrs) {
            // The profile for this destination (recipient domain -> host IP -> host name -> *),
            // resolved as a value; this file only enforces it.
            const auto pol = profile::resolve_outbound(cfg, {req.domain, ip, t.name});
            res.profile = pol.profile;
            const bool try_tls = pol.level != profile::tls_level::none;
            auto conv = co_await converse(cfg, tls_.get(), req, t, ip, pol, try_tls, res, cache_);
            if (conv.v == verdict::stale)  // a parked connection had died: once more, fresh
                conv = co_await converse(cfg, tls_.get(), req, t, ip, pol, try_tls, res, nullptr);
            if (conv.v == verdict::tls_failed) {
                res.tls_failed_hosts.insert(t.name);
                if (req.tls_failed_hosts.count(t.name)) {
                    // SPEC §1.1: the second failed handshake for this message and host:
                    // reconnect and deliver without TLS in this same attempt.
                    conv = co_await converse(cfg, tls_.get(), req, t, ip, pol, /*try_tls=*/false, res, nullptr);
                    if (conv.v == verdict::done) {
                        res.tls = "fallback";
                        co_return res;
                    }
                    last = conv.why;
                    continue;
                }
                // First failure: nothing is sent; defer, next attempt after handshake_retry_delay.
                res.tls_handshake_failed = true;
                res.tls = "none";
                fail_all(conv.why);
                co_return res;
            }
            if (conv.v == verdict::done) co_return res;
            last = conv.why;
        }
    }
    fail_all(last);
    co_return res;
}

}  // namespace postern::outbound
