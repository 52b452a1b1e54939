// profile/inbound.cpp - plan an inbound session's TLS: decided at connect, or at MAIL FROM
// SPEC §1.4: client IP -> client host name -> sender domain at MAIL FROM -> "*". Only a
// connection that matched "*" or nothing can still come under a sender-domain profile; only
// then do sender-domain profiles switch STARTTLS or a client certificate request on (SPEC §1.2:
// tls = "none" turns TLS off for the hosts its profile matches).
#include "profile/inbound.hpp"

namespace postern::profile {

inbound_tls_plan plan_inbound(const config::config& cfg, const inbound_facts& facts) {
    inbound_facts by_connection = facts;
    by_connection.sender_domain.reset();
    inbound_tls_plan plan;
    plan.connection = resolve_inbound(cfg, by_connection);
    const tls_level own = plan.connection.level;
    plan.offer_starttls = own != tls_level::none;
    plan.request_client_certificate = requires_peer_certificate(own);

    const match_step step = plan.connection.step;
    const bool by_host = step == match_step::client_ip || step == match_step::client_name;
    if (!by_host)
        for (const auto& p : cfg.profiles) {
            if (p.sender_domains.empty()) continue;
            plan.at_mail_from = true;
            // Mandatory for some senders: STARTTLS must be there for them, whatever "*" says.
            const tls_level l = inbound_level(cfg, &p);
            if (requires_tls(l)) plan.offer_starttls = true;
            if (requires_peer_certificate(l)) plan.request_client_certificate = true;
        }
    plan.require_tls_at_connect = !plan.at_mail_from && requires_tls(own);
    plan.require_tls_until_mail = plan.at_mail_from && requires_tls(own);
    return plan;
}

}  // namespace postern::profile
