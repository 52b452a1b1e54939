// dns/resolver.hpp - the DNS resolver interface: MX, address and PTR lookups as Asio coroutines,
// and forward-confirmed reverse DNS built on them.
// Answers are plain values (dns/answers.hpp) with a DNSSEC-secure flag; the only
// implementation is libunbound (dns/unbound_resolver.cpp), and tests may substitute their own.
//
// Servers (SPEC §5 [dns]): with `dns.servers` set, every name is forwarded to those servers,
// special-use names included (.test, .invalid, .localhost, .onion, private reverse zones):
// libunbound's built-in RFC 6761/6303 local zones are made transparent, so a test DNS server
// can serve them. With no servers, /etc/resolv.conf and /etc/hosts are used, and the built-in
// local zones stay (".invalid" names do not exist, "localhost" is 127.0.0.1 / ::1).
//
// DNSSEC: no trust anchor is configured, so `secure` is always false and nothing is `bogus`
// yet. To validate (DANE, RFC 7672), load the root key before the first query, with
// ub_ctx_add_ta_autr(ctx, path) for an RFC 5011-maintained file, or ub_ctx_add_ta_file(ctx,
// "/usr/share/dns/root.key") (Debian package dns-root-data) for a fixed one; a test zone signed
// with its own key is anchored the same way with its DS or DNSKEY record (ub_ctx_add_ta).
// Validation then sets `secure` from ub_result->secure and `bogus` from ub_result->bogus.
#pragma once
// Asio before any standard header, as postern_net's precompiled header does: Asio chooses
// between aligned_alloc and operator new from libstdc++ macros, and every translation unit
// must choose alike.
#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "dns/answers.hpp"

namespace postern::dns {

class resolver {
public:
    virtual ~resolver();
    // The MX records of `domain` (RFC 5321 5.1). A null MX (RFC 7505) comes back as one record
    // with an empty host; ok with no usable record does not happen (that is `temporary`).
    virtual asio::awaitable<mx_answer> mx(std::string domain) = 0;
    // The A and AAAA records of `host`, both asked at once; IPv4 first, then IPv6.
    virtual asio::awaitable<address_answer> addresses(std::string host) = 0;
    // The PTR records of the IP literal `ip` (reverse DNS). Not an IP literal -> nxdomain.
    virtual asio::awaitable<name_answer> ptr(std::string ip) = 0;
};

// Forward-confirmed reverse DNS (FCrDNS, as Postfix's reverse_client_name check): the first
// PTR name of `ip` whose own A/AAAA records include `ip`. An unconfirmed name is never
// trusted: a profile matched by host name must not apply to a client that merely claims the
// name in its reverse zone. At most `max_names` PTR names are checked, in the order the
// server gave them.
struct client_name {
    std::optional<std::string> name;  // the confirmed name, or nullopt
    // No name, and only because a lookup failed temporarily (SERVFAIL, timeout, DNSSEC
    // failure): the answer may be different later. Callers whose policy depends on the name
    // must not treat this as "no name" (that could weaken a profile's TLS requirement).
    bool temporary = false;
    std::string error;  // why, for logs
};
asio::awaitable<client_name> forward_confirmed_name(resolver& r, std::string ip, std::size_t max_names = 4);

struct resolver_options {
    // Upper bound for one query (libunbound's own retries can take ~20 s against a dead
    // server); past it the answer is `temporary` and the query is cancelled.
    std::chrono::milliseconds timeout{std::chrono::seconds(10)};
};

// A libunbound resolver whose callbacks run on a strand of `ex`. `servers` = dns.servers
// (IP literals; empty = the system resolver). Throws std::runtime_error when libunbound cannot
// be set up (a start-up error). Destroy it on a thread running `ex` (or after the loop has
// stopped): queries still waiting complete with `temporary` "resolver shut down".
std::unique_ptr<resolver> make_resolver(asio::any_io_executor ex, const std::vector<config::host_port>& servers,
                                        resolver_options options = {});

}  // namespace postern::dns
