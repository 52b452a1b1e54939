// runtime/queue_runner.cpp - delivery passes (message slots and their byte budget, delivery
// slots, state recorded between destinations), retry timers, expiry, bounces, queue control.
#include "runtime/queue_runner.hpp"

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "delivery/maildir.hpp"
#include "delivery/route.hpp"
#include "log/log.hpp"
#include "message/dsn.hpp"
#include "message/headers.hpp"
#include "outbound/attempt.hpp"
#include "profile/policy.hpp"
#include "runtime/blocking.hpp"

namespace postern::runtime {
namespace {

constexpr unsigned max_outbound = 100;          // concurrent outbound attempts in total
constexpr unsigned max_outbound_per_dest = 20;  // ... and per destination domain

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::int64_t unix_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Next-attempt times are stored in whole seconds: round the base up, so a retry is never
// earlier than its delay (handshake_retry_delay is a minimum, SPEC §1.1).
std::int64_t unix_now_ceil() { return (unix_now_ms() + 999) / 1000; }

std::pair<std::string, std::string> split_address(std::string_view a) {
    auto at = a.rfind('@');
    if (at == std::string_view::npos) return {std::string(a), {}};
    return {std::string(a.substr(0, at)), std::string(a.substr(at + 1))};
}

// What one pass over a message knows and decides.
struct pass_state {
    bool loaded = false;
    std::string error;
    bool gone = false;     // not loaded because queue/ID is not there (held, deleted, delivered)
    std::string damaged;   // state/ID did not parse: every recipient taken as queued
    queue::loaded_message msg;
    std::vector<queue::rcpt_state> st;
    std::set<std::string> tls_failed;
};

struct recorded {
    std::size_t index;
    delivery::outcome out;
    std::string relay, tls, proto, cipher;
    std::int64_t tls_retry_at = 0;  // outbound::recipient_result::tls_retry_at
    std::string profile;
    bool logged = false;  // recorded as sent (and logged) before the pass ended
};

}  // namespace

queue_runner::queue_runner(asio::io_context& io, asio::thread_pool& pool, queue::spool& sp, dns::resolver& resolver,
                           settings_source src, std::size_t active_limit)
    : io_(io),
      pool_(pool),
      spool_(sp),
      resolver_(resolver),
      src_(std::move(src)),
      active_limit_(std::max<std::size_t>(1, active_limit)),
      parking_(active_limit_ / 10, active_limit_ / 2,
               [this](const std::string& id, bool force) {
                   active_.insert(id);
                   start(id, force);
               }),
      cache_(io.get_executor()) {}

void queue_runner::submit(queue::loaded_message fresh) {
    std::string id = fresh.env.id;
    if (stopped_) return;
    // Between the commit and this hand-over (a directory fsync and two event-loop hops later)
    // the admin may already have acted on the message, on this loop: `queue retry` or a
    // hold + release started a pass from the spool (the disk path decides, as for any id it
    // knows), `queue hold` or `delete` took queue/ID away (nothing to deliver).
    if (active_.count(id) || timers_.count(id)) return submit(id);
    if (!spool_.exists(id, queue::area::active)) return;
    active_.insert(id);
    parking_.forget(id);
    // Already in memory, it counts against active_limit and the byte budget; but a session's
    // hand-over never waits: at either limit (or behind passes waiting for a slot) the copy is
    // dropped, and the pass loads the message from the spool in its turn.
    const std::uint64_t size = fresh.data.size();
    if (!waiting_.empty() || !fits(size)) return start(id, /*force=*/false);
    launch(std::move(id), /*force=*/false, size, std::move(fresh));
}

void queue_runner::submit(const std::string& id) {
    if (stopped_) return;
    if (waiting_force_.count(id)) return;  // its pass has not read anything yet
    if (active_.count(id)) {  // a pass is running: run again right after it
        resubmit_[id] = resubmit_[id] || false;
        return;
    }
    if (auto it = timers_.find(id); it != timers_.end()) {
        it->second->cancel();
        timers_.erase(it);
    }
    active_.insert(id);
    start(id, /*force=*/false);
}

void queue_runner::start(const std::string& id, bool force) {
    if (stopped_) {
        active_.erase(id);
        return;
    }
    parking_.forget(id);  // started otherwise (`queue retry`, a release), or by parking_ itself
    // The message slot (and the message's bytes) come first, before the message is read and
    // before any delivery slot (acquire()): a pass waiting for a delivery slot holds its
    // message, never the reverse, so the limits cannot wait on each other. The size is the
    // queue file's (a stat(2) here, only for a pass that could start).
    if (loaded_ < active_limit_ && waiting_.empty()) {
        const std::uint64_t size = spool_.file_size(id, queue::area::active);
        if (fits(size)) return launch(id, force, size);
    }
    waiting_.push_back(id);
    waiting_force_[id] = force;
}

bool queue_runner::fits(std::uint64_t size) const {
    if (loaded_ >= active_limit_) return false;
    return held_bytes_ == 0 || held_bytes_ + size <= src_().cfg->server.max_buffered_size;
}

void queue_runner::launch(std::string id, bool force, std::uint64_t size, std::optional<queue::loaded_message> fresh) {
    ++loaded_;
    held_bytes_ += size;
    const std::uint64_t pass = ++passes_launched_;
    held_[id] = holding{size, pass};
    auto body = run(id, force, std::move(fresh));
    asio::co_spawn(io_, std::move(body), [this, id = std::move(id), pass](std::exception_ptr e) {
        if (e) pass_threw(id, pass, e);
    });
}

void queue_runner::pass_threw(const std::string& id, std::uint64_t pass, std::exception_ptr e) {
    std::string what = "unknown exception";
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        what = x.what();
    } catch (...) {
    }
    const auto it = held_.find(id);
    if (it == held_.end() || it->second.pass != pass) {  // it had ended its pass already
        log::spool_error(id, fmt::format("delivery pass failed after it ended: {}", what));
        return;
    }
    std::int64_t delay = 60;
    try {
        delay = src_().cfg->queue.retry_schedule.front().count();
    } catch (...) {
    }
    log::spool_error(id, fmt::format("delivery pass failed: {}; tried again in {}s", what, delay));
    end_pass(id);
    if (!stopped_) schedule(id, unix_now_ceil() + delay);
}

void queue_runner::recount(const std::string& id, std::uint64_t size) {
    auto& h = held_[id].bytes;
    held_bytes_ = held_bytes_ - h + size;
    h = size;
}

void queue_runner::end_pass(const std::string& id) {
    active_.erase(id);
    --loaded_;
    if (auto it = held_.find(id); it != held_.end()) {
        held_bytes_ -= it->second.bytes;
        held_.erase(it);
    }
    parking_.pass_ended(id);  // with this pass's slot free: a message it starts may take it
    if (stopped_) return;
    // In arrival order: a large message at the head waits for room, and what is behind it
    // waits too (it is not overtaken for good by a stream of small ones).
    while (!waiting_.empty()) {
        const std::uint64_t size = spool_.file_size(waiting_.front(), queue::area::active);
        if (!fits(size)) break;
        std::string next = std::move(waiting_.front());
        waiting_.pop_front();
        const auto it = waiting_force_.find(next);
        const bool force = it->second;
        waiting_force_.erase(it);
        launch(std::move(next), force, size);
    }
}

bool queue_runner::slot_free(const std::string& dest) const {
    const auto it = busy_per_dest_.find(dest);
    return busy_ < max_outbound && (it == busy_per_dest_.end() || it->second < max_outbound_per_dest);
}

asio::awaitable<bool> queue_runner::acquire(const std::string& dest) {
    bool waited = false;  // counted by parking_ meanwhile
    while (!slot_free(dest) && !stopped_) {
        if (!waited) parking_.wait_begins(dest);
        waited = true;
        asio::steady_timer t(io_, asio::steady_timer::time_point::max());
        waiters_.push_back({&t, &dest});
        co_await t.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        std::erase_if(waiters_, [&t](const waiter& w) { return w.timer == &t; });
    }
    if (waited) parking_.wait_ends(dest);
    // After stop() no new transaction starts: the drain waits only for those under way.
    if (stopped_) co_return false;
    ++busy_;
    ++busy_per_dest_[dest];
    co_return true;
}

void queue_runner::release_slot(const std::string& dest) {
    --busy_;
    if (--busy_per_dest_[dest] == 0) busy_per_dest_.erase(dest);
    parking_.slot_released(dest);  // a parked message may start when too few are on their way
    // One slot came free: wake the longest-waiting delivery that can use it, and only that one.
    // (Waking every waiter made each finished delivery cost a wake-up per queued message: with
    // a backlog, relaying with TLS took 3.8 ms of CPU per message instead of ~2; issue 6.)
    for (auto& w : waiters_) {
        if (w.woken || !slot_free(*w.dest)) continue;
        w.woken = true;
        w.timer->cancel();
        break;
    }
}

asio::awaitable<void> queue_runner::run(std::string id, bool force, std::optional<queue::loaded_message> fresh) {
    const settings s = src_();
    const config::config& cfg = *s.cfg;
    // A message handed over by the session that committed it: no state file yet, every
    // recipient queued (issue 6: no disk-pool round trip and four system calls fewer per
    // relayed message).
    bool state_written = !fresh;
    pass_state ps;
    if (fresh) {
        ps.st.resize(fresh->env.recipients.size());
        ps.msg = std::move(*fresh);
        ps.loaded = true;
    } else {
        // A copy: the loop may drop the entry (queue delete) while the disk thread reads it.
        std::optional<unsaved_state> unsaved;
        if (auto it = unsaved_.find(id); it != unsaved_.end()) unsaved = it->second;
        bool unsaved_written = false;
        ps = co_await run_blocking(pool_, [&] {
            pass_state p;
            auto m = spool_.load(id, queue::area::active);
            if (!m) {
                p.error = m.error_message();
                p.gone = !spool_.exists(id, queue::area::active);
                return p;
            }
            p.msg = std::move(*m);
            if (unsaved && unsaved->st.size() == p.msg.env.recipients.size()) {
                // The last pass's outcome, not on disk yet: recorded before anything is attempted.
                if (auto f = spool_.write_state(id, unsaved->st, unsaved->tls_failed)) {
                    p.error = fmt::format("recipients' state of the last attempt not saved: {}", f->message);
                    return p;
                }
                unsaved_written = true;
                p.st = unsaved->st;
                p.tls_failed = unsaved->tls_failed;
                p.loaded = true;
                return p;
            }
            auto st = spool_.read_state(id, p.msg.env.recipients.size(), &p.tls_failed, &p.damaged);
            if (!st) {
                p.error = st.error_message();
                return p;
            }
            p.st = std::move(*st);
            p.loaded = true;
            return p;
        });
        // Let in at its queue file's size: what it holds is what was read.
        recount(id, ps.msg.data.size());
        // Written now, or no copy left (deleted): a held copy still needs its newer state.
        if (unsaved_written || (ps.gone && !spool_.exists(id, queue::area::hold) &&
                                !spool_.exists(id, queue::area::active)))
            unsaved_.erase(id);
    }
    if (!ps.loaded) {
        if (ps.gone) {  // deleted or held meanwhile (or delivered by another pass): nothing to schedule
            unreadable_.erase(id);
            // ... unless it came back (a hold, then a release, before this result was handled):
            // the release asked for a pass while this one ran, and that pass must happen.
            std::optional<bool> again;
            if (auto it = resubmit_.find(id); it != resubmit_.end()) {
                if (spool_.exists(id, queue::area::active)) again = it->second;
                resubmit_.erase(it);
            }
            end_pass(id);
            if (again && !stopped_) {
                active_.insert(id);
                start(id, *again);
            }
            co_return;
        }
        // Unreadable for now (EMFILE, EIO, a damaged queue file): that is not a fact about the
        // message. Nothing is attempted (a state file that cannot be read is not "nothing sent
        // yet": that would deliver again and bounce twice), the files stay as they are (for the
        // admin, if it lasts), and the message is tried again after the first retry step.
        const std::int64_t delay = cfg.queue.retry_schedule.front().count();
        if (unreadable_.insert(id).second)
            log::spool_error(id, fmt::format("{}; nothing attempted, read again every {}s", ps.error, delay));
        end_pass(id);
        if (stopped_) co_return;
        if (auto it = resubmit_.find(id); it != resubmit_.end()) {  // `queue retry` meanwhile: once more now
            const bool f = it->second;
            resubmit_.erase(it);
            active_.insert(id);
            start(id, f);
        } else {
            schedule(id, unix_now_ceil() + delay);
        }
        co_return;
    }
    unreadable_.erase(id);
    if (!ps.damaged.empty())  // torn by a crash (state writes are not fsynced): repeat, never lose
        log::spool_error(id, ps.damaged + "; every recipient is attempted again");
    const queue::envelope& env = ps.msg.env;
    const std::string_view content = ps.msg.content();
    std::int64_t now = unix_now();
    // No retry is ever due further ahead than the longest delay there is: a time beyond that was
    // set by a clock that has since been stepped back (a VM restored, an RTC fixed by NTP),
    // and would leave the message neither retried nor expired until then.
    const std::int64_t latest = now + std::max(cfg.queue.retry_schedule.back().count(),
                                               cfg.tls.handshake_retry_delay.count());
    for (auto& r : ps.st)
        if (r.next_attempt > latest) r.next_attempt = latest;

    // Which recipients are due, grouped by destination (one delivery attempt per group).
    std::vector<recorded> done;
    // Recipients that go to the same place share one attempt (SPEC §3.4): the same static
    // hosts (relay_to, [[route]], smarthost) whatever their domains, or the same domain for MX
    // routing (hosts are only known after the MX lookup). At each host the attempt resolves
    // every recipient's own policy and splits the transaction where they differ
    // (outbound/attempt.cpp, profile/requirements.hpp).
    struct group {
        delivery::route where;
        std::string domain;  // first recipient's domain (the MX lookup, log lines)
        std::vector<std::size_t> idx;
    };
    std::map<std::string, group> groups;
    const bool loop = message::count_received(content) > message::default_max_received;
    for (std::size_t i = 0; i < env.recipients.size(); ++i) {
        const auto& r = ps.st[i];
        if (r.status == queue::rcpt_status::sent || r.status == queue::rcpt_status::bounced) continue;
        if (!force && r.next_attempt > now) continue;
        if (loop) {  // RFC 5321 6.3
            done.push_back({i, {delivery::outcome::kind::permanent, "5.4.6",
                                "hop count exceeded - possible mail loop"}, "none", "none", "", "", 0, ""});
            continue;
        }
        auto [local, dom] = split_address(env.recipients[i]);
        // The route's domain is the A-label form (RFC 6531 3.2): profiles, routes, MX lookups
        // and certificate names all use it; the recipient keeps its address as written.
        delivery::route where = delivery::decide_route(cfg, dom.empty() ? cfg.hostname : dom);
        const std::string domain = where.domain;
        std::string key = "domain " + domain;
        if (where.how == delivery::route::kind::static_hosts) {
            // Same hosts and the same recipient-domain profile share an attempt.
            const auto pol = profile::resolve_outbound(cfg, {domain, std::nullopt, std::nullopt});
            key = "profile " + pol.profile + " hosts";
            for (const auto& h : where.hosts) key += " " + h.to_string();
            // When the certificate must carry given names and those depend on the recipient
            // domain (no peer_names: the host or the domain, SPEC §1.3), each domain is checked
            // on its own connection, not under the first recipient's domain.
            if (profile::requires_name_match(pol.level)) key += " names " + fmt::format("{}", fmt::join(pol.names, " "));
        }
        auto [it, fresh] = groups.try_emplace(key);
        if (fresh) {
            it->second.where = std::move(where);
            it->second.domain = domain;
        }
        it->second.idx.push_back(i);
    }

    // SPEC §1.1 counts failed handshakes per attempt: every group of this pass sees the hosts
    // that failed in earlier passes, not the ones another group of this same pass just failed
    // with (two domains with one MX host would otherwise fall back to plaintext at once). Each
    // with the time of its first failure: the fallback waits handshake_retry_delay from then,
    // whatever brought this pass forward (`queue retry`, another group's earlier retry).
    const queue::tls_failures tls_failed_before = queue::tls_failure_times(ps.tls_failed, unix_now());
    // ps.st plus the recipients sent so far in this pass, once a group has sent some and
    // another group follows (see below).
    std::optional<std::vector<queue::rcpt_state>> sent_so_far;
    std::set<std::size_t> logged_early;  // recipients recorded as sent (and logged) before the end
    // Records `sent` (entries with result sent) in state/ID now and logs them, so that a crash,
    // a kill or a restart before the end of the pass does not deliver them again. A failed write
    // is left to the end of the pass (until then a crash repeats these deliveries).
    auto record_now = [&](std::vector<recorded*> sent) -> asio::awaitable<void> {
        bool any = false;
        for (recorded* d : sent) {
            if (!sent_so_far) sent_so_far = ps.st;
            auto& r = (*sent_so_far)[d->index];
            if (r.status == queue::rcpt_status::sent) continue;  // recorded earlier in this pass
            r.status = queue::rcpt_status::sent;
            r.next_attempt = 0;  // done: no attempt is due (queue list shows none)
            ++r.attempts;  // as the end of the pass counts it (from ps.st, once)
            r.last_reply = fmt::format("{} {}", d->out.dsn, d->out.reason);
            any = true;
        }
        if (!any) co_return;
        state_written = true;
        const auto f = co_await run_blocking(pool_, [&] { return spool_.write_state(id, *sent_so_far, ps.tls_failed); });
        if (f) {
            log::spool_error(id, f->message);
            unsaved_[id] = {*sent_so_far, ps.tls_failed};
            co_return;
        }
        unsaved_.erase(id);
        for (recorded* d : sent) {
            if (d->logged || logged_early.count(d->index)) continue;
            d->logged = true;
            logged_early.insert(d->index);
            log::delivery({.id = id, .recipient = env.recipients[d->index], .relay = d->relay, .profile = d->profile,
                           .tls = d->tls, .tls_version = d->proto, .tls_cipher = d->cipher, .result = "sent",
                           .dsn = d->out.dsn, .reason = d->out.reason,
                           .delay_s = queue::delay_seconds(env, unix_now_ms()),
                           .attempt = (*sent_so_far)[d->index].attempts});
        }
    };
    auto as_recorded = [](const outbound::recipient_result& r) {
        return recorded{r.index, r.out, r.via.relay, r.via.tls, r.via.tls_version, r.via.tls_cipher, r.tls_retry_at,
                        r.via.profile};
    };
    // `queue delete` or `queue hold` while this pass runs took queue/ID away: nothing more is
    // attempted (no later destination, no further host), what was done so far is recorded
    // below, and the other recipients stay as they were (queued for a release, or gone). On the
    // event loop, where those commands run; a hold and release meanwhile leave it queued.
    // queue/ID that cannot be looked up (EIO) counts as withdrawn: it only stops this pass
    // (nothing lost; the next pass reads the message again), logged once per pass.
    bool unknown_logged = false;
    auto withdrawn = [this, &id, &unknown_logged] {
        const queue::presence p = spool_.probe(id, queue::area::active);
        if (p.is == queue::presence::kind::unknown && !unknown_logged) {
            unknown_logged = true;
            log::spool_error(id, fmt::format("access {}: {}; this delivery pass stops here",
                                             spool_.path(id, queue::area::active), std::strerror(p.errnum)));
        }
        return p.is != queue::presence::kind::present;
    };
    // A reload (SIGHUP) while this pass runs: its groups were planned, and its policies would be
    // resolved, under the config it started with. No transaction starts under a superseded
    // config (a pin replaced, a destination made mandatory): what is left is not attempted
    // (it stays as it was) and a new pass takes it at once, under the new config.
    bool superseded = false;
    auto config_replaced = [this, &s, &superseded] {
        if (!superseded && src_().cfg != s.cfg) superseded = true;
        return superseded;
    };
    std::vector<std::string> park_on;  // the destinations this pass was parked on
    std::vector<std::size_t> parked_idx;  // the recipients left for the destinations parked on
    // Parked, the message waits for whichever of those destinations has room first; its other recipients
    // still wait for their own retry time (a greylisted one is not held for hours behind a
    // saturated destination, nor its expiry): the earliest of them gets a timer as usual.
    auto park_here = [&](bool parked_force) {
        parking_.park(id, park_on, parked_force);
        std::optional<std::int64_t> other;
        for (std::size_t i = 0; i < ps.st.size(); ++i) {
            const auto& r = ps.st[i];
            if (r.status != queue::rcpt_status::queued && r.status != queue::rcpt_status::deferred) continue;
            if (std::find(parked_idx.begin(), parked_idx.end(), i) != parked_idx.end()) continue;
            other = other ? std::min(*other, r.next_attempt) : r.next_attempt;
        }
        if (other) schedule(id, *other);
    };
    std::size_t groups_left = groups.size();
    for (auto& [key, g] : groups) {
        --groups_left;
        // After stop() no new transaction starts; what this pass did so far is recorded below.
        if (stopped_ || withdrawn() || config_replaced()) break;
        const delivery::route& where = g.where;
        const std::string& domain = g.domain;
        const std::vector<std::size_t>& idx = g.idx;
        const std::size_t first = done.size();
        if (where.how == delivery::route::kind::maildir) {
            auto outs = co_await run_blocking(pool_, [&] {
                std::vector<recorded> v;
                for (auto i : idx) {
                    const std::string& rcpt = env.recipients[i];
                    auto [local, dom] = split_address(rcpt);
                    std::string prefix = fmt::format("Return-Path: <{}>\r\nDelivered-To: {}\r\n", env.sender, rcpt);
                    v.push_back({i, delivery::deliver_maildir(where.maildir, local, prefix, content, cfg.hostname),
                                 "maildir", "none", "", "", 0, ""});
                }
                return v;
            });
            done.insert(done.end(), outs.begin(), outs.end());
        } else {
            // Every slot of this destination taken and enough passes waiting for one: this
            // group is left as it is, the other groups go on, and the message is parked at the
            // end of the pass (without a message slot; a later group may go somewhere free).
            const bool slots_short = loaded_ * 2 >= active_limit_ || !waiting_.empty();
            if (parking_.arrive(key, id, slot_free(key), slots_short)) {
                park_on.push_back(key);
                parked_idx.insert(parked_idx.end(), idx.begin(), idx.end());
                continue;
            }
            if (!co_await acquire(key)) break;  // stopped while waiting for a delivery slot
            if (withdrawn() || config_replaced()) {  // the wait for a slot can be long
                release_slot(key);
                break;
            }
            outbound::deliverer d(resolver_, s.cfg, s.client_tls, &cache_, &unreachable_);
            outbound::attempt_request req;
            req.env = &env;
            req.content = content;
            req.recipients = idx;
            req.where = where;
            req.domain = domain;
            req.tls_failed_hosts = tls_failed_before;
            // What one host took is recorded before deliver() tries the next one for the rest.
            req.record_sent = [&](std::vector<outbound::recipient_result> rs) -> asio::awaitable<void> {
                std::vector<recorded> early;
                for (const auto& r : rs) early.push_back(as_recorded(r));
                std::vector<recorded*> ptrs;
                for (auto& e : early) ptrs.push_back(&e);
                co_await record_now(std::move(ptrs));
            };
            req.stopping = [this, &withdrawn, &config_replaced] { return stopped_ || withdrawn() || config_replaced(); };
            req.superseded = [this, &config_replaced] { return stopped_ || config_replaced(); };
            auto res = co_await d.deliver(req);
            release_slot(key);
            if (!res.tls_failed_hosts.empty()) {  // the first failure's time is kept (the earliest)
                queue::tls_failures all = queue::tls_failure_times(ps.tls_failed, unix_now());
                for (const auto& [host, t] : res.tls_failed_hosts) queue::note_tls_failure(all, host, t);
                ps.tls_failed = queue::tls_failure_entries(all);
            }
            for (auto& r : res.results) {  // deliver() may split them over several transactions
                if (r.not_attempted) continue;  // stopped first: left as they were, like a group not run
                done.push_back(as_recorded(r));
                done.back().logged = logged_early.count(r.index) > 0;
            }
        }
        // Another group follows (it may wait for a slot or a slow server for minutes): the
        // recipients this one sent are recorded now, so that a crash, a kill or a restart in
        // between does not deliver them again. Only `sent`: bounces and deferrals stay for the
        // end of the pass (one DSN per pass; repeating them costs no duplicate). A message
        // with one group, the common case, gets no extra write.
        if (groups_left == 0) continue;
        std::vector<recorded*> sent;
        for (std::size_t k = first; k < done.size(); ++k)
            if (done[k].out.result == delivery::outcome::kind::sent) sent.push_back(&done[k]);
        co_await record_now(std::move(sent));
    }
    // A forced pass (`queue retry`) parked with recipients whose time has not come: they are
    // made due now and stored below (the usual end of a pass, which parks it unforced), so
    // that the request outlives a stop or a restart, as Postfix's flushed messages do.
    const bool store_forced = force && std::any_of(parked_idx.begin(), parked_idx.end(), [&](std::size_t i) {
        return ps.st[i].next_attempt > now;
    });
    if (stopped_ && done.empty() && !store_forced) {  // stopped before anything was attempted: nothing to record
        std::string().swap(ps.msg.data);  // freed before its bytes go to another pass
        end_pass(id);
        co_return;
    }
    if (!park_on.empty() && done.empty() && !superseded && !store_forced) {  // parked before anything was attempted: nothing to record
        std::string().swap(ps.msg.data);
        end_pass(id);
        if (stopped_) co_return;
        if (auto it = resubmit_.find(id); it != resubmit_.end()) {  // `queue retry` meanwhile
            const bool f = it->second;
            resubmit_.erase(it);
            active_.insert(id);
            start(id, f);
        } else if (spool_.exists(id, queue::area::active)) {  // not held or deleted meanwhile
            park_here(force);
        }
        co_return;
    }
    if (superseded) {
        // The rest at once under the new config. A forced pass (`queue retry`) took recipients
        // whose time had not come: those it left unattempted are made due now (and so stored),
        // so that the new pass, not forced, still does what the admin asked; the ones this
        // pass did attempt keep the retry time their outcome gives them.
        if (force) {
            std::set<std::size_t> attempted;
            for (const auto& d : done) attempted.insert(d.index);
            for (const auto& [key, g] : groups)
                for (auto i : g.idx)
                    if (!attempted.count(i)) ps.st[i].next_attempt = std::min(ps.st[i].next_attempt, now);
        }
        log::emit(log::level::info, "delivery_replanned",
                  {{"id", id}, {"reason", "configuration reloaded during the delivery pass"}});
        resubmit_.try_emplace(id, false);
    }

    // Parked, forced (`queue retry`): the pass parks unforced, or its next pass would attempt
    // again the other destinations it attempted; the recipients it took for the destinations
    // parked on, whose time may not have come, are made due now (so stored: store_forced).
    if (!park_on.empty() && force)
        for (auto i : parked_idx) ps.st[i].next_attempt = std::min(ps.st[i].next_attempt, now);

    // Record outcomes: state, expiry, log lines; collect bounces.
    now = unix_now();
    std::vector<message::dsn_recipient> bounces;
    std::vector<log::delivery_attempt> lines;
    for (auto& d : done) {
        auto& r = ps.st[d.index];
        ++r.attempts;
        const char* result = "sent";
        std::string expired;  // why a transient failure became a bounce
        std::string last_reason = d.out.reason;
        if (d.out.result == delivery::outcome::kind::transient && now - env.arrived >= cfg.queue.max_age.count()) {
            // SPEC §3: at queue.max_age the message is bounced with the last reason.
            d.out.result = delivery::outcome::kind::permanent;
            expired = fmt::format("message expired after {}s in the queue", now - env.arrived);
            d.out.reason += "; " + expired;
        }
        switch (d.out.result) {
            case delivery::outcome::kind::sent:
                r.status = queue::rcpt_status::sent;
                r.next_attempt = 0;  // done: no attempt is due (queue list shows none)
                break;
            case delivery::outcome::kind::permanent: {
                r.status = queue::rcpt_status::bounced;
                r.next_attempt = 0;
                result = "bounced";
                // RFC 3464 2.3.5: Remote-MTA names the host ("dns; mx.example"), not host[ip]:port,
                // and only when that host said what the diagnostic quotes (2.3.6).
                const bool remote = d.relay != "none" && d.relay != "maildir" && d.out.remote_reply;
                // A remote reply is quoted as the remote MTA gave it; the expiry is ours (a note).
                bounces.push_back({.address = env.recipients[d.index],
                                   .action = "failed",
                                   .status = d.out.dsn,
                                   .remote_mta = remote ? d.relay.substr(0, d.relay.find('[')) : "",
                                   .diagnostic = remote ? last_reason : d.out.reason,
                                   .diagnostic_is_smtp = remote,
                                   .note = remote ? expired : "",
                                   .last_attempt = now});
                break;
            }
            case delivery::outcome::kind::transient: {
                const auto& sched = cfg.queue.retry_schedule;
                const std::int64_t delay = sched[std::min<std::size_t>(r.attempts - 1, sched.size() - 1)].count();
                r.status = queue::rcpt_status::deferred;
                // SPEC §1.1: after a failed handshake, no retry before handshake_retry_delay has
                // passed since the host's first failure for this message.
                r.next_attempt = std::max(unix_now_ceil() + delay, d.tls_retry_at);
                result = "deferred";
                break;
            }
        }
        r.last_reply = fmt::format("{} {}", d.out.dsn, d.out.reason);
        // Logged after the state is written (below): a log line never runs ahead of the spool.
        lines.push_back({.id = id, .recipient = env.recipients[d.index], .relay = d.relay, .profile = d.profile,
                         .tls = d.tls, .tls_version = d.proto, .tls_cipher = d.cipher, .result = result,
                         .dsn = d.out.dsn, .reason = d.out.reason,
                         .delay_s = queue::delay_seconds(env, unix_now_ms()),
                         .attempt = r.attempts});
    }

    // Recipients this pass bounced whose bounce is not stored after all: deferred again, due at
    // `when` (SPEC §3.1: a recipient counts as bounced only once its bounce is stored).
    auto unbounce = [&](std::int64_t when, std::string_view why) {
        for (std::size_t k = 0; k < done.size(); ++k) {
            if (lines[k].result != "bounced") continue;
            auto& r = ps.st[done[k].index];
            r.status = queue::rcpt_status::deferred;
            r.next_attempt = when;
            done[k].out.reason += why;
            lines[k].result = "deferred";
            lines[k].reason = done[k].out.reason;  // the view must follow the grown string
        }
    };
    // Deleted ("without a bounce", SPEC §4) or held while this pass ran: no bounce either. A
    // held message's refused recipients are attempted again (and bounced then) once released.
    if (!bounces.empty() && withdrawn()) {
        unbounce(now, "; not bounced: the message was deleted or held meanwhile");
        bounces.clear();
    }

    // Bounce (RFC 3464) to the sender, never for the null sender; then update or remove.
    std::optional<queue::envelope> dsn_env;
    std::string dsn_content;
    if (!bounces.empty()) {
        message::dsn_input in;
        in.reporting_mta = cfg.hostname;
        in.queue_id = id;
        in.original_sender = env.sender;
        in.arrival = env.arrived;
        in.now = now;
        in.recipients = bounces;
        in.original_content = content;
        in.smtputf8 = env.smtputf8;
        if (auto dsn = message::make_dsn(in)) {
            queue::envelope e;
            e.id = spool_.new_id();
            e.arrived = now;
            e.sender = "";
            e.recipients = {dsn->recipient};
            // What the report itself needs, not what the original had: a 7-bit report must
            // also reach a server without 8BITMIME or SMTPUTF8 (else it is refused locally
            // and, having the null sender, lost).
            e.eight_bit = dsn->eight_bit;
            e.smtputf8 = dsn->smtputf8;
            e.client_ip = "127.0.0.1";
            e.helo = cfg.hostname;
            e.size = dsn->content.size();
            dsn_content = std::move(dsn->content);
            dsn_env = std::move(e);
        } else {
            log::warning("bounce", fmt::format("id={}: not bouncing a message from the null sender", id));
        }
    }
    std::optional<std::int64_t> next;
    // The message is still queued, or was not found in queue/ at its end (held or deleted while
    // the pass ran): its state was written, and must go if no copy is left.
    bool state_may_be_orphan = false;
    bool state_saved = true;          // false: ps.st is kept in unsaved_ for the next pass
    const bool dsn_ok = co_await run_blocking(pool_, [&] {
        bool ok = true;
        if (dsn_env) {
            if (auto f = spool_.commit(*dsn_env, {dsn_content}, queue::area::active)) {
                log::spool_error(dsn_env->id, f->message);
                ok = false;
                // A full disk must not turn a bounce into a loss: the next attempt, in a minute,
                // makes the bounce again.
                unbounce(now + 60, "; bounce not stored: " + f->message);
            }
        }
        for (const auto& r : ps.st)
            if (r.status == queue::rcpt_status::queued || r.status == queue::rcpt_status::deferred)
                next = next ? std::min(*next, r.next_attempt) : r.next_attempt;
        if (!next) {
            if (!spool_.remove(id, queue::area::active, state_written)) {
                // Held (or deleted) while this pass ran: the state records that every recipient
                // is done, so that a release removes the held file instead of delivering it all
                // again. Whether any copy is left is decided on the event loop below, where
                // hold, release and delete run: here a release could move the file back
                // between two checks, and the state would go while queue/ID is there again.
                if (auto f = spool_.write_state(id, ps.st, ps.tls_failed)) {
                    log::spool_error(id, f->message);
                    state_saved = false;
                }
                state_may_be_orphan = true;
            }
        } else {
            state_may_be_orphan = true;
            if (auto f = spool_.write_state(id, ps.st, ps.tls_failed)) {
                // The previous state stays on disk: the next pass writes this one (kept in
                // memory) before it attempts anything. Only a restart meanwhile repeats these
                // attempts.
                log::spool_error(id, f->message);
                state_saved = false;
            }
        }
        return ok;
    });
    // No copy left anywhere (deleted while the pass ran, whether or not every recipient is
    // done): no state either. On the loop, so no hold, release or delete can come between the
    // checks and the unlink.
    if (state_saved) unsaved_.erase(id);
    else unsaved_[id] = {ps.st, ps.tls_failed};
    if (state_may_be_orphan && !spool_.exists(id, queue::area::active) && !spool_.exists(id, queue::area::hold)) {
        spool_.remove_state(id);
        unsaved_.erase(id);
    }
    for (std::size_t k = 0; k < lines.size(); ++k)
        if (!done[k].logged) log::delivery(lines[k]);
    if (dsn_env && dsn_ok) {
        log::emit(log::level::info, "bounce", {{"id", id}, {"dsn_id", dsn_env->id}, {"to", "<" + env.sender + ">"}});
        submit(dsn_env->id);
    }

    std::string().swap(ps.msg.data);  // freed before its bytes go to another pass
    end_pass(id);
    if (stopped_) co_return;
    if (auto it = resubmit_.find(id); it != resubmit_.end()) {
        bool f = it->second;
        resubmit_.erase(it);
        active_.insert(id);
        start(id, f);
        co_return;
    }
    // Parked (after other groups were attempted): its recipients for that destination are due,
    // and wait for it rather than for a timer. Not a message held or deleted meanwhile.
    if (!park_on.empty() && next && spool_.exists(id, queue::area::active)) park_here(/*force=*/false);
    else if (next) schedule(id, *next);
}

void queue_runner::schedule(const std::string& id, std::int64_t when) {
    auto timer = std::make_unique<asio::steady_timer>(io_);
    timer->expires_after(std::chrono::milliseconds(std::max<std::int64_t>(0, when * 1000 - unix_now_ms())));
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
    for (const auto& id : waiting_) active_.erase(id);  // not started: their messages stay queued
    waiting_.clear();
    waiting_force_.clear();
    // One more try for the states the disk refused (a restart would otherwise repeat those
    // passes' deliveries): small writes, once, at shutdown. Not for a message whose pass is
    // under way: that pass writes its state itself (first, if it has not read the message yet;
    // else at its end) on a disk thread, through the same state/.ID.tmp, so a write from here
    // could mix the two files' bytes or install the older state after the newer.
    for (auto it = unsaved_.begin(); it != unsaved_.end();) {
        if (active_.count(it->first)) {
            ++it;
            continue;
        }
        const bool there = spool_.exists(it->first, queue::area::active) || spool_.exists(it->first, queue::area::hold);
        if (there && spool_.write_state(it->first, it->second.st, it->second.tls_failed)) {
            ++it;
            continue;
        }
        it = unsaved_.erase(it);
    }
    for (auto& [id, t] : timers_) t->cancel();
    timers_.clear();
    parking_.clear();  // their messages stay queued: due at the restart
    for (auto& w : waiters_) w.timer->cancel();
    cache_.close_all();
}

// --- queue control (SPEC §4) ----------------------------------------------------------------

std::vector<control::message_view> queue_runner::list() { return control::snapshot(spool_); }

result<control::message_view> queue_runner::show(const std::string& id) { return control::snapshot_one(spool_, id); }

result<unsigned> queue_runner::retry(const std::string& id, bool all) {
    std::vector<std::string> ids = all ? spool_.list(queue::area::active) : std::vector<std::string>{id};
    if (!all && !spool_.exists(id, queue::area::active)) return error{absent(id, queue::area::hold)};
    // An administrator's retry tries every address again, those found unreachable lately too
    // (Postfix's `postqueue -f` flushes its dead destinations likewise).
    unreachable_.clear();
    unsigned n = 0;
    for (const auto& i : ids) {
        if (auto it = timers_.find(i); it != timers_.end()) {
            it->second->cancel();
            timers_.erase(it);
        }
        if (auto w = waiting_force_.find(i); w != waiting_force_.end()) {
            w->second = true;  // not started yet: it will be the forced pass
        } else if (active_.count(i)) {
            resubmit_[i] = true;
        } else {
            active_.insert(i);
            start(i, /*force=*/true);
        }
        ++n;
    }
    return n;
}

namespace {

// The file was moved or removed (and the runner acted on it) but the fsync of the directory
// it left failed: the command did happen, and says so, but a power loss may still undo it.
result<void> done_but_not_durable(const std::string& id, const char* what,
                                  const std::optional<queue::spool_failure>& failure) {
    if (!failure) return {};
    log::spool_error(id, failure->message);
    return error{fmt::format("{} {}, but not durably yet: {}", what, id, failure->message)};
}

// Not moved: no such message (`none`: what absent() says), or the move failed and was undone
// (the message stays where it was).
result<void> not_moved(const std::string& id, const char* what, const std::string& none,
                       const queue::move_result& m) {
    if (!m.failure) return error{none};
    log::spool_error(id, m.failure->message);
    return error{fmt::format("not {} {}: {}", what, id, m.failure->message)};
}

}  // namespace

std::string queue_runner::absent(const std::string& id, queue::area instead) const {
    // Not where the command looked: say where it is, if it is in the other area.
    if (spool_.exists(id, instead))
        return instead == queue::area::hold
                   ? fmt::format("{} is on hold (`postern queue release {}` puts it back in the queue)", id, id)
                   : fmt::format("{} is not on hold: it is in the queue", id);
    return instead == queue::area::hold ? fmt::format("no queued message {}", id)
                                        : fmt::format("no held message {}", id);
}

result<void> queue_runner::remove(const std::string& id) {
    // Durable before the answer: a "deleted" message that a power cut brings back would be
    // delivered. (A delivery pass's own removal is not synced: at least once, by design.)
    auto d = spool_.remove_durably(id, queue::area::active);
    if (!d.removed) d = spool_.remove_durably(id, queue::area::hold);
    if (!d.removed) return error{fmt::format("no message {}", id)};
    unsaved_.erase(id);
    parking_.forget(id);
    if (auto it = timers_.find(id); it != timers_.end()) {
        it->second->cancel();
        timers_.erase(it);
    }
    log::emit(log::level::info, "deleted", {{"id", id}});
    return done_but_not_durable(id, "deleted", d.failure);
}

result<void> queue_runner::hold(const std::string& id) {
    const auto m = spool_.move(id, queue::area::active, queue::area::hold);
    if (!m.moved) return not_moved(id, "held", absent(id, queue::area::hold), m);
    parking_.forget(id);
    if (auto it = timers_.find(id); it != timers_.end()) {
        it->second->cancel();
        timers_.erase(it);
    }
    log::emit(log::level::info, "held", {{"id", id}});
    return done_but_not_durable(id, "held", m.failure);
}

result<void> queue_runner::release(const std::string& id) {
    const auto m = spool_.move(id, queue::area::hold, queue::area::active);
    if (!m.moved) return not_moved(id, "released", absent(id, queue::area::active), m);
    log::emit(log::level::info, "released", {{"id", id}});
    submit(id);  // queue/ID is there: it is delivered, whatever the directory fsync said
    return done_but_not_durable(id, "released", m.failure);
}

}  // namespace postern::runtime
