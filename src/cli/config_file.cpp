// cli/config_file.cpp - read the configuration file for the CLI (see cli/config_file.hpp).
#include "cli/config_file.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace postern::cli {

result<std::string> read_config_text(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return error{path + ": cannot read: is a directory"};
    std::ifstream in(path, std::ios::binary);
    if (!in) return error{path + ": cannot open: " + std::strerror(errno)};
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return error{path + ": cannot read: " + std::strerror(errno)};
    return text.str();
}

result<std::shared_ptr<const config::config>> load_without_files(const std::string& path) {
    auto text = read_config_text(path);
    if (!text) return error{text.error_message()};
    return config::parse(*text, path, /*check_files=*/false);
}

}  // namespace postern::cli
