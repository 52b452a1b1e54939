// policy/recipient.hpp - who may send to whom: hosted domains and relay rights (SPEC §2).
// Pure: the inbound session asks, this answers from the config. Never an open relay: a
// recipient outside the hosted domains needs relay rights (a profile with relay = "any",
// issue 4, or an authenticated session), else 554 5.7.1.
#pragma once
#include <optional>

#include "config/config.hpp"
#include "smtp/server_session.hpp"

namespace postern::policy {

class inbound_policy final : public smtp::server_policy {
public:
    inbound_policy(const config::config& cfg, bool relay_allowed) : cfg_(cfg), relay_allowed_(relay_allowed) {}
    std::optional<smtp::reply> check_sender(const smtp::transaction& t) override;
    std::optional<smtp::reply> check_recipient(const smtp::transaction& t, const smtp::mailbox& rcpt) override;

private:
    const config::config& cfg_;
    bool relay_allowed_;
};

// The domain a recipient is routed by: its domain, or the server's hostname for a bare
// <Postmaster> (RFC 5321 4.1.1.3).
std::string routing_domain(const config::config& cfg, const smtp::mailbox& rcpt);

}  // namespace postern::policy
