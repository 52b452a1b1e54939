// profile/match.hpp - which [[profile]] applies to a connection, and by which rule (SPEC §1.4)
// Pure functions of (config, connection facts): no I/O, no DNS. The sessions gather the facts
// (the client's forward-confirmed name, the MX host name) and ask; profile/policy.hpp turns
// the answer into the TLS policy they enforce.
//
// Precedence, the most specific match first; within a step the closer entry wins:
//   inbound:  client IP (exact, then longest prefix; a trailing-wildcard IPv4 is a /8, /16
//             or /24 prefix) -> client host name (exact, then wildcard, longest suffix first)
//             -> sender domain at MAIL FROM (exact, then wildcard) -> "*"
//   outbound: recipient domain (exact, then wildcard) -> destination host IP (exact, then
//             longest prefix) -> destination host name (exact, then wildcard) -> "*"
// `hosts` entries serve both directions; `sender_domains` only inbound, `recipient_domains`
// only outbound. The loader rejects an entry in two profiles, so at most one profile wins each
// step (ties within one profile go to the first entry). Entries that do not parse (a config
// built by hand) are skipped.
//
// Inbound, the profile can change during a session: before MAIL FROM only the client's IP
// and name are known; at MAIL FROM a sender-domain profile applies if neither matched.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace postern::profile {

struct inbound_facts {
    std::string client_ip;                     // "192.0.2.7", "2001:db8::7", "::ffff:192.0.2.7"
    std::optional<std::string> client_name;    // forward-confirmed reverse DNS, or nullopt
    std::optional<std::string> sender_domain;  // the MAIL FROM domain once known; nullopt
                                               // before MAIL FROM and for the null sender
};

struct outbound_facts {
    std::string recipient_domain;
    std::optional<std::string> host_ip;    // the destination address, once chosen
    std::optional<std::string> host_name;  // the MX (or route) host name, when there is one
};

// Which fact selected the profile.
enum class match_step { none, client_ip, client_name, sender_domain, recipient_domain, host_ip, host_name, any };
std::string_view to_string(match_step s);

struct profile_match {
    const config::profile_config* profile = nullptr;  // nullptr = no profile applies
    match_step step = match_step::none;
    std::string entry;  // the entry that matched, as normalised in the config ("10.1.*")
    // For humans (logs, `postern tls-policy`): "client IP 127.0.0.5 matches host 127.0.0.5 of
    // profile partner", "no profile matches recipient domain example.test".
    std::string rule;
};

profile_match match_inbound(const config::config& cfg, const inbound_facts& facts);

// What inbound matching needs the client's host name for (forward-confirmed reverse DNS costs
// a PTR and an address lookup per connection, so the session asks only when it matters):
struct client_name_use {
    bool needed = false;     // some profile has a host-name or wildcard host-name entry
    bool mandatory = false;  // ... and one of those requires inbound TLS: a failed lookup must
                             // not let a client of that profile in without TLS
};
client_name_use client_names_used(const config::config& cfg);
profile_match match_outbound(const config::config& cfg, const outbound_facts& facts);

}  // namespace postern::profile
