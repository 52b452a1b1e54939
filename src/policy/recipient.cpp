// policy/recipient.cpp - accept recipients in hosted domains; refuse relaying unless granted.
#include "policy/recipient.hpp"

#include <fmt/format.h>

#include "delivery/maildir.hpp"

namespace postern::policy {

std::string routing_domain(const config::config& cfg, const smtp::mailbox& rcpt) {
    if (rcpt.domain.empty()) return cfg.hostname;
    return rcpt.domain_lower();
}

std::optional<smtp::reply> inbound_policy::check_sender(const smtp::transaction&) {
    return std::nullopt;  // sender-domain profiles arrive with issue 4
}

std::optional<smtp::reply> inbound_policy::check_recipient(const smtp::transaction&, const smtp::mailbox& rcpt) {
    const std::string domain = routing_domain(cfg_, rcpt);
    if (const config::domain_config* d = cfg_.find_domain(domain)) {
        if (!d->maildir.empty() && !delivery::maildir_folder(rcpt.local))
            return smtp::make_reply(550, "5.1.3", fmt::format("<{}>: Recipient address is not a valid mailbox name",
                                                               rcpt.str()));
        return std::nullopt;
    }
    if (relay_allowed_) return std::nullopt;
    return smtp::make_reply(554, "5.7.1", fmt::format("<{}>: Relay access denied", rcpt.str()));
}

}  // namespace postern::policy
