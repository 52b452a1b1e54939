// message/headers.hpp - read-only views of a queued message's header section (RFC 5322 2.1, 3.6).
// Used to return only the headers in a bounce (message/dsn.cpp), to detect mail loops by
// counting Received: fields (RFC 5321 6.3; Postfix hopcount_limit) and to tell whether a
// message needs SMTPUTF8 for UTF-8 in its headers (smtp/client_session.cpp, RFC 6531 3.2).
#pragma once
#include <cstddef>
#include <string_view>

namespace postern::message {

// The header section of a CRLF message (RFC 5322 2.1, 2.2; as Postfix reads it): its leading
// header fields and their folded continuations, up to the first line that is neither, which is
// normally the empty line, or all of the content when every line is one. A header field line
// starts with a field-name (1*ftext: printable US-ASCII but ':') and ':', optionally with
// spaces or tabs between them (RFC 5322 4.5 obsolete syntax, which Postfix accepts too); a
// continuation starts with a space or tab and follows a field line or another continuation.
// So a message without the empty line after its headers ("Subject: x\r\nbody\r\n") ends its
// header section at the first body line, and one whose first line is not a header field (an
// empty line, a continuation, a body line) has an empty header section: the body is never
// taken for headers. The line ending of the last header line is included; the line that ends
// the section is not. Lines end at LF, so a bare-LF empty line ("\n") ends the section too. A
// pure function: the result is a prefix of `content`.
std::string_view header_section(std::string_view content);

// Number of "Received:" header fields in the header section: the field name, in any case, at
// the start of a line, optionally followed by spaces or tabs (RFC 5322 4.5 obsolete syntax),
// then ':'. Continuation lines, other fields ("X-Received:", "Received-SPF:") and anything in
// the body (even when no empty line separates it from the headers) are not counted.
std::size_t count_received(std::string_view content);

// More Received: fields than this means the message is looping (RFC 5321 6.3): bounce it
// with hop_count_status / hop_count_reason instead of relaying it again. 50 is Postfix's
// hopcount_limit; RFC 5321 6.3 says a threshold of "normally at least 100" SHOULD be used, so
// this is deliberately stricter (no legitimate path comes near 50 hops); callers may pass 100.
constexpr std::size_t default_max_received = 50;
constexpr std::string_view hop_count_status = "5.4.6";  // RFC 3463 3.5: routing loop detected
constexpr std::string_view hop_count_reason = "Hop count exceeded - possible mail loop";

// count_received(content) > max_received.
bool hop_count_exceeded(std::string_view content, std::size_t max_received = default_max_received);

}  // namespace postern::message
