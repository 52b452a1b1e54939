// cli/check_config.cpp - `postern check-config`: the config file, then its TLS files as serve
// loads them (runtime/daemon.cpp builds the contexts; this only reports).
#include "cli/check_config.hpp"

#include <cstdio>

#include "cli/config_file.hpp"
#include "config/config.hpp"
#include "runtime/daemon.hpp"

namespace postern::cli {

int check_config(const std::string& path) {
    auto cfg = config::load(path);
    if (!cfg) {
        std::fprintf(stderr, "%s\n", cfg.error_message().c_str());
        return 2;
    }
    if (auto problem = runtime::check_tls(**cfg)) {
        const std::string& key = problem->key;
        int line = 0;
        if (auto text = config::read_text(path); text && key.starts_with("tls."))
            line = line_of_key(*text, "tls", key.substr(4));
        const std::string where = line > 0 ? path + ":" + std::to_string(line) : path;
        std::fprintf(stderr, "%s: %s: %s\n", where.c_str(), key.empty() ? "tls" : key.c_str(),
                     problem->message.c_str());
        return 2;
    }
    for (const auto& w : config::warnings(**cfg)) std::fprintf(stderr, "%s\n", w.c_str());
    std::printf("%s: OK\n", path.c_str());
    return 0;
}

}  // namespace postern::cli
