// profile/policy.cpp - derive the TLS level and requirements for one connection
// SPEC §1.2: a profile's tls overrides the global switch; mandatory wins over
// tls.opportunistic = false, "none" turns TLS off. Pure: no I/O.
#include "profile/policy.hpp"

#include <algorithm>

#include "profile/pattern.hpp"

namespace postern::profile {

namespace {

tls_level mandatory_level(config::verify_level v) {
    switch (v) {
        case config::verify_level::none: return tls_level::encrypt;
        case config::verify_level::ca: return tls_level::ca;
        case config::verify_level::ca_name: return tls_level::ca_name;
        case config::verify_level::fingerprint: return tls_level::fingerprint;
        case config::verify_level::dane: return tls_level::dane;
    }
    return tls_level::encrypt;
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// The level for one direction; appends the derivation to `why`.
tls_level derive(const config::config& cfg, const config::profile_config* p, const config::tls_requirements* req,
                 std::string_view direction, std::string& why) {
    const std::string global = std::string("tls.opportunistic = ") + (cfg.tls.opportunistic ? "true" : "false");
    const tls_level by_global = cfg.tls.opportunistic ? tls_level::may : tls_level::none;
    if (!p) {
        why += "; " + global + " -> " + std::string(to_string(by_global));
        return by_global;
    }
    const std::string key = std::string(direction) + " tls";
    switch (req->tls) {
        case config::tls_mode::global:
            why += "; " + key + " not set, " + global + " -> " + std::string(to_string(by_global));
            return by_global;
        case config::tls_mode::opportunistic:
            why += "; " + key + " = \"opportunistic\" -> may";
            return tls_level::may;
        case config::tls_mode::none:
            why += "; " + key + " = \"none\" -> none";
            return tls_level::none;
        case config::tls_mode::mandatory: {
            const tls_level l = mandatory_level(req->verify);
            why += "; " + key + " = \"mandatory\", verify = " + quoted(config::to_string(req->verify)) + " -> " +
                   std::string(to_string(l));
            return l;
        }
    }
    return by_global;
}

void add_unique(std::vector<std::string>& v, std::string s) {
    if (!s.empty() && std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
}

resolved_tls_policy build(const config::config& cfg, const profile_match& m, bool outbound) {
    resolved_tls_policy r;
    r.step = m.step;
    r.why = m.rule;
    const config::tls_requirements* req = nullptr;
    if (m.profile) {
        r.profile = m.profile->name;
        req = outbound ? &m.profile->outbound : &m.profile->inbound;
    }
    r.level = derive(cfg, m.profile, req, outbound ? "outbound" : "inbound", r.why);
    r.ca_file = cfg.tls.ca_file;
    if (req) {
        // Requirements that do not apply at this level are not carried: the sessions may
        // read every field without re-deriving what the level allows.
        if (requires_tls(r.level) || r.level == tls_level::may) {
            r.min_version = req->min_tls_version;
            r.min_cipher_bits = req->min_cipher_bits;
        }
        if (uses_pins(r.level)) r.fingerprints = req->fingerprints;
        if (!req->ca_file.empty()) r.ca_file = req->ca_file;
        if (r.level >= tls_level::encrypt)
            for (const auto& n : req->peer_names) add_unique(r.names, n);
    }
    return r;
}

}  // namespace

std::string_view to_string(tls_level level) {
    switch (level) {
        case tls_level::none: return "none";
        case tls_level::may: return "may";
        case tls_level::encrypt: return "encrypt";
        case tls_level::ca: return "ca";
        case tls_level::ca_name: return "ca+name";
        case tls_level::fingerprint: return "fingerprint";
        case tls_level::dane: return "dane";
    }
    return "?";
}

resolved_tls_policy resolve_outbound(const config::config& cfg, const outbound_facts& facts) {
    resolved_tls_policy r = build(cfg, match_outbound(cfg, facts), true);
    if (r.names.empty() && r.level != tls_level::none) {
        // SPEC §1.3: by default the certificate must name the MX host or the recipient
        // domain (the reference identifiers of RFC 7672 3.2.2).
        if (facts.host_name) add_unique(r.names, normalise_name(*facts.host_name));
        add_unique(r.names, normalise_name(facts.recipient_domain));
    }
    return r;
}

resolved_tls_policy resolve_inbound(const config::config& cfg, const inbound_facts& facts) {
    return build(cfg, match_inbound(cfg, facts), false);
}

tls_level inbound_level(const config::config& cfg, const config::profile_config* p) {
    std::string why;
    return derive(cfg, p, p ? &p->inbound : nullptr, "inbound", why);
}

bool relay_allowed(const config::config& cfg, const inbound_facts& facts) {
    inbound_facts by_connection = facts;
    by_connection.sender_domain.reset();
    const profile_match m = match_inbound(cfg, by_connection);
    return m.profile && m.profile->relay == config::profile_config::relay_mode::any;
}

}  // namespace postern::profile
