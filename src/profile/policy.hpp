// profile/policy.hpp - the effective TLS policy for one connection, as a value (SPEC §1.1-1.3)
// The one place that derives a TLS level from the global switch and the matching profile; the
// inbound and outbound sessions only enforce the result. Pure: (config, facts) -> policy.
//
// Levels, in order (like Postfix's smtp_tls_security_level):
//   none         no TLS: STARTTLS neither offered (inbound) nor issued (outbound)
//   may          opportunistic: TLS when both sides can; the certificate is checked and
//                logged, never enforced
//   encrypt      mandatory TLS, any certificate          (tls = "mandatory", verify = "none")
//   ca           mandatory, chain to a trusted CA, in date                (verify = "ca")
//   ca_name      mandatory, chain + the certificate names the peer        (verify = "ca+name")
//   fingerprint  mandatory, certificate or public key pinned              (verify = "fingerprint")
//   dane         mandatory, DANE TLSA (RFC 7672); carried as is until DANE is implemented
// Derivation: a profile's `tls` overrides the global switch for the peers it matches
// ("mandatory" wins even when tls.opportunistic = false; "none" turns TLS off); an absent `tls`
// (or an absent [profile.inbound] / [profile.outbound] table, or no profile) follows
// tls.opportunistic: may when true, none when false.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "profile/match.hpp"

namespace postern::profile {

enum class tls_level { none, may, encrypt, ca, ca_name, fingerprint, dane };
std::string_view to_string(tls_level level);

// Anything but a successful handshake meeting the requirements means no mail on that
// connection (RFC 3207 4.1; outbound never falls back to plaintext).
constexpr bool requires_tls(tls_level l) { return l >= tls_level::encrypt; }

// Outbound, after the reply to EHLO on a connection not yet in TLS: what the client does next
// under level `l`. `want_tls`: the caller asks for TLS on this connection (false on the
// plaintext reconnection after failed opportunistic handshakes, SPEC §1.1); `can_tls`: the
// peer offered STARTTLS and a client TLS context exists. Under a level that requires TLS the
// answer is never `proceed`, whatever the caller asked: this is the one place the outbound
// "no mail in plaintext" of SPEC §1.2 is decided, so that no caller can get around it.
enum class after_ehlo { starttls, proceed, refuse };
constexpr after_ehlo next_after_ehlo(tls_level l, bool want_tls, bool can_tls) {
    if (requires_tls(l)) return can_tls ? after_ehlo::starttls : after_ehlo::refuse;
    return want_tls && can_tls ? after_ehlo::starttls : after_ehlo::proceed;
}
// The peer must present a certificate (inbound: the client certificate is requested and required).
constexpr bool requires_peer_certificate(tls_level l) { return l >= tls_level::ca; }
// The chain must verify against the trust store (ca_file).
constexpr bool requires_chain(tls_level l) { return l == tls_level::ca || l == tls_level::ca_name; }
// The certificate must carry one of `names` (SAN dNSName; CN only without SAN). For dane the
// TLSA usage decides (RFC 7672 3.1.1 DANE-EE ignores names, 3.2.2 DANE-TA checks them), so
// this says false; the DANE check uses `names` itself.
constexpr bool requires_name_match(tls_level l) { return l == tls_level::ca_name; }
// The certificate or public key must match one of `fingerprints`.
constexpr bool uses_pins(tls_level l) { return l == tls_level::fingerprint; }

struct resolved_tls_policy {
    tls_level level = tls_level::none;
    // Names the peer certificate must carry (requires_name_match), and that "verified" is
    // judged against at level may. Outbound: the profile's peer_names, else the MX host name
    // and the recipient domain (RFC 7672 3.2.2's reference identifiers). Inbound: the
    // profile's peer_names (the loader requires them for inbound "ca+name").
    std::vector<std::string> names;
    std::vector<std::string> fingerprints;  // "sha256:HEX" / "spki-sha256:HEX" (uses_pins)
    config::tls_version min_version = config::tls_version::v1_2;
    int min_cipher_bits = 128;
    std::string ca_file;  // the profile's, else tls.ca_file, else "" (the system store)
    std::string profile;  // the profile's name, or "" when none matched
    match_step step = match_step::none;
    // The rule that matched and how the level was derived, for logs and `postern tls-policy`:
    // "recipient domain partner.test matches recipient domain partner.test of profile partner;
    //  outbound tls = \"mandatory\", verify = \"ca+name\" -> ca_name"
    std::string why;
};

resolved_tls_policy resolve_outbound(const config::config& cfg, const outbound_facts& facts);
// Inbound: none = no STARTTLS; may = offer it (when a certificate is configured);
// requires_tls = 530 5.7.0 before STARTTLS; requires_peer_certificate = request and require a
// client certificate. A profile matched by sender domain applies from MAIL FROM on; when the
// session decides, and what it offers before, is profile/inbound.hpp's plan.
resolved_tls_policy resolve_inbound(const config::config& cfg, const inbound_facts& facts);
// The inbound level profile `p` gives the clients it matches (nullptr: no profile, the global
// switch), derived as resolve_inbound does; profile/inbound.cpp plans with it.
tls_level inbound_level(const config::config& cfg, const config::profile_config* p);

// Whether the client may relay (send to domains not hosted here): the profile matched by the
// client's IP address or forward-confirmed name, or the "*" profile, has relay = "any".
// The sender domain never grants relay: anyone can write any MAIL FROM.
bool relay_allowed(const config::config& cfg, const inbound_facts& facts);

}  // namespace postern::profile
