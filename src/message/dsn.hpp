// message/dsn.hpp - delivery status notifications: bounces and delay warnings (SPEC §3.5).
// A pure function from delivery facts to a complete RFC 5322 message: multipart/report
// (RFC 6522) with a human-readable part, message/delivery-status (RFC 3464) and the original
// header section; RFC 6533 global types for SMTPUTF8 mail; Auto-Submitted (RFC 3834).
//
// What is returned: only the original message's header section, never its body: a bounce
// goes to an envelope sender that may be forged (backscatter), and the body is both private
// and the bulk of the size. The header section is enough to identify the message.
//
// Everything taken from the queue or from a remote server (addresses, replies, headers) is
// sanitised: CR, LF and other control characters never reach the output except as the line
// structure we write, every line ends in CRLF and is at most 998 octets (RFC 5322 2.1.1).
// The content is not dot-stuffed; that is the SMTP client's job.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::message {

struct dsn_recipient {
    std::string address;
    std::string action;      // "failed" | "delayed"; anything else is reported as "failed"
    std::string status;      // "5.1.1"; malformed -> "5.0.0" (failed) / "4.0.0" (delayed)
    std::string remote_mta;  // "mx.example.test", or "" when no remote MTA was involved
    std::string diagnostic;  // the remote reply "550 5.1.1 <x>: unknown user", or a local reason
    bool diagnostic_is_smtp = true;  // "Diagnostic-Code: smtp; ..." vs "X-Postern; ..."
    // Postern's own words next to a remote reply (why the message was given up: "message
    // expired after 432000s in the queue"): in the human-readable part only, never in an
    // `smtp` Diagnostic-Code, which carries what the remote MTA said (RFC 3464 2.3.6).
    std::string note;
    std::int64_t last_attempt = 0;   // unix time; 0 = no Last-Attempt-Date field
};

struct dsn_input {
    std::string reporting_mta;  // our hostname
    std::string queue_id;
    std::string original_sender;
    std::int64_t arrival = 0;   // unix time; 0 = no Arrival-Date field
    std::int64_t now = 0;       // Date:, and the delay shown in a warning
    std::vector<dsn_recipient> recipients;
    std::string_view original_content;  // the queued content, CRLF
    bool smtputf8 = false;      // the original was received with SMTPUTF8
};

struct dsn_message {
    std::string sender;     // always "": DSNs use the null reverse-path (RFC 5321 4.5.5)
    std::string recipient;  // the original envelope sender, verbatim
    std::string content;    // CRLF, every line <= 998 octets, not dot-stuffed
    // The content or recipient contains non-ASCII octets: send with SMTPUTF8 (RFC 6531),
    // which also covers the 8bit parts. False means the whole message is 7-bit ASCII.
    bool smtputf8 = false;
    // The content has 8-bit octets: send with BODY=8BITMIME (RFC 6152). Only a global report
    // (RFC 6533) can; a plain one is 7-bit and goes to any server, even one without 8BITMIME.
    bool eight_bit = false;
};

// The notification for `in`, or nullopt when there is nobody to notify or nothing to say:
// the original sender is null ("" or "<>": never bounce a bounce, RFC 5321 4.5.5 / 6.1,
// RFC 3464 2) or there are no recipients (RFC 3464 needs at least one per-recipient group).
//
// Subject is "Delayed Mail (still being retried)" when every recipient is delayed, else
// "Undelivered Mail Returned to Sender"; the text part lists failed and delayed recipients
// separately. Internationalisation (RFC 6533): when the original was SMTPUTF8 or an address
// is non-ASCII, the report uses message/global-delivery-status and message/global-headers,
// non-ASCII addresses are given as "utf-8; <address>" and UTF-8 text is kept; otherwise the
// report is 7-bit ASCII and any stray non-ASCII octet is replaced with '?'.
std::optional<dsn_message> make_dsn(const dsn_input& in);

// A remote reply is joined into one line (RFC 3464 2.3.6 *text; multi-line replies joined
// with single spaces, as Postfix does) and cut to this many octets, then folded.
constexpr std::size_t max_diagnostic_octets = 4096;
// At most this much of the original header section is returned (whole lines): Postfix's
// header_size_limit. The server's own limits normally keep headers far below it.
constexpr std::size_t max_returned_header_octets = 102400;

}  // namespace postern::message
