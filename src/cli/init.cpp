// cli/init.cpp - write the embedded default configuration, certificate and folders.
#include "cli/init.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "config/config.hpp"
#include "tls/certgen.hpp"

namespace postern::cli {

int init(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path root(dir);
    const fs::path conf = root / "postern.toml";
    if (fs::exists(conf, ec)) {
        std::fprintf(stderr, "postern init: %s already exists; not overwriting it\n", conf.c_str());
        return 1;
    }
    for (const char* sub : {"", "var", "var/tls", "var/spool", "var/mail", "var/mail/localhost"}) {
        fs::path p = root / sub;
        fs::create_directories(p, ec);
        if (ec) {
            std::fprintf(stderr, "postern init: cannot create %s: %s\n", p.c_str(), ec.message().c_str());
            return 1;
        }
    }
    ::chmod((root / "var/tls").c_str(), 0700);
    ::chmod((root / "var/spool").c_str(), 0700);
    // var/mail only holds the per-domain maildirs: searchable, so that server.user (which the
    // server hands var/mail/localhost to when started as root) can reach its maildir.
    ::chmod((root / "var/mail/localhost").c_str(), 0700);
    const fs::path cert = root / "var/tls/cert.pem", key = root / "var/tls/key.pem";
    if (!fs::exists(cert, ec) || !fs::exists(key, ec)) {
        auto r = tls::write_self_signed(cert, key, "localhost", 825);
        if (!r) {
            std::fprintf(stderr, "postern init: %s\n", r.error_message().c_str());
            return 1;
        }
    }
    {
        std::ofstream out(conf);
        out << config::default_config_text();
        if (!out) {
            std::fprintf(stderr, "postern init: cannot write %s\n", conf.c_str());
            return 1;
        }
    }
    // The written file must load: catch a broken default here, not at `serve`.
    auto loaded = config::load(conf.string());
    if (!loaded) {
        std::fprintf(stderr, "postern init: the default configuration does not load: %s\n",
                     loaded.error_message().c_str());
        return 1;
    }
    std::printf("wrote %s\n  certificate %s (self-signed, localhost)\n  spool %s\n  maildir %s\n"
                "start with: postern serve -c %s\n",
                conf.c_str(), cert.c_str(), (root / "var/spool").c_str(), (root / "var/mail/localhost").c_str(),
                conf.c_str());
    return 0;
}

}  // namespace postern::cli
