// runtime/queue_runner.cpp - per-message delivery passes and retry timers.
#include "runtime/queue_runner.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "delivery/maildir.hpp"
#include "log/log.hpp"
#include "runtime/blocking.hpp"

namespace postern::runtime {
namespace {

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::pair<std::string_view, std::string_view> split_address(std::string_view a) {
    auto at = a.rfind('@');
    if (at == std::string_view::npos) return {a, {}};
    return {a.substr(0, at), a.substr(at + 1)};
}

std::string lower(std::string_view s) {
    std::string o(s);
    for (char& c : o)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return o;
}

}  // namespace

std::optional<std::int64_t> attempt_message(queue::spool& sp, const config::config& cfg, const std::string& id,
                                            std::int64_t now) {
    auto msg = sp.load(id, queue::area::active);
    if (!msg) {
        log::spool_error(id, msg.error_message());
        return std::nullopt;  // gone (deleted, held) or unreadable: nothing to schedule
    }
    const queue::envelope& env = msg->env;
    auto st_r = sp.read_state(id, env.recipients.size());
    std::vector<queue::rcpt_state> st = st_r ? std::move(*st_r) : std::vector<queue::rcpt_state>(env.recipients.size());
    bool changed = false;
    std::optional<std::int64_t> next;
    for (std::size_t i = 0; i < env.recipients.size(); ++i) {
        queue::rcpt_state& s = st[i];
        if (s.status == queue::rcpt_status::sent || s.status == queue::rcpt_status::bounced) continue;
        if (s.next_attempt > now) {
            next = next ? std::min(*next, s.next_attempt) : s.next_attempt;
            continue;
        }
        const std::string& rcpt = env.recipients[i];
        auto [local, domain_raw] = split_address(rcpt);
        std::string domain = domain_raw.empty() ? cfg.hostname : lower(domain_raw);
        const config::domain_config* d = cfg.find_domain(domain);
        delivery::outcome out;
        std::string relay;
        if (d && !d->maildir.empty()) {
            relay = "maildir";
            std::string prefix = fmt::format("Return-Path: <{}>\r\nDelivered-To: {}\r\n", env.sender, rcpt);
            out = delivery::deliver_maildir(d->maildir, local, prefix, msg->content(), cfg.hostname);
        } else {
            relay = "none";
            out = {delivery::outcome::kind::transient, "4.3.2",
                   "outbound SMTP delivery is not available in this version"};
        }
        ++s.attempts;
        changed = true;
        s.last_reply = fmt::format("{} {}", out.dsn, out.reason);
        const char* result = "sent";
        switch (out.result) {
            case delivery::outcome::kind::sent: s.status = queue::rcpt_status::sent; break;
            case delivery::outcome::kind::permanent:
                s.status = queue::rcpt_status::bounced;
                result = "bounced";
                break;
            case delivery::outcome::kind::transient: {
                const auto& sched = cfg.queue.retry_schedule;
                auto delay = sched[std::min<std::size_t>(s.attempts - 1, sched.size() - 1)];
                s.status = queue::rcpt_status::deferred;
                s.next_attempt = now + delay.count();
                next = next ? std::min(*next, s.next_attempt) : s.next_attempt;
                result = "deferred";
                break;
            }
        }
        log::delivery({.id = id, .recipient = rcpt, .relay = relay, .profile = "", .tls = "none",
                       .tls_version = "", .tls_cipher = "", .result = result, .dsn = out.dsn,
                       .reason = out.reason, .delay_s = static_cast<double>(now - env.arrived),
                       .attempt = s.attempts});
    }
    if (!next) {
        sp.remove(id, queue::area::active);
        return std::nullopt;
    }
    if (changed) sp.write_state(id, st);
    return next;
}

queue_runner::queue_runner(asio::io_context& io, asio::thread_pool& pool, queue::spool& sp, config_source cfg)
    : io_(io), pool_(pool), spool_(sp), cfg_(std::move(cfg)) {}

void queue_runner::submit(const std::string& id) {
    if (stopped_) return;
    if (active_.count(id)) {  // an attempt is running: run again right after it
        resubmit_.insert(id);
        return;
    }
    if (auto it = timers_.find(id); it != timers_.end()) {
        it->second->cancel();
        timers_.erase(it);
    }
    active_.insert(id);
    asio::co_spawn(io_, run(id), asio::detached);
}

asio::awaitable<void> queue_runner::run(std::string id) {
    auto cfg = cfg_();
    auto next = co_await run_blocking(pool_, [&] { return attempt_message(spool_, *cfg, id, unix_now()); });
    active_.erase(id);
    if (stopped_) co_return;
    if (resubmit_.erase(id)) {
        submit(id);
        co_return;
    }
    if (next) schedule(id, *next);
}

void queue_runner::schedule(const std::string& id, std::int64_t when) {
    auto timer = std::make_unique<asio::steady_timer>(io_);
    timer->expires_after(std::chrono::seconds(std::max<std::int64_t>(0, when - unix_now())));
    timer->async_wait([this, id](asio::error_code ec) {
        if (ec || stopped_) return;
        timers_.erase(id);
        submit(id);
    });
    timers_[id] = std::move(timer);
}

void queue_runner::recover() {
    for (const auto& id : spool_.list(queue::area::active)) submit(id);
}

void queue_runner::stop() {
    stopped_ = true;
    for (auto& [id, t] : timers_) t->cancel();
    timers_.clear();
}

}  // namespace postern::runtime
