// cli/config_file.cpp - read the configuration file for the CLI (see cli/config_file.hpp).
#include "cli/config_file.hpp"


namespace postern::cli {
namespace {

std::string_view trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

}  // namespace


int line_of_key(std::string_view text, std::string_view table, std::string_view key) {
    std::string current;  // the table the lines belong to; "" before the first header
    int number = 0;
    while (!text.empty()) {
        const auto eol = text.find('\n');
        const std::string_view line = trim(text.substr(0, eol));
        text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
        ++number;
        if (line.empty() || line.front() == '#') continue;
        if (line.front() == '[') {
            // [[array]] is never `table`: its keys belong to an element, not to the table.
            const auto close = line.find(']');
            current = line.starts_with("[[") || close == std::string_view::npos
                          ? std::string("[[")
                          : std::string(trim(line.substr(1, close - 1)));
            continue;
        }
        const auto eq = line.find('=');
        if (eq == std::string_view::npos) continue;
        const std::string_view name = trim(line.substr(0, eq));
        if (current == table && name == key) return number;
        if (current.empty() && name.size() == table.size() + 1 + key.size() && name.starts_with(table) &&
            name[table.size()] == '.' && name.ends_with(key))
            return number;
    }
    return 0;
}

}  // namespace postern::cli
