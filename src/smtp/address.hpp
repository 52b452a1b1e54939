// smtp/address.hpp - parse SMTP paths (RFC 5321 4.1.2) and ESMTP parameters of MAIL/RCPT;
// the A-label form of a domain for matching and routing (RFC 5890, RFC 6531 3.2).
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
    // domain_to_ascii(domain), computed once when the path is parsed; empty for <postmaster>
    // and for a mailbox built by hand (domain_lower() then computes it).
    std::string ascii_domain;
    bool utf8 = false;   // contains non-ASCII (needs SMTPUTF8)

    std::string str() const;  // local@domain (or local when domain is empty): the address as written
    // The domain every matcher and router compares (hosted domains, profiles, routes, MX):
    // lower-case, U-labels as A-labels ("B\u00fccher.TEST" -> "xn--bcher-kva.test"), since both
    // forms name the same domain (RFC 6531 3.2). A domain without an A-label form (only a
    // hand-built mailbox can have one) comes back ASCII-lower-cased, matching nothing configured.
    std::string domain_lower() const;
};

// The well-formed UTF-8 character (RFC 3629 4) starting at s[i], whose lead octet is
// non-ASCII: its length in octets, 0 when it is malformed (overlong, surrogate, truncated,
// past U+10FFFF); when well-formed and `cp` is given, *cp is its code point.
std::size_t utf8_sequence(std::string_view s, std::size_t i, char32_t* cp = nullptr);

// Characters that change how the text around them is shown without being seen themselves:
// the C0 and C1 controls, DEL, the line and paragraph separators (U+2028, U+2029), the
// bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A..U+202E,
// U+2066..U+2069: they reorder what follows, as in CVE-2021-42574) and U+FEFF. Logs and
// `postern queue` escape them; a maildir folder name may not hold them.
bool is_invisible_control(char32_t cp);

// The lower-case A-label form of a domain (RFC 5890 2.3.2.1): what DNS, certificates and the
// configuration use. ASCII names and address literals are only lower-cased (an ASCII "xn--"
// label is taken as written). A name with U-labels is converted with libidn2: IDNA2008 with
// UTS #46 non-transitional processing of NFC input, so upper-case letters and the other
// ideographic full stops map as resolvers map them ("B\u00dcCHER\uff0etest" ->
// "xn--bcher-kva.test"). Errors (with libidn2's reason): a disallowed code point ("\u2603"),
// a bad bidi or joiner context, a label over 63 octets once converted, or a result that is not
// an LDH host name.
result<std::string> domain_to_ascii(std::string_view domain);

// An address ("local@domain", without brackets) for a peer without SMTPUTF8 (RFC 6531 3.2):
// an ASCII address as it is; one whose only non-ASCII part is the domain with the domain as
// its A-label (the same name, RFC 5890); nullopt when the local part is not ASCII or the
// domain has no A-label form. The local part may be quoted and hold an '@'.
std::optional<std::string> ascii_address(std::string_view addr);

// A local part as the mailbox it names (RFC 5321 4.1.2, RFC 5322 3.2.4: the quoting is not part
// of it): "\"bob\"" and "bob" both give "bob", "\"a\\\"b\"" gives "a\"b"; an unquoted local
// part as it is. Case is kept (RFC 5321 2.4: a local part may be case-sensitive).
std::string unquote_local_part(std::string_view local);

// A reverse-path or forward-path: "<>" (null, only when allow_null), "<a@b>",
// "<@r1,@r2:a@b>" (source route accepted and ignored, RFC 5321 4.1.2 / C).
// Errors: "syntax", missing brackets, empty local part, bad domain, non-ASCII without utf8_allowed,
// longer than 256 octets (RFC 5321 4.5.3.1.3). The local part has no limit of its own: RFC
// 5321 4.5.3.1 asks receivers to accept longer ones "to the maximum extent possible", and
// SRS/BATV/VERP senders exceed the 64 octets of 4.5.3.1.1 (Postfix and Exim accept them).
// `postmaster_ok`: accept "<Postmaster>" without a domain (RCPT only, RFC 5321 4.1.1.3).
// A syntactically valid path is returned even when its domain has no A-label form:
// box.ascii_domain is then empty and `idna_error` says why (the session refuses it with its
// own reply code, 553, rather than as a syntax error).
struct path {
    bool null = false;  // "<>"
    mailbox box;
    std::string idna_error;  // domain_to_ascii(box.domain) failed: its message
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
