// dns/answers.hpp - what a DNS lookup answered, as plain values (no Asio, no libunbound).
// The resolver (dns/resolver.hpp) produces these; delivery/route.cpp turns them into a
// delivery plan. Kept apart so the core library can read answers without including Asio.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace postern::dns {

// One MX record (RFC 1035 3.3.9). `host` is lower-case, without the trailing dot; the root
// name "." (a null MX, RFC 7505) is the empty string.
struct mx_record {
    std::uint16_t preference = 0;
    std::string host;
    friend bool operator==(const mx_record&, const mx_record&) = default;
};

enum class dns_status {
    ok,         // NOERROR with records of the asked type
    nxdomain,   // the name does not exist (RCODE 3), or is not a valid domain name
    nodata,     // the name exists, but has no records of the asked type
    temporary,  // SERVFAIL, REFUSED, timeout, network error: try again later
    bogus,      // DNSSEC validation failed (an attack, or a broken zone): never use the data
};

inline const char* to_string(dns_status s) {
    switch (s) {
    case dns_status::ok: return "ok";
    case dns_status::nxdomain: return "nxdomain";
    case dns_status::nodata: return "nodata";
    case dns_status::temporary: return "temporary";
    case dns_status::bogus: return "bogus";
    }
    return "?";
}

// The MX RRset of one domain, in the order the server gave it (delivery/route.cpp sorts).
// `secure`: the answer (or the proof of non-existence) was DNSSEC-validated. `error`: why it
// failed, for logs; it may also carry a note on an `ok` answer (a malformed record dropped).
// `ok` with no records: every record was malformed (`error` says so).
struct mx_answer {
    dns_status status = dns_status::temporary;
    std::vector<mx_record> records;
    bool secure = false;
    std::string error;
};

// The A and AAAA records of one host, as IP literals: IPv4 ones first, then IPv6.
// `ok` when either type has records; `secure` only when both answers were validated.
struct address_answer {
    dns_status status = dns_status::temporary;
    std::vector<std::string> addresses;
    bool secure = false;
    std::string error;
};

// The PTR records of one address (reverse DNS, RFC 1035 3.5): host names, lower-case, without
// the trailing dot, in the order the server gave them.
struct name_answer {
    dns_status status = dns_status::temporary;
    std::vector<std::string> names;
    bool secure = false;
    std::string error;
};

}  // namespace postern::dns
