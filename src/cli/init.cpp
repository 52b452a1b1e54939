// cli/init.cpp - write the embedded default configuration, certificate and folders.
#include "cli/init.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include <openssl/ssl.h>

#include "config/config.hpp"
#include "tls/certgen.hpp"
#include "tls/context.hpp"

namespace postern::cli {
namespace {

// A folder init may write in: a real directory (lstat: no symbolic link), ours, and writable by
// no one else, so that no other user can swap what init then creates, chmods or chowns in it
// for a link to elsewhere (init runs as root under `make run`). `what` is set to the reason.
bool safe_folder(const std::string& path, bool follow, std::string& what) {
    struct stat st{};
    if ((follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st)) != 0) {
        what = std::strerror(errno);
        return false;
    }
    if (S_ISLNK(st.st_mode)) what = "is a symbolic link; not following it";
    else if (!S_ISDIR(st.st_mode)) what = "is not a folder";
    else if (st.st_uid != ::geteuid())
        what = "belongs to uid " + std::to_string(st.st_uid) + ", not to the user running init";
    else if (st.st_mode & (S_IWGRP | S_IWOTH)) what = "is writable by others";
    else return true;
    return false;
}

}  // namespace

int init(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path root(dir);
    const fs::path conf = root / "postern.toml";
    // A symbolic link, even a dangling one, is there: init never writes through one.
    if (fs::exists(fs::symlink_status(conf, ec))) {
        std::fprintf(stderr, "postern init: %s already exists; not overwriting it\n", conf.c_str());
        return 1;
    }
    // Everything that can refuse is checked before anything is written: a refused init leaves
    // no folder, key or config behind (a config left there would stop the next init).
    // The default as it would load from there (paths resolve against the folder: the control
    // socket's path may be too long for a deep folder).
    if (auto parsed = config::parse(config::default_config_text(), conf.string(), /*check_files=*/false); !parsed) {
        std::fprintf(stderr, "postern init: the default configuration cannot be used in %s: %s\n", root.c_str(),
                     parsed.error_message().c_str());
        return 1;
    }
    const fs::path cert = root / "var/tls/cert.pem", key = root / "var/tls/key.pem";
    // An existing pair is kept; a lone key or certificate is never replaced (a key may be the
    // only copy of one that a certificate elsewhere, or a pin at a peer, depends on), and a
    // new key beside an old certificate, or the reverse, would be a pair that does not match.
    // A symbolic link counts as there, even one that points nowhere: it is never written through.
    const bool have_cert = fs::exists(fs::symlink_status(cert, ec)), have_key = fs::exists(fs::symlink_status(key, ec));
    if (have_cert != have_key) {
        std::fprintf(stderr,
                     "postern init: %s exists but %s does not; not overwriting %s (move it away, or put its %s "
                     "back, and run init again)\n",
                     (have_key ? key : cert).c_str(), (have_key ? cert : key).c_str(), (have_key ? key : cert).c_str(),
                     have_key ? "certificate" : "key");
        return 1;
    }
    // Nor is a folder it makes or chmods followed when it is a symbolic link: run as root in a
    // folder someone else can write to, init would otherwise create files in, or chmod and
    // chown, wherever the link points (DIR itself may be one: it is what the caller named).
    // Checked before anything is made (the folders already there), and again once the folders
    // are made (below): each is a real directory of ours that no one else can write to, so that
    // nothing in it can be swapped for a link between the check and the writes. DIR itself
    // may be a link (it is what the caller named); its target is checked.
    const char* const subs[] = {"", "var", "var/tls", "var/spool", "var/mail", "var/mail/localhost"};
    const auto unsafe = [&](bool only_existing) {
        for (const char* sub : subs) {
            const fs::path p = root / sub;
            if (only_existing && !fs::exists(fs::symlink_status(p, ec))) continue;
            std::string what;
            if (!safe_folder(p.string(), *sub == '\0', what)) {
                std::fprintf(stderr, "postern init: %s %s (init writes keys and the spool there: make it a folder "
                             "of your own, mode 0755 or stricter, and run init again)\n", p.c_str(), what.c_str());
                return true;
            }
        }
        return false;
    };
    if (unsafe(/*only_existing=*/true)) return 1;
    // A kept pair must be usable: the config written next names it, and a pair that does not
    // load would make that config fail check-config and serve.
    if (have_cert) {
        SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
        auto usable = ctx ? tls::configure_server(ctx, cert.string(), key.string())
                          : result<void>(error{"cannot create a TLS context"});
        if (ctx) SSL_CTX_free(ctx);
        if (!usable) {
            std::fprintf(stderr, "postern init: the existing %s and %s cannot be used: %s (move them away and run "
                         "init again, which writes a new self-signed pair)\n", cert.c_str(), key.c_str(),
                         usable.error_message().c_str());
            return 1;
        }
    }
    ::umask(022);  // the folders made next are writable by us only
    for (const char* sub : subs) {
        fs::path p = root / sub;
        fs::create_directories(p, ec);
        if (ec) {
            std::fprintf(stderr, "postern init: cannot create %s: %s\n", p.c_str(), ec.message().c_str());
            return 1;
        }
    }
    if (unsafe(/*only_existing=*/false)) return 1;  // made by someone else meanwhile
    // var/mail only holds the per-domain maildirs: searchable, so that server.user (which the
    // server hands var/mail/localhost to when started as root) can reach its maildir.
    for (const char* sub : {"var/tls", "var/spool", "var/mail/localhost"})
        if (::chmod((root / sub).c_str(), 0700) != 0) {
            std::fprintf(stderr, "postern init: cannot chmod %s: %s\n", (root / sub).c_str(), std::strerror(errno));
            return 1;
        }
    if (!have_cert) {
        auto r = tls::write_self_signed(cert, key, "localhost", 825);
        if (!r) {
            std::fprintf(stderr, "postern init: %s\n", r.error_message().c_str());
            return 1;
        }
    }
    {
        // O_EXCL | O_NOFOLLOW: never through a link, never over a file made since the check.
        const int fd = ::open(conf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        const std::string text = config::default_config_text();
        bool ok = fd >= 0;
        for (std::size_t done = 0; ok && done < text.size();) {
            const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
            if (n < 0 && errno == EINTR) continue;
            ok = n > 0;
            if (ok) done += static_cast<std::size_t>(n);
        }
        const int err = errno;
        if (fd >= 0 && ::close(fd) != 0) ok = false;
        if (!ok) {
            std::fprintf(stderr, "postern init: cannot write %s: %s\n", conf.c_str(), std::strerror(err));
            return 1;
        }
    }
    // The written file must load, with the files it names (a kept pair included): catch a
    // broken default here, not at `serve`. Its server.user may not exist yet (said below).
    auto loaded = config::load(conf.string(), /*check_files=*/true, /*check_user=*/false);
    if (!loaded) {
        std::fprintf(stderr, "postern init: the default configuration does not load: %s\n",
                     loaded.error_message().c_str());
        return 1;
    }
    // Run as root (make run): the server reads its key again on every SIGHUP, after it has
    // dropped to server.user, so the key and its folder go to that user's group (0640, 0750:
    // the key stays root's, as Debian's ssl-cert group does it). The server holds the key in
    // memory anyway, so this adds nothing a compromised server would not already have.
    if (::geteuid() == 0 && !(*loaded)->server.user.empty()) {
        if (const passwd* pw = ::getpwnam((*loaded)->server.user.c_str())) {
            const gid_t gid = pw->pw_gid;
            const fs::path tls_dir = root / "var/tls";
            // A kept key that is a symbolic link (to a certificate manager's file, say) is left
            // as it is: its owner and mode are not init's to change.
            const bool key_linked = fs::is_symlink(fs::symlink_status(key, ec));
            if (key_linked)
                std::fprintf(stderr, "postern init: note: %s is a symbolic link: left as it is; user '%s' must be "
                             "able to read it for a SIGHUP reload\n", key.c_str(), (*loaded)->server.user.c_str());
            if (::chown(tls_dir.c_str(), 0, gid) != 0 || ::chmod(tls_dir.c_str(), 0750) != 0 ||
                (!key_linked && (::chown(key.c_str(), 0, gid) != 0 || ::chmod(key.c_str(), 0640) != 0))) {
                std::fprintf(stderr, "postern init: cannot give %s to group %u: %s\n", key.c_str(),
                             static_cast<unsigned>(gid), std::strerror(errno));
                return 1;
            }
        } else {
            std::fprintf(stderr,
                         "postern init: note: server.user '%s' does not exist yet: as root, check-config and serve "
                         "refuse this file until it does (make deps creates it); %s stays readable by root only, "
                         "so a SIGHUP reload after the privilege drop cannot read it (chgrp it to that user's "
                         "group and chmod 0640, and var/tls 0750)\n",
                         (*loaded)->server.user.c_str(), key.c_str());
        }
    }
    std::printf("wrote %s\n  certificate %s (%s)\n  spool %s\n  maildir %s\n"
                "start with: postern serve -c %s\n",
                conf.c_str(), cert.c_str(), have_cert ? "kept" : "self-signed, localhost", (root / "var/spool").c_str(), (root / "var/mail/localhost").c_str(),
                conf.c_str());
    return 0;
}

}  // namespace postern::cli
