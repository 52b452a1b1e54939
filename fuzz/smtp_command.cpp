// fuzz/smtp_command.cpp - the command-line parsers of src/smtp/command.hpp and the ESMTP
// parameter parser: split_command, split_path_args, parse_bdat, parse_bdat_size, parse_params.
// Input: one octet choosing the MAIL ("FROM:") or RCPT ("TO:") keyword, then one command line.
// Invariants, beyond no crash / UB:
// - split_command: the verb is the upper-cased text before the first space; the argument is
//   a view into the line with no leading or trailing spaces;
// - split_path_args: a path_ok path starts with '<', ends with the '>' that path_end() finds,
//   and is followed by the end or a space; the parameters are a trimmed view into the line;
// - parse_bdat: accepts exactly 1*DIGIT [SP "LAST"] without overflow (checked against a
//   reference parser), and formatting what it parsed parses back to the same value;
// - parse_bdat_size: the first word's size (known / too_big / none) as the reference reads it;
// - parse_params: keys upper-case (ALPHA / DIGIT / "-"), values non-empty without '=' or
//   controls; "KEY[=VALUE]" joined with spaces parses back to the same list.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz.hpp"
#include "smtp/address.hpp"
#include "smtp/command.hpp"

namespace postern::fuzz {
namespace {

using namespace postern::smtp;

char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }

bool inside(std::string_view part, std::string_view whole) {
    return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

bool trimmed(std::string_view s) { return s.empty() || (s.front() != ' ' && s.back() != ' '); }

// RFC 3030 2 by the book: chunk-size = 1*DIGIT (fitting 64 bits), end-marker = "LAST".
std::optional<bdat_args> reference_bdat(std::string_view arg) {
    const std::size_t sp = arg.find(' ');
    const std::string_view num = arg.substr(0, sp);
    if (num.empty()) return std::nullopt;
    bdat_args b;
    for (char c : num) {
        if (c < '0' || c > '9') return std::nullopt;
        const unsigned __int128 v = static_cast<unsigned __int128>(b.size) * 10 + static_cast<unsigned>(c - '0');
        if (v > UINT64_MAX) return std::nullopt;
        b.size = static_cast<std::uint64_t>(v);
    }
    if (sp != std::string_view::npos) {
        std::string_view m = arg.substr(sp + 1);
        while (!m.empty() && m.front() == ' ') m.remove_prefix(1);
        while (!m.empty() && m.back() == ' ') m.remove_suffix(1);
        if (m.size() != 4 || upper(m[0]) != 'L' || upper(m[1]) != 'A' || upper(m[2]) != 'S' || upper(m[3]) != 'T')
            return std::nullopt;
        b.last = true;
    }
    return b;
}

void check_split_command(std::string_view line) {
    const command_line c = split_command(line);
    const std::string_view head = line.substr(0, line.find(' '));
    FUZZ_CHECK(c.verb.size() == head.size(), "verb length: " + show(line));
    for (std::size_t i = 0; i < head.size(); ++i) FUZZ_CHECK(c.verb[i] == upper(head[i]), "verb: " + show(line));
    FUZZ_CHECK(inside(c.arg, line) && trimmed(c.arg), "argument: " + show(line));
    if (head.size() == line.size()) FUZZ_CHECK(c.arg.empty(), "argument without a space: " + show(line));
}

void check_path_args(std::string_view arg, std::string_view keyword) {
    const path_args pa = split_path_args(arg, keyword);
    bool kw = arg.size() >= keyword.size();
    for (std::size_t i = 0; kw && i < keyword.size(); ++i) kw = upper(arg[i]) == upper(keyword[i]);
    FUZZ_CHECK(pa.keyword_ok == kw, "keyword: " + show(arg));
    if (!pa.keyword_ok) return;
    FUZZ_CHECK(inside(pa.path, arg) && inside(pa.params, arg), "views: " + show(arg));
    if (pa.path_ok) {
        FUZZ_CHECK(pa.path.size() >= 2 && pa.path.front() == '<' && pa.path.back() == '>', "path: " + show(arg));
        FUZZ_CHECK(path_end(pa.path) == pa.path.size(), "path end: " + show(arg));
        const std::size_t after = static_cast<std::size_t>(pa.path.data() - arg.data()) + pa.path.size();
        FUZZ_CHECK(after == arg.size() || arg[after] == ' ', "text glued to the path: " + show(arg));
        FUZZ_CHECK(trimmed(pa.params), "params not trimmed: " + show(arg));
    }
}

void check_bdat(std::string_view arg) {
    const auto b = parse_bdat(arg);
    const auto ref = reference_bdat(arg);
    FUZZ_CHECK(b.has_value() == ref.has_value(), "BDAT accepted or refused wrongly: " + show(arg));
    if (!b) return;
    FUZZ_CHECK(b->size == ref->size && b->last == ref->last, "BDAT value: " + show(arg));
    const std::string again = std::to_string(b->size) + (b->last ? " LAST" : "");
    const auto b2 = parse_bdat(again);
    FUZZ_CHECK(b2 && b2->size == b->size && b2->last == b->last, "BDAT round trip: " + show(again));
}

// parse_bdat_size: the first word as 1*DIGIT, known (fits 64 bits, the same value as a line
// with only that word), too_big (all digits, past 2^64-1) or none; whatever follows the word
// never changes it, and a line parse_bdat() accepts always has a known size, the same one.
void check_bdat_size(std::string_view arg) {
    const bdat_size z = parse_bdat_size(arg);
    const std::string_view word = arg.substr(0, arg.find(' '));
    const bool digits = !word.empty() && word.find_first_not_of("0123456789") == std::string_view::npos;
    const auto alone = reference_bdat(word);
    if (!digits) FUZZ_CHECK(z.what == bdat_size::kind::none, "BDAT size of a non-number: " + show(arg));
    else if (alone) FUZZ_CHECK(z.what == bdat_size::kind::known && z.size == alone->size, "BDAT size: " + show(arg));
    else FUZZ_CHECK(z.what == bdat_size::kind::too_big, "BDAT size past 64 bits: " + show(arg));
    if (const auto b = parse_bdat(arg))
        FUZZ_CHECK(z.what == bdat_size::kind::known && z.size == b->size, "BDAT size of an accepted line: " + show(arg));
}

void check_params(std::string_view text) {
    const auto p = parse_params(text);
    if (!p) return;
    std::string again;
    for (const auto& prm : *p) {
        FUZZ_CHECK(!prm.key.empty(), "empty key: " + show(text));
        for (char c : prm.key)
            FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-', "key: " + show(text));
        FUZZ_CHECK(prm.key[0] != '-', "key starts with '-': " + show(text));
        FUZZ_CHECK(prm.has_value || prm.value.empty(), "value without '=': " + show(text));
        if (prm.has_value) {
            FUZZ_CHECK(!prm.value.empty(), "empty value: " + show(text));
            for (unsigned char c : prm.value)
                FUZZ_CHECK(c > 0x20 && c != '=' && c != 0x7f, "value octet: " + show(text));
        }
        if (!again.empty()) again += ' ';
        again += prm.key;
        if (prm.has_value) again += "=" + prm.value;
    }
    const auto p2 = parse_params(again);
    FUZZ_CHECK(p2 && p2->size() == p->size(), "params round trip: " + show(again));
    for (std::size_t i = 0; i < p->size(); ++i)
        FUZZ_CHECK((*p2)[i].key == (*p)[i].key && (*p2)[i].value == (*p)[i].value &&
                       (*p2)[i].has_value == (*p)[i].has_value,
                   "params round trip: " + show(again));
}

}  // namespace
}  // namespace postern::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace postern::fuzz;
    input in(data, size);
    const std::string_view keyword = in.byte() & 1 ? "TO:" : "FROM:";
    const std::string_view line = in.rest();
    check_split_command(line);
    const auto c = postern::smtp::split_command(line);
    check_path_args(c.arg, keyword);
    check_bdat(c.arg);
    check_bdat_size(c.arg);
    const auto pa = postern::smtp::split_path_args(c.arg, keyword);
    check_params(pa.path_ok ? pa.params : c.arg);
    return 0;
}
