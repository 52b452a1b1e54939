// policy/recipient.hpp - who may send to whom: hosted domains and relay rights (SPEC §2).
// Pure: the inbound session asks, this answers from the config. Never an open relay: a
// recipient outside the hosted domains needs relay rights (a profile with relay = "any",
// issue 4, or an authenticated session), else 554 5.7.1. A bare <Postmaster> (RFC 5321
// 4.1.1.3) is always this server's postmaster, never relayed: see postmaster_domain().
// Sender-specified routing ('%', '!' or '@' in the local part) to a domain relayed onward
// (relay_to) needs relay rights too; a maildir domain delivers here and takes such local parts.
#pragma once
#include <optional>
#include <string>
#include <variant>

#include "config/config.hpp"
#include "smtp/server_session.hpp"

namespace postern::policy {

class inbound_policy final : public smtp::server_policy {
public:
    inbound_policy(const config::config& cfg, bool relay_allowed) : cfg_(cfg), relay_allowed_(relay_allowed) {}
    std::optional<smtp::reply> check_sender(const smtp::transaction& t) override;
    std::optional<smtp::reply> check_recipient(const smtp::transaction& t, const smtp::mailbox& rcpt) override;
    // <Postmaster> -> Postmaster@postmaster_domain(cfg) (the local part as the client spelt
    // it); with no hosted domain, 550 5.1.1.
    std::variant<smtp::mailbox, smtp::reply> complete_postmaster(const smtp::mailbox& bare) override;
    // In a maildir domain, the mailbox folder the address lands in (<maildir>/<folder>, as
    // delivery::maildir_folder() names it: "Bob", "\"bob\"" and "BOB" are one mailbox, and so
    // are two domains delivered into the same maildir); else the default (the address).
    std::string recipient_key(const smtp::mailbox& rcpt) override;

private:
    const config::config& cfg_;
    bool relay_allowed_;
};

// The hosted domain whose postmaster receives mail sent to a bare <Postmaster> (RFC 5321
// 4.1.1.3, 4.5.1): `hostname` when it is a hosted [[domain]], else the first [[domain]] of the
// config; nullopt when no domain is hosted (such a server only relays: it has no mailbox).
// Never a domain outside this server, whatever the relay rights.
std::optional<std::string> postmaster_domain(const config::config& cfg);

}  // namespace postern::policy
