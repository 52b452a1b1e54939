// smtp/address.hpp - parse SMTP paths (RFC 5321 4.1.2) and ESMTP parameters of MAIL/RCPT.
// Pure functions, no I/O. RFC 6531 (SMTPUTF8): UTF-8 in local part and domain.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace postern::smtp {

struct mailbox {
    std::string local;   // as sent, quotes preserved: "\"john doe\"" stays quoted
    std::string domain;  // as sent (may be an address literal "[192.0.2.1]"); empty only for <postmaster>
    bool utf8 = false;   // contains non-ASCII (needs SMTPUTF8)

    std::string str() const;           // local@domain (or local when domain is empty)
    std::string domain_lower() const;  // ASCII lower-case of domain
};

// A reverse-path or forward-path: "<>" (null, only when allow_null), "<a@b>",
// "<@r1,@r2:a@b>" (source route accepted and ignored, RFC 5321 4.1.2 / C).
// Errors: "syntax", missing brackets, empty local part, bad domain, non-ASCII without utf8_allowed,
// longer than 256 octets (RFC 5321 4.5.3.1.3), local part > 64 octets (4.5.3.1.1).
// `postmaster_ok`: accept "<Postmaster>" without a domain (RCPT only, RFC 5321 4.1.1.3).
struct path {
    bool null = false;  // "<>"
    mailbox box;
};
result<path> parse_path(std::string_view text, bool allow_null, bool utf8_allowed, bool postmaster_ok);

// Where the path that starts `text` ends: the index one past its closing '>' (a '>' inside a
// quoted local part does not count), or nullopt when `text` does not start with '<' or the
// path is unterminated. Used to split "MAIL FROM:<path> PARAMS".
std::optional<std::size_t> path_end(std::string_view text);

// "KEY=VALUE KEY2" after the path; keys are upper-cased, values kept as sent.
struct esmtp_param {
    std::string key;
    std::string value;  // empty when no "="
    bool has_value = false;
};
result<std::vector<esmtp_param>> parse_params(std::string_view text);

// True when `domain` is a syntactically valid domain name (or, with utf8, a U-label domain)
// or an address literal ("[192.0.2.1]", "[IPv6:::1]").
bool valid_domain(std::string_view domain, bool utf8_allowed);

}  // namespace postern::smtp
