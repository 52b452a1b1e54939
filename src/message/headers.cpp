// message/headers.cpp - header section and Received: count of a queued message.
// RFC 5322 2.1 (header/body split), 2.2 and 3.6.8 (field syntax), 2.2.3 (folding), 4.5 (obsolete
// WSP before ':'); RFC 5321 6.3 (loops).
#include "message/headers.hpp"

namespace postern::message {

namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// The name of the header field the line starts, or "" when it starts none: field-name (1*ftext:
// printable US-ASCII but ':', RFC 5322 3.6.8), optional WSP (obsolete syntax, RFC 5322 4.5;
// Postfix accepts it too), then ':'. An empty line starts none: its first octet is CR or LF,
// or there is none. Non-ASCII octets are not ftext (RFC 6532 3.2 does not extend it).
std::string_view field_name(std::string_view line) {
    const auto ftext = [](unsigned char c) { return c >= 33 && c <= 126 && c != ':'; };
    std::size_t n = 0;
    while (n < line.size() && ftext(line[n])) ++n;
    std::size_t i = n;
    while (i < line.size() && is_wsp(line[i])) ++i;
    return n > 0 && i < line.size() && line[i] == ':' ? line.substr(0, n) : std::string_view{};
}

// The line starts a "Received" field: that name in any case.
bool is_received_field(std::string_view line) {
    constexpr std::string_view received = "received";
    std::string_view name = field_name(line);
    if (name.size() != received.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (lower(name[i]) != received[i]) return false;
    return true;
}

}  // namespace

std::string_view header_section(std::string_view content) {
    std::size_t pos = 0;
    while (pos < content.size()) {
        std::size_t nl = content.find('\n', pos);
        std::size_t end = nl == std::string_view::npos ? content.size() : nl;
        std::string_view line = content.substr(pos, end - pos);
        // RFC 5322 2.1, 2.2, 2.2.3: the section is header fields and their folded continuations;
        // the first other line (the empty line, or a body line when there is none) ends it.
        // A continuation (a line starting with WSP) belongs to the field above it, so the
        // first line cannot be one: a message starting with it has an empty header section.
        bool continuation = pos > 0 && !line.empty() && is_wsp(line[0]);
        if (!continuation && field_name(line).empty()) return content.substr(0, pos);
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    return content;
}

std::size_t count_received(std::string_view content) {
    std::string_view hs = header_section(content);
    std::size_t n = 0, pos = 0;
    while (pos < hs.size()) {
        std::size_t nl = hs.find('\n', pos);
        std::size_t end = nl == std::string_view::npos ? hs.size() : nl;
        // A continuation line starts with WSP (RFC 5322 2.2.3), so it never matches here.
        if (is_received_field(hs.substr(pos, end - pos))) ++n;
        pos = end + 1;
    }
    return n;
}

bool hop_count_exceeded(std::string_view content, std::size_t max_received) {
    return count_received(content) > max_received;
}

}  // namespace postern::message
