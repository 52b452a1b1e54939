// fuzz/seven_bit.cpp - 8-bit content made 7-bit for a next hop without 8BITMIME
// (src/message/seven_bit.hpp: to_seven_bit, quoted_printable).
// Input: a flags octet (bit 0: quoted_printable alone), then the content.
// Invariants, beyond no crash / UB:
// - to_seven_bit: what it returns holds no 8-bit octet; an all-ASCII message comes back
//   unchanged; a refusal says why;
// - quoted_printable: 7-bit, CRLF lines of at most 76 characters, none ending in a space or
//   tab, and decoding it (RFC 2045 6.7) gives the input's lines, each ended CRLF.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz.hpp"
#include "message/seven_bit.hpp"

namespace postern::fuzz {
namespace {

bool ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The input as quoted_printable reads it: lines at LF (a CR before it dropped), each CRLF.
std::string crlf_lines(std::string_view s) {
    std::string out;
    for (std::size_t p = 0; p < s.size();) {
        const std::size_t e = s.find('\n', p);
        std::string_view l = s.substr(p, e == std::string_view::npos ? std::string_view::npos : e - p);
        if (e != std::string_view::npos && !l.empty() && l.back() == '\r') l.remove_suffix(1);
        out += l;
        out += "\r\n";
        if (e == std::string_view::npos) break;
        p = e + 1;
    }
    return out;
}

void check_qp(std::string_view body) {
    std::string q;
    message::quoted_printable(body, q);
    FUZZ_CHECK(ascii(q), "8-bit octet in quoted-printable: " + show(q));
    std::string decoded;
    for (std::size_t p = 0; p < q.size();) {
        const std::size_t e = q.find("\r\n", p);
        FUZZ_CHECK(e != std::string::npos, "quoted-printable not ending CRLF: " + show(q));
        const std::string_view l(q.data() + p, e - p);
        FUZZ_CHECK(l.size() <= 76, "quoted-printable line over 76: " + show(l));
        FUZZ_CHECK(l.empty() || (l.back() != ' ' && l.back() != '\t'), "whitespace ends a line: " + show(l));
        FUZZ_CHECK(l.find_first_of("\r\n") == std::string_view::npos, "bare CR or LF: " + show(q));
        bool soft = false;
        for (std::size_t i = 0; i < l.size(); ++i) {
            if (l[i] != '=') {
                decoded += l[i];
                continue;
            }
            if (i + 1 == l.size()) {
                soft = true;
                break;
            }
            FUZZ_CHECK(i + 2 < l.size() && hex_value(l[i + 1]) >= 0 && hex_value(l[i + 2]) >= 0,
                       "bad escape: " + show(l));
            decoded += static_cast<char>(hex_value(l[i + 1]) * 16 + hex_value(l[i + 2]));
            i += 2;
        }
        if (!soft) decoded += "\r\n";
        p = e + 2;
    }
    FUZZ_CHECK(decoded == crlf_lines(body), "decodes to " + show(decoded) + " from " + show(body));
}

}  // namespace
}  // namespace postern::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace postern::fuzz;
    input in(data, size);
    const std::uint8_t flags = in.byte();
    const std::string_view c = in.rest();
    if (flags & 1) {
        check_qp(c);
        return 0;
    }
    const auto r = postern::message::to_seven_bit(c, "mx.test");
    if (r.content) {
        FUZZ_CHECK(ascii(*r.content), "8-bit octet after conversion: " + show(*r.content));
        if (ascii(c)) FUZZ_CHECK(*r.content == c, "7-bit content changed: " + show(c));
    } else {
        FUZZ_CHECK(!r.why.empty(), "refused without a reason: " + show(c));
    }
    return 0;
}
