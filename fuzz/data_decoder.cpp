// fuzz/data_decoder.cpp - the DATA body decoder (src/smtp/data_decoder.hpp: end of data,
// dot-unstuffing, bare CR/LF normalisation, limits), normalize_line_endings (BDAT bodies) and
// the client's dot_stuff (src/smtp/client_session.hpp), against a reference written from
// RFC 5321 4.1.1.4 / 4.5.2 and the smuggling rules in data_decoder.hpp.
// Input: one octet choosing max_size, two split offsets (two octets each), then the bytes that
// follow "354".
// Invariants, beyond no crash / UB:
// - the data ends only at CR LF "." CR LF (the first CR LF may be the DATA line's), and where the
//   reference says; everything before is consumed, nothing after;
// - the decoded body (when no limit was hit) equals the reference decoding; with a limit hit,
//   the flags match the reference and the stored body is a prefix of it;
// - the same bytes fed in one, two or three pieces give the same result (the same body unless
//   a limit was hit: then the body is discarded anyway);
// - normalize_line_endings agrees with the reference normalisation;
// - dot_stuff(content) is read back by the decoder as exactly one message, ending at the last
//   octet, whose body is the content with CRLF line ends (and a final CRLF): whatever the
//   content, it cannot end the data early at a next hop (SMTP smuggling).
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz.hpp"
#include "smtp/client_session.hpp"
#include "smtp/data_decoder.hpp"

namespace postern::fuzz {
namespace {

using namespace postern::smtp;

struct decoded {
    bool done = false;
    std::size_t consumed = 0;
    std::string body;
    bool too_big = false;
    bool line_too_long = false;
};

// The rules, one character at a time, on the whole input (no incremental state).
decoded reference(std::string_view in) {
    decoded r;
    bool line_start = true;  // after a real CR LF, or at the start of the data
    std::size_t i = 0;
    const std::size_t n = in.size();
    while (i < n) {
        if (line_start && in[i] == '.') {
            if (in.substr(i, 3) == ".\r\n") {
                r.done = true;
                r.consumed = i + 3;
                return r;
            }
            if (i + 1 >= n || (in[i + 1] == '\r' && i + 2 >= n)) break;  // undecided yet
            if (in[i + 1] == '\n' || in[i + 1] == '\r') {  // "." then a bare LF or bare CR: a "." line
                r.body += ".\r\n";
                i += 2;
                line_start = false;
                continue;
            }
            ++i;  // RFC 5321 4.5.2: the leading dot is removed
            line_start = false;
            continue;
        }
        const char c = in[i];
        if (c == '\r') {
            if (i + 1 >= n) break;  // undecided yet
            const bool crlf = in[i + 1] == '\n';
            r.body += "\r\n";
            i += crlf ? 2 : 1;
            line_start = crlf;
        } else if (c == '\n') {
            r.body += "\r\n";  // bare LF: content, not a line start
            ++i;
            line_start = false;
        } else {
            r.body += c;
            ++i;
            line_start = false;
        }
    }
    r.consumed = n;
    return r;
}

std::size_t longest_line(std::string_view crlf_text) {
    std::size_t longest = 0, start = 0;
    for (;;) {
        const std::size_t e = crlf_text.find("\r\n", start);
        const std::size_t len = (e == std::string_view::npos ? crlf_text.size() : e) - start;
        longest = std::max(longest, len);
        if (e == std::string_view::npos) return longest;
        start = e + 2;
    }
}

std::string normalized(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') {
            out += "\r\n";
            ++i;
        } else if (s[i] == '\r' || s[i] == '\n') {
            out += "\r\n";
        } else {
            out += s[i];
        }
    }
    return out;
}

decoded run(std::string_view in, std::uint64_t max_size, std::size_t a, std::size_t b) {
    data_decoder d(max_size);
    decoded r;
    const std::size_t cuts[] = {0, a, b, in.size()};
    for (int k = 0; k < 3 && !d.done(); ++k) {
        const std::string_view piece = in.substr(cuts[k], cuts[k + 1] - cuts[k]);
        const std::size_t used = d.consume(piece, r.body);
        FUZZ_CHECK(used <= piece.size(), "consumed more than given");
        FUZZ_CHECK(d.done() || used == piece.size(), "stopped before the end without finishing");
        r.consumed += used;
    }
    r.done = d.done();
    r.too_big = d.too_big();
    r.line_too_long = d.line_too_long();
    return r;
}

void check_decoder(std::string_view in, std::uint64_t max_size, std::size_t a, std::size_t b) {
    const decoded ref = reference(in);
    const decoded whole = run(in, max_size, in.size(), in.size());
    FUZZ_CHECK(whole.done == ref.done && whole.consumed == ref.consumed,
               "end of data at " + std::to_string(whole.consumed) + " (done " + std::to_string(whole.done) +
                   "), reference " + std::to_string(ref.consumed) + " (done " + std::to_string(ref.done) +
                   "): " + show(in));
    if (whole.done) {
        const std::string seen = "\r\n" + std::string(in.substr(0, whole.consumed));
        FUZZ_CHECK(seen.size() >= 5 && seen.compare(seen.size() - 5, 5, "\r\n.\r\n") == 0,
                   "data ended without CR LF . CR LF: " + show(in));
        FUZZ_CHECK(whole.too_big == (ref.body.size() > max_size), "too_big flag: " + show(in));
        FUZZ_CHECK(whole.line_too_long == (longest_line(ref.body) > data_decoder::max_line),
                   "line_too_long flag: " + show(in));
        if (!whole.too_big && !whole.line_too_long)
            FUZZ_CHECK(whole.body == ref.body, "body: " + show(whole.body) + " reference " + show(ref.body));
        else
            FUZZ_CHECK(ref.body.compare(0, whole.body.size(), whole.body) == 0, "stored body is not a prefix");
        FUZZ_CHECK(crlf_only(whole.body), "body line ends: " + show(whole.body));
    }
    const decoded split = run(in, max_size, a, b);
    // Once a limit is hit the body is thrown away, so how much of it was kept may differ.
    const bool limited = whole.too_big || whole.line_too_long;
    FUZZ_CHECK(split.done == whole.done && split.consumed == whole.consumed && (limited || split.body == whole.body) &&
                   split.too_big == whole.too_big && split.line_too_long == whole.line_too_long,
               "split at " + std::to_string(a) + "," + std::to_string(b) + " differs: " + show(in));
}

void check_normalize(std::string_view in, std::uint64_t max_size) {
    std::string body(in);
    const normalize_result r = normalize_line_endings(body, max_size);
    const std::string ref = normalized(in);
    if (longest_line(ref) > data_decoder::max_line) {
        FUZZ_CHECK(r == normalize_result::line_too_long, "normalize: line_too_long missed");
        return;
    }
    FUZZ_CHECK(body == ref, "normalize: " + show(body) + " reference " + show(ref));
    FUZZ_CHECK(r == (ref.size() > max_size ? normalize_result::too_big : normalize_result::ok), "normalize: result");
}

void check_dot_stuff(std::string_view content) {
    std::string wire;
    dot_stuff(content, wire);
    data_decoder d(UINT64_MAX);
    std::string body;
    const std::size_t used = d.consume(wire, body);
    FUZZ_CHECK(d.done() && used == wire.size(),
               "dot_stuff output ends the data at " + std::to_string(used) + " of " + std::to_string(wire.size()) +
                   ": " + show(wire));
    if (d.line_too_long()) return;
    std::string expected = normalized(content);
    if (!expected.empty() && (expected.size() < 2 || expected.compare(expected.size() - 2, 2, "\r\n") != 0))
        expected += "\r\n";
    FUZZ_CHECK(body == expected, "dot_stuff round trip: " + show(body) + " expected " + show(expected));
}

}  // namespace
}  // namespace postern::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace postern::fuzz;
    input in(data, size);
    static const std::uint64_t sizes[] = {64, 1000, 10000, UINT64_MAX};
    const std::uint64_t max_size = sizes[in.byte() & 3];
    std::size_t a = in.u16(), b = in.u16();
    const std::string_view body = in.rest();
    a %= body.size() + 1;
    b %= body.size() + 1;
    if (a > b) std::swap(a, b);
    check_decoder(body, max_size, a, b);
    check_normalize(body, max_size);
    check_dot_stuff(body);
    return 0;
}
