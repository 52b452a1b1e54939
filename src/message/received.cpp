// message/received.cpp - build the Received: header with the TLS facts (RFC 5321 4.4, 3848, 6531).
#include "message/received.hpp"

#include "smtp/address.hpp"
#include "smtp/text.hpp"

#include <ctime>

#include <fmt/format.h>

namespace postern::message {

namespace {

// A name from the client (the EHLO argument) or its DNS (the reverse name) in the header: at
// most a domain's 255 octets (RFC 5321 4.5.3.1.2), so the line stays within RFC 5322 2.1.1's
// 998 octets whatever the client sent (found by fuzz/headers). Like Postfix, only what a host
// name or an address literal is made of stays: letters, digits, "-._:[]"; 8-bit octets only
// in an SMTPUTF8 message (RFC 6532). Anything else (space, '(', ')', ';', control characters)
// becomes '?', so a client cannot write clauses of its own into our trace, e.g. a plaintext
// client claiming "x (using TLSv1.3 ...) by mx (Postern) with ESMTPS id 0; <date>".
std::string header_name(std::string_view s, bool utf8) {
    std::string out(s.substr(0, 255));
    for (char& c : out) {
        const auto u = static_cast<unsigned char>(c);
        const bool keep = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                          u == '-' || u == '.' || u == '_' || u == ':' || u == '[' || u == ']' ||
                          (u >= 0x80 && utf8);
        if (!keep) c = '?';
    }
    return out;
}

// The `for` clause only for a recipient made of what an unquoted address is made of (RFC 5322
// atext, '.', '@', an address literal's "[]:", 8-bit octets in an SMTPUTF8 message): a quoted
// local part may hold spaces, parentheses and ';', i.e. clauses of the client's own (found by
// review). The clause is optional (RFC 5321 4.4): such a recipient is left out, not rewritten.
bool plain_address(std::string_view s, bool utf8) {
    if (s.empty() || s.size() > 256) return false;
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        const bool ok = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                        std::string_view("!#$%&'*+-/=?^_`{|}~.@[]:").find(c) != std::string_view::npos ||
                        (u >= 0x80 && utf8);
        if (!ok) return false;
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
