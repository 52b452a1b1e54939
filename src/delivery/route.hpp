// delivery/route.hpp - where mail for a recipient domain goes, and in which order to try the
// MX hosts (SPEC §3.3; RFC 5321 5.1; RFC 7505).
// Pure: no Asio, no DNS queries. The delivery driver asks the resolver (dns/resolver.hpp) and
// hands the answer to plan_mx(); everything that decides lives here and is tested as tables.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "dns/answers.hpp"

namespace postern::delivery {

// The next hop for one recipient domain. Precedence (like Postfix's transport map over MX):
//   1. a hosted [[domain]]: its maildir, or its relay_to hosts;
//   2. a [[route]] for exactly this domain;
//   3. the "*" [[route]] (smarthost) - it never applies to hosted domains;
//   4. an address literal "[192.0.2.1]" / "[IPv6:2001:db8::1]" (RFC 5321 4.1.3): that address;
//   5. MX lookup of the domain on delivery.port.
// Static hosts ("host:port") that are names are resolved by the driver with A/AAAA only, never
// MX (a smarthost name is a host, as in Postfix's "[host]:port").
struct route {
    enum class kind { maildir, static_hosts, mx } how = kind::mx;
    std::string maildir;                   // kind::maildir: the folder root (absolute)
    std::vector<config::host_port> hosts;  // kind::static_hosts, tried in this order
    std::string domain;                    // the recipient domain, lower-case A-label form
    std::uint16_t port = 25;               // kind::mx: delivery.port (static hosts carry theirs)
    bool literal = false;  // kind::static_hosts from an address literal: hosts holds its one address
    std::string source;  // why, for logs: "domain example.test maildir", "domain example.test
                         // relay_to", "route partner.test", "route *", "address literal", "mx"
};

std::string to_string(route::kind k);  // "maildir", "static", "mx"

// `recipient_domain` is matched case-insensitively, by its A-label form when it has U-labels
// ("b\u00fccher.test" is routed, MX-looked-up and profile-matched as "xn--bcher-kva.test",
// smtp::domain_to_ascii); a trailing dot is ignored.
route decide_route(const config::config& cfg, std::string_view recipient_domain);
// route::domain for `recipient_domain`: its A-label form, lower-case, without a trailing dot
// (as written, lower-cased, when it has none). Profiles are matched by it.
std::string routing_domain(std::string_view recipient_domain);

// A host to connect to, in order: a name to resolve with A/AAAA (MX targets and the implicit
// MX are names; the resolver also takes IP literals gracefully, but plan_mx never yields one).
struct target_host {
    std::string name;
    std::uint16_t preference = 0;
    std::uint16_t port = 25;
    friend bool operator==(const target_host&, const target_host&) = default;
};

enum class mx_verdict {
    ok,              // deliver to `hosts`, in order
    implicit,        // no MX records: the domain itself is the host (RFC 5321 5.1); in `hosts`
    null_mx,         // the domain accepts no mail (RFC 7505): bounce 5.1.10
    no_such_domain,  // NXDOMAIN: bounce 5.1.2
    no_usable_host,  // every MX record is an IP literal or malformed: bounce 5.4.4
    temporary,       // SERVFAIL, timeout, DNSSEC failure: defer 4.4.3
};

// "ok", "implicit", "null-mx", "no-such-domain", "no-usable-host", "temporary"
std::string to_string(mx_verdict v);

struct mx_plan {
    mx_verdict verdict = mx_verdict::temporary;
    std::vector<target_host> hosts;  // ok / implicit only
    std::string reason;              // human text for logs and bounces; notes on `ok` too
};

// Turn an MX answer for `domain` into the hosts to try, on `port`:
// - ascending preference; equal preferences in random order from `rng` (RFC 5321 5.1: "the
//   sender-SMTP MUST randomize them"), so a seeded engine makes it reproducible in tests;
// - a null MX, i.e. a record whose host is the root "." (RFC 7505 3), makes the whole domain
//   null_mx, even beside other records: RFC 7505 3 forbids mixing, and when the owner has
//   said "no mail here" anywhere we believe it rather than deliver to the other hosts;
// - records whose host is an IP literal ("192.0.2.1", RFC 5321 5.1 wants a domain name) are
//   dropped with a note, as Postfix does; if nothing is left (or every record was malformed:
//   an `ok` answer without records) the verdict is no_usable_host, a bounce like Postfix's
//   DNS_INVAL: the same answer comes back on every retry;
// - the same host named twice is kept once, at its best preference;
// - nodata -> implicit MX: the domain itself, preference 0; nxdomain -> no_such_domain;
//   temporary and bogus -> temporary (a DNSSEC failure must never fall back to anything).
mx_plan plan_mx(const dns::mx_answer& ans, std::string_view domain, std::uint16_t port, std::mt19937& rng);

// The addresses of one host (IP literals) in the order to try them: IPv4 ones first, then
// IPv6, each family in random order from `rng` (Postfix's smtp_randomize_addresses), so the
// load spreads over a host's addresses and one dead address is not always tried first.
void order_addresses(std::vector<std::string>& ips, std::mt19937& rng);

}  // namespace postern::delivery
