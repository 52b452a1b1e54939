// cli/check_config.cpp - `postern check-config`: the config file, then its TLS files as serve
// loads them (runtime/tls_setup.cpp builds the contexts and words the problems; this prints).
#include "cli/check_config.hpp"

#include <cstdio>

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
    for (const auto& w : config::warnings(**cfg)) std::fprintf(stderr, "%s\n", w.c_str());
    for (const auto& w : *tls) std::fprintf(stderr, "%s\n", w.c_str());
    std::printf("%s: OK\n", path.c_str());
    return 0;
}

}  // namespace postern::cli
