// queue/envelope.hpp - the queued message's envelope and its on-disk record format.
// Pure functions (no I/O), so the format is unit-tested and fuzzed on its own.
//
// A queue file is: a text header, one "key value" record per line (LF-terminated), an empty
// line, then the message content exactly as it will be delivered (CRLF lines, Received header
// first). Records:
//   POSTERN-QUEUE 1            magic and format version (first line)
//   id 0192F3A4B5C6D7E8F       queue id (also the file name)
//   arrived 1732800000         unix time of acceptance
//   sender a@b.test            reverse-path without brackets; empty value = null sender <>
//   rcpt x@y.test              one per accepted recipient, in order (index 0, 1, ...)
//   body 7BIT|8BITMIME
//   smtputf8 0|1
//   client 192.0.2.1           client IP
//   helo client.example
//   tls TLSv1.3 TLS_AES_256_GCM_SHA384   (absent when the message came in plaintext)
//   size 5120                  content bytes after the blank line
// Values never contain CR or LF (SMTP command lines cannot carry them).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace postern::queue {

struct envelope {
    std::string id;
    std::int64_t arrived = 0;
    std::string sender;  // "" = null sender
    std::vector<std::string> recipients;
    bool eight_bit = false;
    bool smtputf8 = false;
    std::string client_ip;
    std::string helo;
    std::string tls;  // "TLSv1.3 TLS_AES_256_GCM_SHA384" or ""
    std::uint64_t size = 0;  // content bytes
};

// Header text including the terminating empty line.
std::string format_header(const envelope& env);
// Parse a header from the start of `data`; on success `header_len` is the offset of the content.
result<envelope> parse_header(std::string_view data, std::size_t& header_len);

// When the message arrived, in milliseconds since the epoch. `arrived` holds whole seconds; a
// queue id made by spool::new_id() starts with the microseconds at which it was made, taken
// right after `arrived`: that time when it falls in the same second or the next (so the log's
// delay= is not up to a second too long), else `arrived` itself (an id of another form).
std::int64_t arrival_ms(const envelope& env);
// Seconds from arrival_ms(env) to `now_ms`, for the log's delay=; never negative (a clock stepped
// back since the message arrived).
double delay_seconds(const envelope& env, std::int64_t now_ms);

}  // namespace postern::queue
