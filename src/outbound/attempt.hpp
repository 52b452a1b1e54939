// outbound/attempt.hpp - one delivery attempt of one message to one destination (a routing
// domain or a static route): resolve the hosts, connect in order, drive smtp::client_session
// over TCP and, when offered, TLS; return one outcome per recipient. SPEC §1.1 (outbound
// opportunistic TLS), §3.3 (routing, MX), §3.4 (one transaction for all recipients).
#pragma once
#include <asio/awaitable.hpp>
#include <asio/ssl/context.hpp>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "delivery/maildir.hpp"
#include "delivery/route.hpp"
#include "dns/resolver.hpp"
#include "outbound/connection_cache.hpp"
#include "queue/envelope.hpp"
#include "tls/policy_report.hpp"

namespace postern::outbound {

struct recipient_result {
    std::size_t index = 0;  // into envelope::recipients
    delivery::outcome out;
};

struct attempt_request {
    const queue::envelope* env = nullptr;  // null for a probe (nothing is ever sent)
    std::string_view content;
    std::vector<std::size_t> recipients;  // indexes, all with the same route
    delivery::route where;
    std::string domain;                    // recipient domain (for TLS name checks)
    std::set<std::string> tls_failed_hosts;  // hosts whose handshake failed before, for this message
};

struct attempt_result {
    std::vector<recipient_result> results;
    std::string relay;    // "host[ip]:port" of the last host talked to, or "none"
    std::string tls;      // none | fallback | untrusted | trusted | verified
    std::string profile;  // the connection profile that applied ("" = none)
    std::string tls_version, tls_cipher;
    std::set<std::string> tls_failed_hosts;  // hosts whose handshake failed in this attempt
    bool tls_handshake_failed = false;       // -> next attempt no sooner than handshake_retry_delay
};

class deliverer {
public:
    // `cache` may be null (no connection reuse).
    deliverer(dns::resolver& resolver, std::shared_ptr<const config::config> cfg,
              std::shared_ptr<asio::ssl::context> client_tls, connection_cache* cache = nullptr);
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
};

}  // namespace postern::outbound
