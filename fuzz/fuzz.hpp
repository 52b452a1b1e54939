// fuzz/fuzz.hpp - what the fuzz targets share: invariant checks that abort (in the libFuzzer
// build and in the replay build alike, NDEBUG or not), a reader that takes the target's
// parameters from the front of the input, and the RFC 5321 4.2 reply-framing check.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace postern::fuzz {

[[noreturn]] inline void fail(const char* file, int line, const char* cond, std::string_view what) {
    std::fprintf(stderr, "%s:%d: invariant failed: %s\n  %.*s\n", file, line, cond,
                 static_cast<int>(what.size()), what.data());
    std::abort();  // libFuzzer saves the input as crash-*
}

// `what` is only evaluated when the check fails.
#define FUZZ_CHECK(cond, what)                                                 \
    do {                                                                       \
        if (!(cond)) ::postern::fuzz::fail(__FILE__, __LINE__, #cond, (what)); \
    } while (0)

// The bytes with control characters escaped, for failure messages.
inline std::string show(std::string_view s, std::size_t max = 400) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < max; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\r') out += "\\r";
        else if (c == '\n') out += "\\n";
        else if (c < 0x20 || c >= 0x7f || c == '\\') out += std::string("\\x") + hex[c >> 4] + hex[c & 15];
        else out += static_cast<char>(c);
    }
    if (s.size() > max) out += "...";
    return out;
}

// Parameters from the front of the input, the rest as data. Past the end: zeros / empty.
class input {
public:
    input(const std::uint8_t* data, std::size_t size)
        : s_(reinterpret_cast<const char*>(data), size) {}

    std::uint8_t byte() {
        if (s_.empty()) return 0;
        const auto b = static_cast<std::uint8_t>(s_.front());
        s_.remove_prefix(1);
        return b;
    }
    std::uint16_t u16() { return static_cast<std::uint16_t>(byte() | (byte() << 8)); }
    std::uint64_t u64() {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(byte()) << (8 * i);
        return v;
    }
    // A string of up to `max` octets, its length (one or two octets) first.
    std::string_view string(std::size_t max = 255) {
        const std::size_t len = (max <= 255 ? byte() : u16()) % (max + 1);
        return take(len);
    }
    std::string_view take(std::size_t n) {
        const std::string_view t = s_.substr(0, n);
        s_.remove_prefix(t.size());
        return t;
    }
    std::string_view rest() { return take(s_.size()); }
    bool empty() const { return s_.empty(); }

private:
    std::string_view s_;
};

// RFC 5321 4.2, 4.2.1, 4.5.3.1.5: `out` is a sequence of complete replies; every line is
// three digits (first 2 to 5), "-" or " ", printable ASCII text, CRLF, at most 512 octets;
// the lines of one reply share the code and all but the last use "-". Returns each reply's
// code, in order.
inline std::vector<int> check_replies(std::string_view out) {
    std::vector<int> codes;
    int open = 0;  // code of the multi-line reply in progress
    std::size_t pos = 0;
    while (pos < out.size()) {
        const std::size_t lf = out.find('\n', pos);
        FUZZ_CHECK(lf != std::string_view::npos, "reply without a line end: " + show(out.substr(pos)));
        const std::string_view line = out.substr(pos, lf + 1 - pos);
        pos = lf + 1;
        FUZZ_CHECK(line.size() <= 512, "reply line over 512 octets: " + show(line));
        FUZZ_CHECK(line.size() >= 6 && line[line.size() - 2] == '\r', "reply line framing: " + show(line));
        FUZZ_CHECK(line[0] >= '2' && line[0] <= '5' && line[1] >= '0' && line[1] <= '9' &&
                       line[2] >= '0' && line[2] <= '9',
                   "reply code: " + show(line));
        FUZZ_CHECK(line[3] == ' ' || line[3] == '-', "reply separator: " + show(line));
        for (std::size_t i = 4; i + 2 < line.size(); ++i) {
            const auto c = static_cast<unsigned char>(line[i]);
            FUZZ_CHECK(c >= 0x20 && c < 0x7f, "control or 8-bit octet in reply text: " + show(line));
        }
        const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        FUZZ_CHECK(open == 0 || open == code, "multi-line reply changes its code: " + show(line));
        if (line[3] == '-') {
            open = code;
        } else {
            open = 0;
            codes.push_back(code);
        }
    }
    FUZZ_CHECK(open == 0, "unfinished multi-line reply: " + show(out));
    return codes;
}

inline bool is_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return false;
    return true;
}

// RFC 3463 2: status-code = class "." subject "." detail, 1 to 3 digits each, the class one
// of `classes`.
inline bool valid_status_code(std::string_view s, std::string_view classes) {
    if (s.size() < 5 || classes.find(s[0]) == std::string_view::npos || s[1] != '.') return false;
    std::size_t i = 2;
    for (int part = 0; part < 2; ++part) {
        const std::size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        if (i == start || i - start > 3) return false;
        if (part == 0) {
            if (i >= s.size() || s[i] != '.') return false;
            ++i;
        }
    }
    return i == s.size();
}

// Every CR is followed by LF and every LF preceded by CR; no line longer than `max_line`
// octets (CRLF not counted).
inline bool crlf_only(std::string_view s, std::size_t max_line = std::string_view::npos) {
    std::size_t line = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r') {
            if (i + 1 >= s.size() || s[i + 1] != '\n') return false;
            ++i;
            line = 0;
        } else if (s[i] == '\n') {
            return false;
        } else if (++line > max_line) {
            return false;
        }
    }
    return true;
}

}  // namespace postern::fuzz
