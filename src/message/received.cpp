// message/received.cpp - build the Received: header with the TLS facts (RFC 5321 4.4, 3848, 6531).
#include "message/received.hpp"

#include "smtp/address.hpp"
#include "smtp/text.hpp"

#include <ctime>
#include <utility>

#include <fmt/format.h>

namespace postern::message {

namespace {

// Non-ASCII characters a trace line must not show as they are: they are invisible, or move,
// hide or break what surrounds them, so a client could make the line read otherwise than it
// is (e.g. "x\u202E)...(" shown reversed). C1 controls; the format characters (Unicode
// category Cf, bidi controls among them); the other default-ignorable code points (fillers,
// variation selectors, tags); non-ASCII spaces and the line and paragraph separators.
// Sorted ranges (Unicode 15.1).
constexpr std::pair<char32_t, char32_t> hidden_ranges[] = {
    {0x0080, 0x00A0}, {0x00AD, 0x00AD},   {0x034F, 0x034F},   {0x0600, 0x0605},   {0x061C, 0x061C},
    {0x06DD, 0x06DD}, {0x070F, 0x070F},   {0x0890, 0x0891},   {0x08E2, 0x08E2},   {0x115F, 0x1160},
    {0x1680, 0x1680}, {0x17B4, 0x17B5},   {0x180B, 0x180F},   {0x2000, 0x200F},   {0x2028, 0x202F},
    {0x205F, 0x206F}, {0x3000, 0x3000},   {0x3164, 0x3164},   {0xFE00, 0xFE0F},   {0xFEFF, 0xFEFF},
    {0xFFA0, 0xFFA0}, {0xFFF0, 0xFFFB},   {0x110BD, 0x110BD}, {0x110CD, 0x110CD}, {0x13430, 0x1343F},
    {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0000, 0xE0FFF},
};

bool hidden(char32_t cp) {
    for (const auto& [lo, hi] : hidden_ranges) {
        if (cp < lo) return false;
        if (cp <= hi) return true;
    }
    return false;
}

// The character at s[i] and whether it may stand in the header as it is: a letter, a digit or
// one of `punct`; in an SMTPUTF8 message (RFC 6532) also valid UTF-8 that is not hidden()
// (found by review: raw octets reached the header unchecked). An octet that is not part of
// valid UTF-8 is a character of its own, never shown.
struct character {
    std::size_t size = 1;
    bool shown = false;
};
character next_character(std::string_view s, std::size_t i, bool utf8, std::string_view punct) {
    const auto u = static_cast<unsigned char>(s[i]);
    if (u < 0x80)
        return {1, (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                       punct.find(s[i]) != std::string_view::npos};
    char32_t cp = 0;
    const std::size_t n = utf8 ? smtp::utf8_sequence(s, i, &cp) : 0;
    if (n == 0) return {1, false};
    return {n, !hidden(cp)};
}

// A name from the client (the EHLO argument) or its DNS (the reverse name) in the header: at
// most a domain's 255 octets (RFC 5321 4.5.3.1.2), cut between characters, so the line stays
// within RFC 5322 2.1.1's 998 octets whatever the client sent (found by fuzz/headers). Like
// Postfix, only what a host name or an address literal is made of stays: letters, digits,
// "-._:[]", and UTF-8 as next_character() allows. Anything else (space, '(', ')', ';', control
// characters, hidden characters, invalid UTF-8) becomes '?', so a client cannot write clauses
// of its own into our trace, e.g. a plaintext client claiming "x (using TLSv1.3 ...) by mx
// (Postern) with ESMTPS id 0; <date>".
std::string header_name(std::string_view s, bool utf8) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        const character c = next_character(s, i, utf8, "-._:[]");
        const std::string_view piece = c.shown ? s.substr(i, c.size) : std::string_view("?");
        if (out.size() + piece.size() > 255) break;
        out += piece;
        i += c.size;
    }
    return out;
}

// The `for` clause only for a recipient made of what an unquoted address is made of (RFC 5322
// atext, '.', '@', an address literal's "[]:", UTF-8 in an SMTPUTF8 message as
// next_character() allows): a quoted local part may hold spaces, parentheses and ';', i.e.
// clauses of the client's own (found by review). The clause is optional (RFC 5321 4.4): such a
// recipient is left out, not rewritten.
bool plain_address(std::string_view s, bool utf8) {
    if (s.empty() || s.size() > 256) return false;
    for (std::size_t i = 0; i < s.size();) {
        const character c = next_character(s, i, utf8, "!#$%&'*+-/=?^_`{|}~.@[]:");
        if (!c.shown) return false;
        i += c.size;
    }
    return true;
}

// An EHLO name with U-labels as its A-labels (the same name), so that the header stays ASCII
// for a next hop without SMTPUTF8; as given when it has no A-label form.
std::string ascii_name(std::string_view name) {
    if (smtp::is_ascii(name)) return std::string(name);  // as written, case kept
    if (auto a = smtp::domain_to_ascii(name)) return std::move(a.value());
    return std::string(name);
}

}  // namespace

std::string rfc5322_date(long long unix_time) {
    std::time_t t = static_cast<std::time_t>(unix_time);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return buf;
}

std::string received_header(const received_facts& f) {
    // RFC 3848 registers ESMTPS but no "SMTPS": a session in TLS (STARTTLS is accepted after
    // HELO too, then HELO may be given again) is ESMTPS whatever greeting the client used.
    std::string with = f.smtputf8 ? "UTF8SMTP" : (f.esmtp || f.tls ? "ESMTP" : "SMTP");
    if (f.tls) with += "S";
    // TCP-info is an address literal (RFC 5321 4.4, 4.1.3): "[IPv6:...]" for IPv6, as Postfix.
    std::string h = fmt::format("Received: from {} ({} [{}{}])\r\n",
                                f.helo.empty() ? "unknown" : header_name(ascii_name(f.helo), f.smtputf8),
                                f.client_name.empty() ? "unknown" : header_name(f.client_name, f.smtputf8),
                                f.client_ip.find(':') != std::string_view::npos ? "IPv6:" : "", f.client_ip);
    if (f.tls)
        h += fmt::format("\t(using {} with cipher {} ({}/{} bits))\r\n", f.tls->version, f.tls->cipher, f.tls->bits,
                         f.tls->alg_bits);
    h += fmt::format("\tby {} (Postern) with {} id {}", f.by, with, f.id);
    // A recipient whose only non-ASCII part is its domain is written with the A-label (the
    // same name): then the header, like the envelope, is ASCII for a next hop without
    // SMTPUTF8 (smtp/client_session.cpp) instead of making the message need the extension.
    const auto rcpt = smtp::ascii_address(f.for_rcpt);
    const std::string_view for_rcpt = rcpt ? std::string_view(*rcpt) : f.for_rcpt;
    if (plain_address(for_rcpt, f.smtputf8)) h += fmt::format("\r\n\tfor <{}>", for_rcpt);
    h += fmt::format(";\r\n\t{}\r\n", rfc5322_date(f.unix_time));
    return h;
}

}  // namespace postern::message
