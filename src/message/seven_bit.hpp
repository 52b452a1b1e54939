// message/seven_bit.hpp - 8-bit content made 7-bit for a next hop that does not offer 8BITMIME
// (RFC 6152 3: the client converts the message to 7 bit, RFC 1652 / RFC 2045, or bounces it;
// Postfix converts, its MIME output conversion). Each MIME leaf part whose body holds 8-bit
// octets (labelled 7bit, 8bit or binary) is re-encoded quoted-printable (RFC 2045 6.7) and
// labelled so, the global message/ types too (RFC 6532 3.7, RFC 6533 6: message/global,
// -headers, -delivery-status, -disposition-notification may be quoted-printable on a 7-bit
// path); text without a Content-Type gets one saying its charset (utf-8 when valid,
// else RFC 1428's unknown-8bit); a multipart or message/rfc822 entity labelled 8bit or binary
// is relabelled 7bit and its parts converted in turn; the rest (headers, boundaries, 7-bit
// parts) goes as it came. What cannot be made 7-bit without changing what the message says is
// refused instead, and the message bounces 5.6.3: 8-bit octets in a header section (RFC 6532
// needs SMTPUTF8, a raw 8-bit Subject has no charset to encode it with), in a body labelled
// base64 or quoted-printable (invalid there), in any other message/* body (RFC 2046 5.2), or
// in a multipart preamble or epilogue; a multipart without its boundary; nesting past 100
// levels. A pure function, no I/O: tested in tests/unit/message/seven_bit_test.cpp and
// fuzz/seven_bit.cpp.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace postern::message {

struct seven_bit {
    std::optional<std::string> content;  // the 7-bit content (CRLF lines), or nothing: refused
    std::string why;                     // when refused: what could not be converted
};

// `content`: a message (header section, empty line, body) with 8-bit octets. `by`: our host
// name, and `id` the message's queue id, for the "X-MIME-Autoconverted: from 8bit to
// quoted-printable by <by> id <id>" field each converted part gets (Postfix adds the same;
// folded before "id"); `by` empty: none; `id` empty: "by <by>" alone.
seven_bit to_seven_bit(std::string_view content, std::string_view by, std::string_view id = {});

// RFC 2045 6.7 quoted-printable of `body` (lines ending CRLF, LF or, last, nothing): each line
// encoded, output lines at most 76 characters (soft line breaks "=" CRLF), ending CRLF. Octets
// other than printable ASCII, "=" and a space or tab ending a line are written =XX.
void quoted_printable(std::string_view body, std::string& out);

}  // namespace postern::message
