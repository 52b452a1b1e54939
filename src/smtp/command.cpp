// smtp/command.cpp - split one SMTP command line into verb and arguments.
// RFC 5321 4.1.1 (verbs are case-insensitive), 4.1.2 (MAIL/RCPT arguments), RFC 3030 2 (BDAT).
#include "smtp/command.hpp"

#include <limits>

#include "smtp/address.hpp"

namespace postern::smtp {
namespace {

char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - ('a' - 'A')) : c; }

bool iprefix(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (upper(s[i]) != upper(prefix[i])) return false;
    return true;
}

std::string_view trim_spaces(std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
}

}  // namespace

command_line split_command(std::string_view line) {
    command_line c;
    const std::size_t sp = line.find(' ');
    const std::string_view verb = line.substr(0, sp);
    c.verb.reserve(verb.size());
    for (char ch : verb) c.verb += upper(ch);  // RFC 5321 2.4: verbs are case-insensitive
    if (sp != std::string_view::npos) c.arg = trim_spaces(line.substr(sp + 1));
    return c;
}

path_args split_path_args(std::string_view arg, std::string_view keyword) {
    path_args out;
    if (!iprefix(arg, keyword)) return out;
    out.keyword_ok = true;
    std::string_view rest = arg.substr(keyword.size());
    // RFC 5321 4.1.1.2 has no space after "FROM:", but clients send one; like Postfix
    // (strict_rfc821_envelopes = no) we tolerate it.
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const auto end = path_end(rest);
    if (!end || (*end < rest.size() && rest[*end] != ' ')) {
        out.path = rest;  // reported as a bad address
        return out;
    }
    out.path_ok = true;
    out.path = rest.substr(0, *end);
    out.params = trim_spaces(rest.substr(*end));
    return out;
}

bdat_size parse_bdat_size(std::string_view arg) {
    const std::string_view digits = arg.substr(0, arg.find(' '));
    bdat_size out;
    if (digits.empty()) return out;
    bool overflow = false;
    for (char c : digits) {
        if (c < '0' || c > '9') return out;
        const auto d = static_cast<std::uint64_t>(c - '0');
        overflow = overflow || out.size > (std::numeric_limits<std::uint64_t>::max() - d) / 10;
        if (!overflow) out.size = out.size * 10 + d;
    }
    out.what = overflow ? bdat_size::kind::too_big : bdat_size::kind::known;
    return out;
}

std::optional<bdat_args> parse_bdat(std::string_view arg) {
    const bdat_size size = parse_bdat_size(arg);
    if (size.what != bdat_size::kind::known) return std::nullopt;
    bdat_args b;
    b.size = size.size;
    if (const std::size_t sp = arg.find(' '); sp != std::string_view::npos) {
        const std::string_view marker = trim_spaces(arg.substr(sp + 1));
        if (marker.size() != 4 || !iprefix(marker, "LAST")) return std::nullopt;
        b.last = true;
    }
    return b;
}

}  // namespace postern::smtp
