// message/headers.cpp - header section and Received: count of a queued message.
// RFC 5322 2.1 (header/body split), 2.2.3 (folding), 4.5 (obsolete WSP before ':'); RFC 5321 6.3 (loops).
#include "message/headers.hpp"

namespace postern::message {

namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// The line starts a "Received" field: name (any case), optional WSP, then ':'.
bool is_received_field(std::string_view line) {
    constexpr std::string_view name = "received";
    if (line.size() <= name.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (lower(line[i]) != name[i]) return false;
    std::size_t i = name.size();
    while (i < line.size() && is_wsp(line[i])) ++i;
    return i < line.size() && line[i] == ':';
}

}  // namespace

std::string_view header_section(std::string_view content) {
    std::size_t pos = 0;
    while (pos < content.size()) {
        // RFC 5322 2.1: the first empty line separates the header section from the body.
        if (content[pos] == '\n' || content.substr(pos, 2) == "\r\n") return content.substr(0, pos);
        std::size_t nl = content.find('\n', pos);
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
