// profile/requirements.hpp - which recipients' resolved outbound policies one session and one
// transaction may serve together (SPEC §1.2-1.4). A recipient is delivered only under the policy
// resolved for its own domain and the host actually connected; recipients of several domains
// share a connection and a transaction only when their policies ask the same of the session.
// Pure: no I/O. outbound/attempt.cpp splits a transaction with it and keys its parked sessions.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "profile/policy.hpp"

namespace postern::profile {

// Everything a session is checked against under `p`, as one comparable string: the profile,
// the level, the minimum TLS version and cipher strength, the trust store, the pins (for
// fingerprint) and the names where the level checks them (ca+name; dane uses them too). Equal
// strings: a session that meets one policy meets the other.
// Left out: the names at the other levels (there they only decide whether the logged trust is
// "verified", which is judged for each recipient's own names, tls::trust_for_names), so that
// the mail of several domains to one smarthost stays one transaction (SPEC §3.4); and how the
// profile was found (step, why), which nothing enforces.
std::string session_requirements(const resolved_tls_policy& p);

// `policies` (one per item, in order) grouped by equal session_requirements: each group lists
// item indexes in order, the groups in the order of their first item. All equal: one group.
std::vector<std::vector<std::size_t>> group_by_requirements(const std::vector<resolved_tls_policy>& policies);

}  // namespace postern::profile
