// profile/inbound.hpp - when an inbound session decides its TLS policy, and what it offers and
// asks for before it knows (SPEC §1.2, §1.4). Pure: (config, connection facts) -> plan.
//
// Inbound the profile is chosen in steps: client IP -> client host name -> sender domain at MAIL
// FROM -> "*". A match by IP or name is known at connect and is final: no sender-domain profile
// can apply to that client, so the connection's policy alone decides STARTTLS, the client
// certificate request, 530 before STARTTLS, and the check right after the handshake (554 to
// every command when it fails). When the connection matched only "*" or nothing and some
// profile has sender_domains, the policy is not known before MAIL FROM: the session offers
// what any profile that may still apply needs (STARTTLS, a client certificate request) and
// enforces at each MAIL FROM the policy resolve_inbound gives with the sender's domain — the
// sender-domain profile if one matches, else "*" (the null sender has no domain: "*").
// Without sender-domain profiles "*" is as final as an IP match, and is enforced at connect.
#pragma once
#include "config/config.hpp"
#include "profile/match.hpp"
#include "profile/policy.hpp"

namespace postern::profile {

struct inbound_tls_plan {
    // The policy by client IP, name, "*" or the global switch (facts without a sender domain).
    // Final when !at_mail_from; otherwise what applies until MAIL FROM, for the logs.
    resolved_tls_policy connection;
    // The policy is resolved at each MAIL FROM with the sender's domain (resolve_inbound) and
    // enforced there: 530 5.7.0 without TLS, 554 5.7.0 for a session below its requirements.
    bool at_mail_from = false;
    // Advertise STARTTLS and accept it (when a server certificate is configured; else 502).
    bool offer_starttls = false;
    // Ask for a client certificate at STARTTLS: a policy that may apply requires one.
    bool request_client_certificate = false;
    // !at_mail_from and the connection's policy requires TLS: MAIL, RCPT, DATA, BDAT before
    // STARTTLS get 530 5.7.0, and the session is checked against `connection` right after the
    // handshake.
    bool require_tls_at_connect = false;
    // at_mail_from and the connection's own policy ("*" or the global switch) requires TLS:
    // RCPT, DATA, BDAT and AUTH before STARTTLS and outside a transaction get 530 5.7.0 too
    // (no sender has chosen another profile yet; SPEC §1.2 lists them with MAIL). MAIL itself
    // is decided by its sender's domain.
    bool require_tls_until_mail = false;
};

// `facts` without a sender domain (it is ignored): the client's IP and confirmed name.
inbound_tls_plan plan_inbound(const config::config& cfg, const inbound_facts& facts);

}  // namespace postern::profile
