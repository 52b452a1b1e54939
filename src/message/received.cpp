// message/received.cpp - build the Received: header with the TLS facts (RFC 5321 4.4, 3848, 6531).
#include "message/received.hpp"

#include <ctime>

#include <fmt/format.h>

namespace postern::message {

namespace {

// Text from the client (the EHLO argument) in a header field: at most a domain's 255 octets
// (RFC 5321 4.5.3.1.2), so the line stays within RFC 5322 2.1.1's 998 octets whatever the
// client sent (found by fuzz/headers); control characters, and 8-bit octets unless the
// message is SMTPUTF8 (RFC 6532), become '?'.
std::string header_text(std::string_view s, bool utf8) {
    std::string out(s.substr(0, 255));
    for (char& c : out) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || (u >= 0x80 && !utf8)) c = '?';
    }
    return out;
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
    std::string with = f.smtputf8 ? "UTF8SMTP" : (f.esmtp ? "ESMTP" : "SMTP");
    if (f.tls) with += "S";
    std::string h = fmt::format("Received: from {} ({} [{}])\r\n",
                                f.helo.empty() ? "unknown" : header_text(f.helo, f.smtputf8),
                                f.client_name.empty() ? "unknown" : header_text(f.client_name, f.smtputf8),
                                f.client_ip);
    if (f.tls)
        h += fmt::format("\t(using {} with cipher {} ({}/{} bits))\r\n", f.tls->version, f.tls->cipher, f.tls->bits,
                         f.tls->alg_bits);
    h += fmt::format("\tby {} (Postern) with {} id {}", f.by, with, f.id);
    if (!f.for_rcpt.empty()) h += fmt::format("\r\n\tfor <{}>", f.for_rcpt);
    h += fmt::format(";\r\n\t{}\r\n", rfc5322_date(f.unix_time));
    return h;
}

}  // namespace postern::message
