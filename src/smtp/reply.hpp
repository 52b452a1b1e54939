// smtp/reply.hpp - an SMTP reply (code, enhanced status code, text lines) and its wire form.
// RFC 5321 4.2 (multi-line replies), RFC 3463 / 2034 (enhanced status codes).
#pragma once
#include <string>
#include <vector>

namespace postern::smtp {

struct reply {
    int code = 0;              // 220, 250, 354, 421, 5xx ...
    std::string enhanced;      // "2.0.0", or empty (220 greeting, 354, 221 may omit it)
    std::vector<std::string> lines;  // at least one line; text only, no code

    // "250-first\r\n250 2.0.0 last\r\n": enhanced code on every line when present.
    std::string wire() const;
    bool positive() const { return code >= 200 && code < 400; }
    bool transient() const { return code >= 400 && code < 500; }
    bool permanent() const { return code >= 500; }
};

reply make_reply(int code, std::string enhanced, std::string text);

}  // namespace postern::smtp
