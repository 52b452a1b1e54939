// cli/check_config.cpp - `postern check-config`: the config file, then its TLS files as serve
// loads them (runtime/tls_setup.cpp builds the contexts and words the problems; this prints).
#include "cli/check_config.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "runtime/tls_setup.hpp"

namespace postern::cli {

int check_config(const std::string& path) {
    auto cfg = config::load(path);
    if (!cfg) {
        std::fprintf(stderr, "%s\n", cfg.error_message().c_str());
        return 2;
    }
    auto tls = runtime::check_tls(**cfg);
    if (!tls) {
        std::fprintf(stderr, "%s\n", tls.error_message().c_str());
        return 2;
    }
    // The config's warnings and its TLS files' together, in line order ("FILE:LINE: warning: ...").
    std::vector<std::string> all = config::warnings(**cfg);
    all.insert(all.end(), tls->begin(), tls->end());
    const auto line_of = [&](const std::string& w) {
        const std::string_view rest = std::string_view(w).substr(std::min(w.size(), (*cfg)->source_name.size() + 1));
        return std::atoi(std::string(rest.substr(0, rest.find(':'))).c_str());
    };
    std::stable_sort(all.begin(), all.end(), [&](const auto& a, const auto& b) { return line_of(a) < line_of(b); });
    for (const auto& w : all) std::fprintf(stderr, "%s\n", w.c_str());
    std::printf("%s: OK\n", path.c_str());
    return 0;
}

}  // namespace postern::cli
