// profile/requirements.cpp - compare resolved outbound policies by what a session must meet.
#include "profile/requirements.hpp"

#include <map>

namespace postern::profile {

namespace {

// "<length>:<value>;": no value can run into the next field, whatever characters it holds.
void field(std::string& key, std::string_view value) {
    key += std::to_string(value.size());
    key += ':';
    key += value;
    key += ';';
}

// The names a session is checked against at this level (see the header).
bool names_checked(tls_level l) { return requires_name_match(l) || l == tls_level::dane; }

}  // namespace

std::string session_requirements(const resolved_tls_policy& p) {
    std::string key;
    field(key, p.profile);
    field(key, to_string(p.level));
    field(key, config::to_string(p.min_version));
    field(key, std::to_string(p.min_cipher_bits));
    field(key, p.ca_file);
    if (uses_pins(p.level)) {
        field(key, "pins " + std::to_string(p.fingerprints.size()));
        for (const auto& f : p.fingerprints) field(key, f);
    }
    if (names_checked(p.level)) {
        field(key, "names " + std::to_string(p.names.size()));
        for (const auto& n : p.names) field(key, n);
    }
    return key;
}

std::vector<std::vector<std::size_t>> group_by_requirements(const std::vector<resolved_tls_policy>& policies) {
    std::vector<std::vector<std::size_t>> groups;
    std::map<std::string, std::size_t> group_of;  // session_requirements -> index in groups
    for (std::size_t i = 0; i < policies.size(); ++i) {
        auto [it, fresh] = group_of.try_emplace(session_requirements(policies[i]), groups.size());
        if (fresh) groups.emplace_back();
        groups[it->second].push_back(i);
    }
    return groups;
}

}  // namespace postern::profile
