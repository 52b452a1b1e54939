// message/received.hpp - the Received: trace header Postern prepends (RFC 5321 4.4, SPEC §2).
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "smtp/server_session.hpp"

namespace postern::message {

struct received_facts {
    std::string_view helo;
    std::string_view client_name;  // forward-confirmed reverse DNS, or "" = unknown
    std::string_view client_ip;
    std::string_view by;           // our hostname
    std::string_view id;           // queue id
    bool esmtp = true;
    bool smtputf8 = false;
    const smtp::tls_facts* tls = nullptr;
    std::string_view for_rcpt;     // only when there is exactly one recipient
    long long unix_time = 0;
};

// "Received: from helo (name [ip])\r\n\t(using TLSv1.3 with cipher X (256/256 bits))\r\n\tby ...".
// `with` is SMTP, ESMTP, ESMTPS, UTF8SMTP or UTF8SMTPS (RFC 3848, RFC 6531 4.3): ESMTPS for
// every session in TLS, HELO or EHLO (there is no registered "SMTPS"). The client's
// helo and name are cut to 255 octets (between characters), and every character but letters,
// digits and "-._:[]" (and, in an smtputf8 message, valid UTF-8 other than C1 controls, bidi
// and other format or invisible characters, and non-ASCII spaces) is shown as '?', as Postfix
// does: every line stays within 998 octets, and the client cannot forge clauses (TLS facts,
// `with`) of the header, nor reorder or hide what it shows. `for <rcpt>` is left out when the
// recipient is not a plain address (a quoted local part, such characters), for the same
// reason. An IPv6 client address is written "[IPv6:...]".
std::string received_header(const received_facts& f);

// RFC 5322 3.3 date-time in UTC: "Sat, 28 Nov 2026 14:21:10 +0000".
std::string rfc5322_date(long long unix_time);

}  // namespace postern::message
