// profile/match.cpp - select the [[profile]] for a connection: SPEC §1.4 precedence
// Each step scans every profile for its best entry; the first step with a match decides.
// Entries are kept as text in the config and parsed here: a handful of profiles costs
// microseconds per connection, far below a TLS handshake.
#include "profile/match.hpp"

#include <vector>

#include "profile/pattern.hpp"

namespace postern::profile {

namespace {

using list_of = const std::vector<std::string> config::profile_config::*;
using parser = result<pattern> (*)(std::string_view);

struct best {
    const config::profile_config* profile = nullptr;
    std::string entry;
    std::size_t rank = 0;

    void offer(const config::profile_config& p, const pattern& pat, std::size_t r) {
        if (r > rank) {  // strictly better: ties go to the earlier entry
            rank = r;
            profile = &p;
            entry = pat.text;
        }
    }
};

// Exact address, then the longest prefix (an address ranks as a prefix of full length, just
// above a CIDR block of the same length).
best match_ip(const config::config& cfg, const ip_address& ip) {
    best b;
    for (const auto& p : cfg.profiles)
        for (const auto& h : p.hosts) {
            auto pat = parse_host_pattern(h);
            if (!pat || (pat->kind != pattern_kind::address && pat->kind != pattern_kind::prefix)) continue;
            if (!prefix_contains(pat->address, pat->prefix_len, ip)) continue;
            b.offer(p, *pat, 2 * std::size_t{pat->prefix_len} + (pat->kind == pattern_kind::address ? 2 : 1));
        }
    return b;
}

// Exact name, then the longest wildcard suffix.
best match_name(const config::config& cfg, std::string_view name, list_of list, parser parse) {
    best b;
    if (name.empty()) return b;
    for (const auto& p : cfg.profiles)
        for (const auto& e : p.*list) {
            auto pat = parse(e);
            if (!pat) continue;
            b.offer(p, *pat, name_match_rank(*pat, name));
        }
    return b;
}

best match_any(const config::config& cfg) {
    best b;
    for (const auto& p : cfg.profiles)
        for (const auto& h : p.hosts)
            if (h == "*") {
                b.profile = &p;
                b.entry = "*";
                return b;
            }
    return b;
}

profile_match found(const best& b, match_step step, std::string_view what, std::string_view fact,
                    std::string_view entry_kind) {
    profile_match m;
    m.profile = b.profile;
    m.step = step;
    m.entry = b.entry;
    m.rule = std::string(what) + " " + std::string(fact) + " matches " + std::string(entry_kind) + " " + b.entry +
             " of profile " + b.profile->name;
    if (step == match_step::any) m.rule += " (no other profile matches)";
    return m;
}

}  // namespace

std::string_view to_string(match_step s) {
    switch (s) {
        case match_step::none: return "none";
        case match_step::client_ip: return "client-ip";
        case match_step::client_name: return "client-name";
        case match_step::sender_domain: return "sender-domain";
        case match_step::recipient_domain: return "recipient-domain";
        case match_step::host_ip: return "host-ip";
        case match_step::host_name: return "host-name";
        case match_step::any: return "any";
    }
    return "?";
}

profile_match match_inbound(const config::config& cfg, const inbound_facts& facts) {
    const auto ip = parse_ip(facts.client_ip);
    const std::string ip_text = ip ? to_string(*ip) : facts.client_ip;
    if (ip)
        if (auto b = match_ip(cfg, *ip); b.profile) return found(b, match_step::client_ip, "client IP", ip_text, "host");
    const std::string name = facts.client_name ? normalise_name(*facts.client_name) : std::string();
    if (auto b = match_name(cfg, name, &config::profile_config::hosts, parse_host_pattern); b.profile)
        return found(b, match_step::client_name, "client name", name, "host");
    const std::string sender = facts.sender_domain ? normalise_name(*facts.sender_domain) : std::string();
    if (auto b = match_name(cfg, sender, &config::profile_config::sender_domains, parse_domain_pattern); b.profile)
        return found(b, match_step::sender_domain, "sender domain", sender, "sender domain");
    if (auto b = match_any(cfg); b.profile) return found(b, match_step::any, "client IP", ip_text, "host");

    profile_match m;
    m.rule = "no profile matches client IP " + ip_text;
    if (!name.empty()) m.rule += ", client name " + name;
    if (!sender.empty()) m.rule += ", sender domain " + sender;
    return m;
}

profile_match match_outbound(const config::config& cfg, const outbound_facts& facts) {
    const std::string domain = normalise_name(facts.recipient_domain);
    if (auto b = match_name(cfg, domain, &config::profile_config::recipient_domains, parse_domain_pattern); b.profile)
        return found(b, match_step::recipient_domain, "recipient domain", domain, "recipient domain");
    const auto ip = facts.host_ip ? parse_ip(*facts.host_ip) : std::nullopt;
    const std::string ip_text = ip ? to_string(*ip) : facts.host_ip.value_or("");
    if (ip)
        if (auto b = match_ip(cfg, *ip); b.profile) return found(b, match_step::host_ip, "destination IP", ip_text, "host");
    const std::string name = facts.host_name ? normalise_name(*facts.host_name) : std::string();
    if (auto b = match_name(cfg, name, &config::profile_config::hosts, parse_host_pattern); b.profile)
        return found(b, match_step::host_name, "destination host", name, "host");
    if (auto b = match_any(cfg); b.profile)
        return found(b, match_step::any, "recipient domain", domain, "host");

    profile_match m;
    m.rule = "no profile matches recipient domain " + domain;
    if (!name.empty()) m.rule += ", destination host " + name;
    if (!ip_text.empty()) m.rule += ", destination IP " + ip_text;
    return m;
}

client_name_use client_names_used(const config::config& cfg) {
    client_name_use use;
    for (const auto& p : cfg.profiles)
        for (const auto& h : p.hosts) {
            auto pat = parse_host_pattern(h);
            if (!pat || (pat->kind != pattern_kind::name && pat->kind != pattern_kind::wildcard_name)) continue;
            use.needed = true;
            if (p.inbound.tls == config::tls_mode::mandatory) use.mandatory = true;
        }
    return use;
}

}  // namespace postern::profile
