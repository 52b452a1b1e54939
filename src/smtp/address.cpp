// smtp/address.cpp - parse SMTP reverse/forward paths and MAIL/RCPT ESMTP parameters; convert
// domains to their A-label form (libidn2).
// RFC 5321 4.1.2 (path grammar), 4.1.3 (address literals), 4.1.1.3 (<Postmaster>),
// 4.5.3.1 (size limits), RFC 6531 3.2/3.3 (UTF-8 in mailboxes and esmtp-values, U-labels and
// A-labels name the same domain), RFC 5890/5891 (IDNA2008), UTS #46.
// Strict grammar on purpose: what we accept here is what we later write into the spool, logs
// and the next hop's envelope, so anything outside the RFC grammar is refused up front.
#include "smtp/address.hpp"

#include "smtp/text.hpp"

#include <idn2.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace postern::smtp {
namespace {

bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_let_dig(unsigned char c) { return is_alpha(c) || is_digit(c); }
bool is_hex(unsigned char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 5322 3.2.3 atext, as used by RFC 5321 4.1.2 Atom.
bool is_atext(unsigned char c) {
    if (is_let_dig(c)) return true;
    switch (c) {
        case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
        case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
        case '|': case '}': case '~':
            return true;
        default:
            return false;
    }
}

std::string ascii_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
    return out;
}

bool has_non_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return true;
    return false;
}

// RFC 5321 4.1.2 Dot-string = Atom *("." Atom); RFC 6531 3.3: atext =/ UTF8-non-ascii.
bool valid_dot_string(std::string_view s) {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '.') {
            if (s[i + 1] == '.') return false;  // empty atom; s.back() != '.' keeps i+1 in range
            ++i;
        } else if (c >= 0x80) {
            const std::size_t n = utf8_sequence(s, i);
            if (n == 0) return false;
            i += n;
        } else if (is_atext(c)) {
            ++i;
        } else {
            return false;
        }
    }
    return true;
}

// RFC 5321 4.1.2 Quoted-string at the start of `s`; returns its length including both quotes,
// or 0. qtextSMTP = %d32-33 / %d35-91 / %d93-126 (=/ UTF8-non-ascii, RFC 6531 3.3),
// quoted-pairSMTP = "\" %d32-126.
std::size_t quoted_string_length(std::string_view s) {
    if (s.empty() || s[0] != '"') return 0;
    for (std::size_t i = 1; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '"') return i + 1;
        if (c == '\\') {
            if (i + 1 >= s.size()) return 0;
            const auto e = static_cast<unsigned char>(s[i + 1]);
            if (e < 32 || e > 126) return 0;
            i += 2;
        } else if (c >= 0x80) {
            const std::size_t n = utf8_sequence(s, i);
            if (n == 0) return 0;
            i += n;
        } else if (c >= 32 && c <= 126) {
            ++i;
        } else {
            return 0;  // control characters are never allowed, quoted or not
        }
    }
    return 0;  // unbalanced quote
}

// RFC 5321 4.1.2 sub-domain = Let-dig [Ldh-str]; RFC 6531 3.3: sub-domain =/ U-label
// (checked here only as well-formed UTF-8 letters/digits/hyphens; IDNA validity is the
// resolver's business). RFC 1035 2.3.4: 63 octets per ASCII label.
bool valid_label(std::string_view l, bool utf8_allowed) {
    if (l.empty() || l.front() == '-' || l.back() == '-') return false;
    bool ascii = true;
    for (std::size_t i = 0; i < l.size();) {
        const auto c = static_cast<unsigned char>(l[i]);
        if (c >= 0x80) {
            if (!utf8_allowed) return false;
            const std::size_t n = utf8_sequence(l, i);
            if (n == 0) return false;
            ascii = false;
            i += n;
        } else if (is_let_dig(c) || c == '-') {
            ++i;
        } else {
            return false;
        }
    }
    return !ascii || l.size() <= 63;
}

bool valid_dns_domain(std::string_view d, bool utf8_allowed) {
    if (d.empty() || d.size() > 255) return false;  // RFC 5321 4.5.3.1.2
    std::size_t start = 0;
    for (;;) {
        const std::size_t dot = d.find('.', start);
        if (!valid_label(d.substr(start, dot - start), utf8_allowed)) return false;
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

// RFC 5321 4.1.3 Snum = 1*3DIGIT (0..255); IPv4-address-literal = Snum 3("." Snum).
bool valid_ipv4(std::string_view s) {
    int parts = 0;
    std::size_t i = 0;
    for (;;) {
        std::size_t n = 0;
        unsigned v = 0;
        while (i < s.size() && is_digit(static_cast<unsigned char>(s[i])) && n < 4) {
            v = v * 10 + static_cast<unsigned>(s[i] - '0');
            ++i;
            ++n;
        }
        if (n == 0 || n > 3 || v > 255) return false;
        if (++parts == 4) return i == s.size();
        if (i >= s.size() || s[i] != '.') return false;
        ++i;
    }
}

// Groups of 1*4HEXDIG separated by ':' ; the last one may be an IPv4 address (counts 2).
// Returns the number of 16-bit groups, or -1.
int ipv6_groups(std::string_view s, bool v4_allowed) {
    if (s.empty()) return 0;
    int groups = 0;
    std::size_t start = 0;
    for (;;) {
        const std::size_t colon = s.find(':', start);
        const std::string_view g = s.substr(start, colon - start);
        if (colon == std::string_view::npos && v4_allowed && g.find('.') != std::string_view::npos)
            return valid_ipv4(g) ? groups + 2 : -1;
        if (g.empty() || g.size() > 4) return -1;
        for (unsigned char c : g)
            if (!is_hex(c)) return -1;
        ++groups;
        if (colon == std::string_view::npos) return groups;
        start = colon + 1;
    }
}

// RFC 5321 4.1.3 IPv6-addr: IPv6-full / IPv6-comp / IPv6v4-full / IPv6v4-comp.
// With "::", no more than 6 explicit groups (IPv4 counting as 2) besides it.
bool valid_ipv6(std::string_view s) {
    const std::size_t dc = s.find("::");
    if (dc == std::string_view::npos) return ipv6_groups(s, true) == 8;
    if (s.find("::", dc + 1) != std::string_view::npos) return false;
    const int left = ipv6_groups(s.substr(0, dc), false);
    const int right = ipv6_groups(s.substr(dc + 2), true);
    return left >= 0 && right >= 0 && left + right <= 6;
}

// RFC 5321 4.1.3 address-literal = "[" ( IPv4 / IPv6 / General-address-literal ) "]".
bool valid_address_literal(std::string_view s) {
    if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
    const std::string_view in = s.substr(1, s.size() - 2);
    if (in.size() >= 5 && iequals(in.substr(0, 5), "IPv6:")) return valid_ipv6(in.substr(5));
    if (is_digit(static_cast<unsigned char>(in[0])) && valid_ipv4(in)) return true;
    // General-address-literal = Standardized-tag ":" 1*dcontent; dcontent = %d33-90 / %d94-126
    const std::size_t colon = in.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == in.size()) return false;
    const std::string_view tag = in.substr(0, colon);
    if (!is_let_dig(static_cast<unsigned char>(tag.back()))) return false;
    for (unsigned char c : tag)
        if (!is_let_dig(c) && c != '-') return false;
    // '"' and '>' are dcontent by the grammar, but path_end() (MAIL FROM:<...> framing, as in
    // other MTAs) takes '"' for a quoted local part and ends the path at the first '>' outside
    // one: such a path could never arrive through our own framing and would be misframed by
    // the next hop's (found by fuzz/address).
    for (unsigned char c : in.substr(colon + 1))
        if (c < 33 || c > 126 || (c >= 91 && c <= 93) || c == '"' || c == '>') return false;
    return true;
}

}  // namespace

std::size_t utf8_sequence(std::string_view s, std::size_t i, char32_t* cp) {
    auto at = [&](std::size_t k) -> unsigned {
        return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0x100;
    };
    auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
        unsigned c = at(k);
        return c >= lo && c <= hi;
    };
    const unsigned c = at(0);
    std::size_t n = 0;
    if (c >= 0xC2 && c <= 0xDF) n = cont(1) ? 2 : 0;
    else if (c == 0xE0) n = cont(1, 0xA0, 0xBF) && cont(2) ? 3 : 0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) n = cont(1) && cont(2) ? 3 : 0;
    else if (c == 0xED) n = cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
    else if (c == 0xF0) n = cont(1, 0x90, 0xBF) && cont(2) && cont(3) ? 4 : 0;
    else if (c >= 0xF1 && c <= 0xF3) n = cont(1) && cont(2) && cont(3) ? 4 : 0;
    else if (c == 0xF4) n = cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
    if (n != 0 && cp != nullptr) {
        *cp = c & (0x7Fu >> n);  // the lead octet's payload: 5, 4 or 3 bits
        for (std::size_t k = 1; k < n; ++k) *cp = (*cp << 6) | (at(k) & 0x3Fu);
    }
    return n;
}

bool is_invisible_control(char32_t cp) {
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || cp == 0x061C ||
           cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) ||
           cp == 0xFEFF;
}

std::string unquote_local_part(std::string_view local) {
    if (local.size() < 2 || local.front() != '"' || local.back() != '"') return std::string(local);
    std::string out;
    for (std::size_t i = 1; i + 1 < local.size(); ++i) {
        if (local[i] == '\\' && i + 2 < local.size()) ++i;  // quoted-pairSMTP: the next octet as it is
        out += local[i];
    }
    return out;
}

std::string mailbox::str() const { return domain.empty() ? local : local + "@" + domain; }

std::string mailbox::domain_lower() const {
    if (!ascii_domain.empty()) return ascii_domain;
    if (auto a = domain_to_ascii(domain)) return std::move(*a);
    return ascii_lower(domain);
}

result<std::string> domain_to_ascii(std::string_view domain) {
    if (is_ascii(domain)) return ascii_lower(domain);
    // Only here does a U-label become an A-label, for both directions: the inbound matchers
    // (through mailbox::domain_lower) and outbound routing (delivery::decide_route) see the
    // same name, so no spelling of a domain can select a different profile or route than
    // the one its mail is delivered by. NFC input + non-transitional UTS #46, as resolvers
    // do; the mapping also lower-cases.
    // libidn2 reads a C string: a NUL would have it convert only what precedes it.
    if (domain.find('\0') != std::string_view::npos) return error{"NUL in domain"};
    char* out = nullptr;
    const std::string in(domain);
    const int rc = ::idn2_to_ascii_8z(in.c_str(), &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    const std::unique_ptr<char, decltype(&std::free)> owned(out, &std::free);
    if (rc != IDN2_OK) return error{::idn2_strerror(rc)};
    std::string a = ascii_lower(out);
    // UTS #46 maps some characters to ASCII that no host name may hold ("\uff0f" -> "/"):
    // what leaves here must be a plain LDH name (RFC 5890 2.3.2.1).
    if (!valid_dns_domain(a, false)) return error{"string maps to characters a host name cannot hold"};
    return a;
}

std::optional<std::string> ascii_address(std::string_view addr) {
    if (is_ascii(addr)) return std::string(addr);
    const auto at = addr.rfind('@');
    if (at == std::string_view::npos || !is_ascii(addr.substr(0, at))) return std::nullopt;
    auto domain = domain_to_ascii(addr.substr(at + 1));
    if (!domain) return std::nullopt;
    return std::string(addr.substr(0, at + 1)) + domain.value();
}

bool valid_domain(std::string_view domain, bool utf8_allowed) {
    if (!domain.empty() && domain.front() == '[') return valid_address_literal(domain);
    return valid_dns_domain(domain, utf8_allowed);
}

std::optional<std::size_t> path_end(std::string_view text) {
    if (text.empty() || text[0] != '<') return std::nullopt;
    bool quoted = false;
    for (std::size_t i = 1; i < text.size(); ++i) {
        const char c = text[i];
        if (quoted) {
            if (c == '\\') ++i;  // quoted-pairSMTP: the next octet is literal
            else if (c == '"') quoted = false;
        } else if (c == '"') {
            quoted = true;
        } else if (c == '>') {
            return i + 1;
        }
    }
    return std::nullopt;
}

result<path> parse_path(std::string_view text, bool allow_null, bool utf8_allowed,
                        bool postmaster_ok) {
    // RFC 5321 4.5.3.1.3: a path is at most 256 octets, punctuation included.
    if (text.size() > 256) return error{"path longer than 256 octets"};
    if (text.size() < 2 || text.front() != '<' || text.back() != '>')
        return error{"path must be enclosed in <>"};
    std::string_view in = text.substr(1, text.size() - 2);
    path p;
    if (in.empty()) {  // RFC 5321 4.1.1.2: "<>" is the null reverse-path
        if (!allow_null) return error{"null path not allowed"};
        p.null = true;
        return p;
    }
    if (in[0] == '@') {
        // RFC 5321 4.1.2 A-d-l = At-domain *( "," At-domain ) ":" ; accepted and ignored
        // (Appendix C: source routes SHOULD be ignored).
        const std::size_t colon = in.find(':');
        if (colon == std::string_view::npos) return error{"bad source route"};
        std::string_view route = in.substr(0, colon);
        for (;;) {
            const std::size_t comma = route.find(',');
            const std::string_view at_domain = route.substr(0, comma);
            if (at_domain.size() < 2 || at_domain[0] != '@' ||
                !valid_dns_domain(at_domain.substr(1), true))
                return error{"bad source route"};
            if (comma == std::string_view::npos) break;
            route.remove_prefix(comma + 1);
        }
        in.remove_prefix(colon + 1);
        if (in.empty()) return error{"empty mailbox after source route"};
    } else if (postmaster_ok && iequals(in, "postmaster")) {
        p.box.local = std::string(in);  // RFC 5321 4.1.1.3: <Postmaster> without a domain
        return p;
    }

    // RFC 5321 4.1.2 Mailbox = Local-part "@" ( Domain / address-literal )
    std::size_t at;
    if (in[0] == '"') {
        at = quoted_string_length(in);
        if (at == 0) return error{"bad quoted local part"};
        if (at >= in.size() || in[at] != '@') return error{"missing @domain"};
    } else {
        at = in.find('@');
        if (at == std::string_view::npos) return error{"missing @domain"};
        if (at == 0) return error{"empty local part"};
        if (!valid_dot_string(in.substr(0, at))) return error{"bad local part"};
    }
    const std::string_view local = in.substr(0, at);
    const std::string_view domain = in.substr(at + 1);
    // No limit on the local part beyond the path's 256 octets (see address.hpp).
    if (domain.empty()) return error{"empty domain"};
    if (!valid_domain(domain, true)) return error{"bad domain"};
    p.box.local = std::string(local);
    p.box.domain = std::string(domain);
    p.box.utf8 = has_non_ascii(local) || has_non_ascii(domain);
    if (p.box.utf8 && !utf8_allowed) return error{"non-ASCII address requires SMTPUTF8"};
    // RFC 6531 3.2: the A-label form, once, for every later comparison and route.
    if (auto a = domain_to_ascii(domain)) p.box.ascii_domain = std::move(*a);
    else p.idna_error = a.error_message();
    return p;
}

result<std::vector<esmtp_param>> parse_params(std::string_view text) {
    std::vector<esmtp_param> out;
    std::size_t i = 0;
    for (;;) {
        while (i < text.size() && text[i] == ' ') ++i;  // RFC 5321 4.1.2: params are SP-separated
        if (i == text.size()) return out;
        const std::size_t end = std::min(text.find(' ', i), text.size());
        const std::string_view tok = text.substr(i, end - i);
        i = end;
        const std::size_t eq = tok.find('=');
        const std::string_view key = tok.substr(0, eq);
        // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
        if (key.empty() || !is_let_dig(static_cast<unsigned char>(key[0])))
            return error{"bad parameter keyword"};
        esmtp_param p;
        for (unsigned char c : key) {
            if (!is_let_dig(c) && c != '-') return error{"bad parameter keyword"};
            p.key += static_cast<char>(c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c);
        }
        if (eq != std::string_view::npos) {
            // esmtp-value = 1*(%d33-60 / %d62-126), =/ UTF8-non-ascii (RFC 6531 3.3)
            const std::string_view v = tok.substr(eq + 1);
            if (v.empty()) return error{"empty parameter value"};
            for (std::size_t k = 0; k < v.size();) {
                const auto c = static_cast<unsigned char>(v[k]);
                if (c >= 0x80) {
                    const std::size_t n = utf8_sequence(v, k);
                    if (n == 0) return error{"bad parameter value"};
                    k += n;
                } else if (c >= 33 && c <= 126 && c != '=') {
                    ++k;
                } else {
                    return error{"bad parameter value"};
                }
            }
            p.value = std::string(v);
            p.has_value = true;
        }
        out.push_back(std::move(p));
    }
}

}  // namespace postern::smtp
