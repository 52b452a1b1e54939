// delivery/myself.hpp - is an MX host this Postern? RFC 5321 5.1: "if the SMTP client finds
// its own name or address in the list, it MUST discard that record and all records with a
// higher preference value" (Postfix smtp_addr.c: "mail for DOMAIN loops back to myself").
// Pure: the driver (outbound/attempt.cpp) supplies the host's addresses and ours.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "delivery/route.hpp"

namespace postern::delivery {

// Who we are. A host is "myself" when its name is `hostname` (case-insensitive, trailing dot
// ignored), or when one of its addresses, on the delivery port, is one we listen on: a
// listen address itself, or - for a wildcard listener (0.0.0.0 / ::) on that port - any of
// `local_addresses` (the interface addresses) and, for 0.0.0.0, all of 127.0.0.0/8.
struct self_identity {
    std::string hostname;
    std::vector<config::host_port> listen;     // server.listen
    std::vector<std::string> local_addresses;  // needed only with a wildcard listener
};

self_identity identity_of(const config::config& cfg);  // local_addresses left empty

bool is_my_name(const self_identity& me, std::string_view host);
bool is_my_address(const self_identity& me, std::string_view ip, std::uint16_t port);
// Whether a wildcard listener on `port` makes local_addresses matter (then the driver fills
// them in); without one, only exact listen addresses can match.
bool listens_on_wildcard(const self_identity& me, std::uint16_t port);
// Whether any listener is on `port`: if not, no address of a host can be ours.
bool listens_on_port(const self_identity& me, std::uint16_t port);

// RFC 5321 5.1: drops every host whose preference is at or above the best preference at which
// `is_self` is true (hosts sorted by preference, as plan_mx returns them). Returns whether we
// appeared at all; with `hosts` then empty the mail loops back to us (5.4.6).
bool discard_self_and_worse(std::vector<target_host>& hosts, const std::function<bool(const target_host&)>& is_self);

}  // namespace postern::delivery
