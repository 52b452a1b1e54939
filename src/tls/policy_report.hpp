// tls/policy_report.hpp - what `postern tls-policy DOMAIN [--probe]` found, as a value, and its
// text (SPEC §4: "the profile and effective TLS policy for mail to DOMAIN; --probe connects to
// its MX hosts and reports what would happen, like posttls-finger").
// Nothing here decides: the route comes from delivery/route, the policy from profile/policy,
// and a probe's facts and verdict from outbound/attempt.cpp, the delivery driver itself run in
// probe mode. This file only words them. Pure: no I/O. The format is documented in README.md
// ("postern tls-policy"); keep the two in step.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "delivery/maildir.hpp"
#include "delivery/route.hpp"
#include "profile/policy.hpp"
#include "tls/chain.hpp"

namespace postern::tls {

// What a delivery would do on one connection.
enum class probe_verdict {
    deliver,      // the session got to where MAIL FROM would be sent: the mail would go here
    refuse,       // connected, but no mail on this connection: mandatory TLS not met (4.7.4,
                  // 4.7.5), or the peer refused the session; delivery tries the next host, else defers
    defer_tls,    // opportunistic TLS and the handshake failed: the recipients are deferred for at
                  // least tls.handshake_retry_delay; a second failure delivers without TLS (SPEC §1.1)
    unreachable,  // no SMTP session: connect error or timeout, or no address; the next host
};

// The facts of one probed connection, recorded by the delivery driver as it goes.
struct probe_facts {
    bool connected = false;
    std::string greeting;                  // the first line of the 220 text
    std::optional<bool> starttls_offered;  // nullopt: EHLO was not answered
    bool starttls_issued = false;
    std::string tls_version, tls_cipher;   // set once a TLS session is established
    int tls_bits = 0;
    std::vector<certificate_summary> chain;  // as the peer sent it, leaf first
    std::string trust;                     // untrusted | trusted | verified (with TLS)
    std::string check;                     // what the certificate check found ("matched x", ...)
    bool enforced = false;                 // the policy enforced the check (mandatory TLS)
    std::string unmet;                     // enforced and not met: the first unmet requirement
    probe_verdict verdict = probe_verdict::unreachable;
    delivery::outcome why;                 // dsn and reason for every verdict but deliver
};

// One address of one host, in the order delivery tries them.
struct host_report {
    delivery::target_host host;   // name (MX host, relay host or IP literal), preference, port
    std::string ip;               // "" when the name has no usable address (see no_address)
    delivery::outcome no_address;  // why there is no address (4.4.3)
    profile::resolved_tls_policy policy;  // for this host and address (valid when ip is set)
    std::optional<probe_facts> probe;     // with --probe
};

struct policy_report {
    std::string domain;                   // as asked, lower-case
    delivery::route where;
    profile::resolved_tls_policy policy;  // for the recipient domain alone (no host facts)
    std::optional<delivery::mx_verdict> mx;  // MX routes: what the lookup found
    std::string mx_note;                  // notes on a usable answer (records ignored, ...)
    std::optional<delivery::outcome> stop;  // no host to try: what every recipient would get
    std::vector<host_report> hosts;
    bool probed = false;
    std::chrono::seconds handshake_retry_delay{300};
};

// The report as plain text, one "key: value" per line (README.md, "postern tls-policy").
// Text that came from the peer (greeting, certificate names) has control characters replaced.
std::string format_report(const policy_report& r);

// Whether the mail would be handed over: maildir routes, and (with --probe) every probed
// address reaching the point where MAIL FROM would be sent. A DNS verdict that stops delivery,
// an address that cannot be found, a refusal or a deferral: false.
bool would_deliver(const policy_report& r);

}  // namespace postern::tls
