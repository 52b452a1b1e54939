// policy/recipient.cpp - accept recipients in hosted domains; refuse relaying unless granted;
// complete a bare <Postmaster> to this server's postmaster (RFC 5321 4.1.1.3).
// Security: a hosted domain relayed onward (relay_to) refuses a local part that routes
// ("a%b@dom", "b!a@dom", "\"a@b\"@dom") unless the client may relay: an internal server that
// honours such routing would otherwise relay for anyone (Postfix: allow_untrusted_routing = no).
#include "policy/recipient.hpp"

#include <string_view>

#include <fmt/format.h>

#include "delivery/maildir.hpp"

namespace postern::policy {

std::optional<std::string> postmaster_domain(const config::config& cfg) {
    if (const config::domain_config* d = cfg.find_domain(cfg.hostname)) return d->name;
    if (!cfg.domains.empty()) return cfg.domains.front().name;
    return std::nullopt;
}

std::optional<smtp::reply> inbound_policy::check_sender(const smtp::transaction&) {
    return std::nullopt;  // sender-domain profiles arrive with issue 4
}

namespace {

// The routing operators of the "percent hack" (RFC 1123 5.2.16), UUCP bang paths and a second
// '@': Postfix's allow_untrusted_routing = no, for its relay_domains.
// Looked for in the local part as sent, quotes and backslash escapes included: a next hop that
// unquotes "a@b" or "a\@b" can route on it too.
bool routes_onward(std::string_view local) { return local.find_first_of("%!@") != std::string_view::npos; }

}  // namespace

std::optional<smtp::reply> inbound_policy::check_recipient(const smtp::transaction&, const smtp::mailbox& rcpt) {
    // The session completes a bare <Postmaster> first; an address without a domain is never
    // relayed (it would go wherever the next hop decides).
    if (rcpt.domain.empty())
        return smtp::make_reply(550, "5.1.1", fmt::format("<{}>: Recipient address rejected", rcpt.str()));
    if (const config::domain_config* d = cfg_.find_domain(rcpt.domain_lower())) {
        if (!d->maildir.empty() && !delivery::maildir_folder(rcpt.local))
            return smtp::make_reply(550, "5.1.3", fmt::format("<{}>: Recipient address is not a valid mailbox name",
                                                               rcpt.str()));
        // A maildir domain delivers here: its folder name is the whole local part, so no '%',
        // '!' or '@' in it can send the message anywhere else.
        if (d->maildir.empty() && !relay_allowed_ && routes_onward(rcpt.local))
            return smtp::make_reply(554, "5.7.1", fmt::format("<{}>: Relay access denied: sender-specified routing "
                                                               "('%', '!' or '@' in the local part) is not allowed",
                                                               rcpt.str()));
        return std::nullopt;
    }
    if (relay_allowed_) return std::nullopt;
    return smtp::make_reply(554, "5.7.1", fmt::format("<{}>: Relay access denied", rcpt.str()));
}

std::string inbound_policy::recipient_key(const smtp::mailbox& rcpt) {
    // A path has no NUL, which every default key holds: the two kinds of key never meet.
    if (const config::domain_config* d = cfg_.find_domain(rcpt.domain_lower()); d && !d->maildir.empty())
        if (auto folder = delivery::maildir_folder(rcpt.local)) return d->maildir + '/' + *folder;
    return server_policy::recipient_key(rcpt);
}

std::variant<smtp::mailbox, smtp::reply> inbound_policy::complete_postmaster(const smtp::mailbox& bare) {
    auto domain = postmaster_domain(cfg_);
    if (!domain)  // RFC 5321 4.5.1 asks for a postmaster mailbox; a relay-only server has none
        return smtp::make_reply(550, "5.1.1",
                                fmt::format("<{}>: Recipient address rejected: this server hosts no domain, "
                                            "so it has no postmaster mailbox (give the domain)",
                                            bare.str()));
    smtp::mailbox full = bare;
    full.domain = std::move(*domain);
    return full;
}

}  // namespace postern::policy
