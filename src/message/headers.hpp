// message/headers.hpp - read-only views of a queued message's header section (RFC 5322 2.1, 3.6).
// Used to return only the headers in a bounce (message/dsn.cpp) and to detect mail loops by
// counting Received: fields (RFC 5321 6.3; Postfix hopcount_limit).
#pragma once
#include <cstddef>
#include <string_view>

namespace postern::message {

// The header section of a CRLF message: everything up to the first empty line (or all of it
// when there is none). The CRLF ending the last header line is included; the empty line is
// not. A message that starts with an empty line has an empty header section. A bare-LF empty
// line ("\n") also ends the section, so a non-canonical message is never read into its body.
std::string_view header_section(std::string_view content);

// Number of "Received:" header fields in the header section: the field name, in any case, at
// the start of a line, optionally followed by spaces or tabs (RFC 5322 4.5 obsolete syntax),
// then ':'. Continuation lines, other fields ("X-Received:", "Received-SPF:") and anything in
// the body are not counted.
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
