// smtp/text.hpp - small ASCII helpers shared by the SMTP parsers (commands are ASCII and
// case-insensitive, RFC 5321 2.4).
#pragma once
#include <string_view>

namespace postern::smtp {

inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'a' && x <= 'z') x = static_cast<char>(x - ('a' - 'A'));
        if (y >= 'a' && y <= 'z') y = static_cast<char>(y - ('a' - 'A'));
        if (x != y) return false;
    }
    return true;
}

inline bool is_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return false;
    return true;
}

inline bool has_control(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f) return true;
    return false;
}

}  // namespace postern::smtp
