// smtp/data_decoder.hpp - decode a DATA body: find the end, undo dot-stuffing, bound memory.
// RFC 5321 4.1.1.4 (end of data), 4.5.2 (transparency), 4.5.3.1.6 (text line length).
// Internal to src/smtp; server_session feeds it the bytes that follow "354".
//
// Smuggling defence (SMTP smuggling, 2023; CVE-2023-51764/51765/51766): the end of data is
// ONLY the exact sequence CR LF "." CR LF, where the first CR LF may be the end of the DATA
// command line. A bare LF or a bare CR (one not followed by LF) is never a line end for this
// purpose, and a line start after one of them is not a line start for dot-unstuffing either.
// In the stored body every bare LF and every bare CR is rewritten as CR LF, so a fake end
// such as "\n.\n", "\r.\r", "\r\n.\n" or "\n.\r\n" stays content: it becomes a "." line, which
// our SMTP client dot-stuffs ("..") when it relays the message, so no next hop can read it as
// the end of data either. The stored body therefore has CR LF line endings only.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace postern::smtp {

class data_decoder {
public:
    static constexpr std::size_t max_line = 998;  // RFC 5321 4.5.3.1.6, without CR LF

    // `max_size`: stored octets allowed; beyond it (or after an overlong line) nothing more
    // is stored but the input is still scanned for the end of data.
    explicit data_decoder(std::uint64_t max_size) : max_size_(max_size) {}

    // Consume body bytes, appending decoded content to `body`. Returns how many bytes of `in`
    // were consumed: all of them, or fewer when the end of data was found (the rest is the
    // next pipelined command).
    std::size_t consume(std::string_view in, std::string& body);

    bool done() const { return done_; }
    bool too_big() const { return too_big_; }
    bool line_too_long() const { return line_too_long_; }

private:
    void append(std::string_view run, std::string& body);
    void append_eol(std::string& body);

    enum class pending { none, cr, dot, dot_cr };
    std::uint64_t max_size_;
    std::uint64_t size_ = 0;     // decoded octets, counted even when no longer stored
    std::size_t line_len_ = 0;   // octets in the current decoded line
    pending pending_ = pending::none;
    bool line_start_ = true;     // after a real CR LF (or at the start of the body)
    bool done_ = false;
    bool too_big_ = false;
    bool line_too_long_ = false;
};

// Rewrite bare CR and bare LF as CR LF in place (BDAT bodies, RFC 3030 without BINARYMIME),
// and check every line is at most data_decoder::max_line octets and the result at most
// `max_size`. Copies only when a bare CR or LF is present.
enum class normalize_result { ok, line_too_long, too_big };
normalize_result normalize_line_endings(std::string& body, std::uint64_t max_size);
// The size `body` has after normalize_line_endings (each bare CR or bare LF becomes CR LF): more
// than body.size() exactly when normalising it makes a copy of that size.
std::size_t normalized_size(std::string_view body);

}  // namespace postern::smtp
