// outbound/attempt.hpp - one delivery attempt of one message to one destination (a routing
// domain or a static route): resolve the hosts, connect in order, drive smtp::client_session
// over TCP and, when offered, TLS; return one outcome per recipient. SPEC §1.1 (outbound
// opportunistic TLS), §1.2-1.4 (each recipient under its own domain's policy), §3.3 (routing,
// MX), §3.4 (one transaction for all recipients that share a policy).
#pragma once
#include <asio/awaitable.hpp>
#include <asio/ssl/context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "delivery/maildir.hpp"
#include "delivery/route.hpp"
#include "dns/resolver.hpp"
#include "outbound/connection_cache.hpp"
#include "policy/unreachable.hpp"
#include "queue/envelope.hpp"
#include "queue/spool.hpp"
#include "tls/policy_report.hpp"

namespace postern::outbound {

// The session behind a recipient's outcome, for its delivery log line (SPEC §6): the
// transaction that decided it, or the host whose failure it is deferred or bounced with.
struct session_facts {
    std::string relay = "none";  // "host[ip]:port", or "none" (no host reached)
    // none | fallback | untrusted | trusted | verified: the certificate judged for THIS
    // recipient's policy (its domain's names), as a fresh connection would judge it
    std::string tls = "none";
    std::string profile;  // the connection profile that applied ("" = none)
    std::string tls_version, tls_cipher;
};

struct recipient_result {
    std::size_t index = 0;  // into envelope::recipients
    delivery::outcome out;
    session_facts via;
    // Deferred by a failed handshake: the next attempt no sooner than this (unix s: the host's
    // first failure for this message + handshake_retry_delay); 0 = not such a deferral.
    std::int64_t tls_retry_at = 0;
    bool not_attempted = false;  // the server stopped before a host took it: nothing to record
};

struct attempt_request {
    const queue::envelope* env = nullptr;  // null for a probe (nothing is ever sent)
    std::string_view content;
    std::vector<std::size_t> recipients;  // indexes, all with the same route
    delivery::route where;
    std::string domain;                    // recipient domain (the probe's TLS names)
    // "NAME:PORT" -> unix time (s) of the host's first failed handshake for this message, in
    // earlier attempts (0 = long ago)
    queue::tls_failures tls_failed_hosts;
    // The recipients a host has just accepted, handed over before deliver() starts another
    // transaction for those still open (the next address or host, another policy group): the
    // queue runner records them in state/ID, so that a crash, a kill or a restart during the
    // rest of the attempt (a backup host may keep it waiting for minutes) does not deliver them
    // again. They are in the attempt's results as well. Unset: nothing is handed over.
    std::function<asio::awaitable<void>(std::vector<recipient_result>)> record_sent;
    // True once the server is stopping: no further transaction starts; the recipients still
    // open come back `not_attempted` (they stay as they were: queued, or due again).
    std::function<bool()> stopping;
    // The part of `stopping` that needs no system call (the server stopping, the config replaced
    // by a reload), checked once more when a connection is ready for its first transaction:
    // one set up meanwhile carries none. Unset: `stopping` is used.
    std::function<bool()> superseded;
};

struct attempt_result {
    std::vector<recipient_result> results;   // one per request recipient, in its order
    // "NAME:PORT" -> unix time (s) to record as the host's first failed handshake, for the hosts
    // whose handshake failed in this attempt (the earlier time when there was one)
    queue::tls_failures tls_failed_hosts;
};

// SPEC §1.1: what an opportunistic handshake that failed with a host at `now_ms` (unix ms)
// leads to, given the host's first failure for this message (`first`, unix s; nullopt = none).
// The fallback to plaintext needs a first failure at least `delay` old: a `queue retry`, or
// another recipient group due earlier for other reasons, must not cut the wait short. Else the
// recipients are deferred until `delay` after the FIRST failure (a failure on a forced attempt
// does not push it back). A first failure in the future (the clock was stepped back since)
// counts as one now: never a wait longer than `delay` from now.
struct failed_handshake {
    bool fallback = false;        // reconnect and deliver without TLS, now
    std::int64_t first = 0;       // unix s to record as the host's first failure
    std::int64_t retry_at = 0;    // when deferred: the next attempt no sooner than this (unix s)
};
failed_handshake after_failed_handshake(std::optional<std::int64_t> first, std::int64_t now_ms,
                                        std::chrono::seconds delay);

class deliverer {
public:
    // `cache` may be null (no connection reuse); `unreachable` too (every address is tried;
    // `postern tls-policy --probe` always connects).
    deliverer(dns::resolver& resolver, std::shared_ptr<const config::config> cfg,
              std::shared_ptr<asio::ssl::context> client_tls, connection_cache* cache = nullptr,
              policy::unreachable_addresses* unreachable = nullptr);
    // Each recipient is delivered only under the TLS policy resolved for its own domain and the
    // host (name, address) actually connected (SPEC §1.4); recipients whose policies ask the
    // same of the session share one transaction, the others get their own, on a connection of
    // their own unless a parked one was checked under the same requirements. All recipients
    // with one policy, the common case: one transaction, as before.
    asio::awaitable<attempt_result> deliver(const attempt_request& req);

    // `postern tls-policy` (SPEC §4): fills report.mx, .stop and .hosts for report.where and
    // report.domain - every host and address in the order deliver() tries them, each with the
    // TLS policy resolved for it. With `connect`, each address is probed: the same conversation
    // as deliver()'s, enforcing the same policy, up to where MAIL FROM would be sent; then QUIT,
    // and on to the next address (deliver() stops at the first that takes the mail). A probe
    // never sends MAIL FROM and never uses the connection cache.
    asio::awaitable<void> probe(tls::policy_report& report, bool connect);

private:
    dns::resolver& resolver_;
    std::shared_ptr<const config::config> cfg_;
    std::shared_ptr<asio::ssl::context> tls_;
    connection_cache* cache_;
    policy::unreachable_addresses* unreachable_;
};

}  // namespace postern::outbound
