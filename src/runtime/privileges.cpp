// runtime/privileges.cpp - switch from root to server.user after start-up (see privileges.hpp).
#include "runtime/privileges.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "log/log.hpp"

namespace postern::runtime {
namespace {

namespace fs = std::filesystem;

// Give everything below the open directory `dir` (shown as `shown` in messages) to uid:gid:
// only entries owned by someone else. Everything is done relative to directory descriptors,
// never by path, and nothing follows a symbolic link: a server user who swaps a folder for a
// link to /etc while root walks the tree gets the link handed over, not what it points to.
// A file with more than one link is left alone (it could be a hard link to a file elsewhere).
// Only what root owns (made by root: `postern init`, an earlier start, an administrator) is
// handed over: a file or folder of another user (a maildir or spool.dir pointed at a shared
// tree, /home, a user's mail) is left to its owner, not descended into, and counted in
// `foreign` (found by review: every file below a configured maildir changed owner).
result<void> hand_over_below(int dir, const std::string& shown, uid_t uid, gid_t gid, std::size_t& foreign) {
    const int listing = ::dup(dir);
    DIR* d = listing < 0 ? nullptr : ::fdopendir(listing);
    if (!d) {
        if (listing >= 0) ::close(listing);
        return error{fmt::format("cannot walk {}: {}", shown, std::strerror(errno))};
    }
    std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
    while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        const std::string path = shown + "/" + name;
        struct stat st {};
        if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
        const bool is_dir = S_ISDIR(st.st_mode);
        if (st.st_uid != 0 && st.st_uid != uid) {
            ++foreign;
            continue;
        }
        if ((st.st_uid != uid || st.st_gid != gid) && (is_dir || st.st_nlink <= 1) &&
            ::fchownat(dir, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0 && errno != ENOENT)
            return error{fmt::format("cannot hand {} to the server user: {}", path, std::strerror(errno))};
        if (!is_dir) continue;
        const int sub = ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) continue;  // gone or swapped
            return error{fmt::format("cannot open {}: {}", path, std::strerror(errno))};
        }
        auto r = hand_over_below(sub, path, uid, gid, foreign);
        ::close(sub);
        if (!r) return r;
    }
    return {};
}

// Give `root` and everything below it to uid:gid (root itself comes from the configuration).
result<void> hand_over(const fs::path& root, uid_t uid, gid_t gid) {
    const int dir = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);  // configured: may be a link
    if (dir < 0) {
        if (errno == ENOENT) return {};
        return error{fmt::format("cannot open {}: {}", root.string(), std::strerror(errno))};
    }
    struct stat st {};
    if (::fstat(dir, &st) != 0) {
        ::close(dir);
        return error{fmt::format("cannot stat {}: {}", root.string(), std::strerror(errno))};
    }
    if (st.st_uid != 0 && st.st_uid != uid) {  // another user's folder: not ours to take
        ::close(dir);
        log::warning("privileges", fmt::format("{} belongs to uid {}, not root or the server user: left as it is "
                                               "(the server user may be unable to write there)",
                                               root.string(), st.st_uid));
        return {};
    }
    if ((st.st_uid != uid || st.st_gid != gid) && ::fchown(dir, uid, gid) != 0) {
        ::close(dir);
        return error{fmt::format("cannot hand {} to the server user: {}", root.string(), std::strerror(errno))};
    }
    std::size_t foreign = 0;
    auto r = hand_over_below(dir, root.string(), uid, gid, foreign);
    ::close(dir);
    if (r && foreign > 0)
        log::warning("privileges", fmt::format("{} file(s) or folder(s) under {} belong to other users: left to them "
                                               "(not handed to the server user, which may be unable to use them)",
                                               foreign, root.string()));
    return r;
}

// A maildir that does not exist yet: delivery creates it (delivery/maildir.cpp), but as the
// server user, who cannot write where root put a new folder for it (/var/mail). Root creates
// it now, with any missing parent folder (those root's, 0755: searchable, as `install -d`
// makes them), so that it is handed over with the rest and checked like the others.
result<void> create_missing(const fs::path& configured) {
    fs::path dir = configured.lexically_normal();
    if (!dir.has_filename()) dir = dir.parent_path();  // "var/mail/x/"
    struct stat st {};
    if (dir.empty() || ::stat(dir.c_str(), &st) == 0) return {};  // there already (or a link to it)
    // Walked through directory descriptors: a folder made here is opened with O_NOFOLLOW and
    // its mode set through that descriptor, so one swapped for a link between the mkdir and
    // the chmod (a writable /var/mail) makes root change nothing but what it made. Folders that
    // were there already are followed, links included, as the configured path is.
    int at = ::open(dir.is_absolute() ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (at < 0) return error{fmt::format("cannot open {}: {}", dir.is_absolute() ? "/" : ".", std::strerror(errno))};
    fs::path walked = dir.is_absolute() ? fs::path("/") : fs::path();
    const auto last = std::prev(dir.end());
    for (auto it = dir.begin(); it != dir.end(); ++it) {
        if (it->empty() || *it == "/") continue;
        walked /= *it;
        const mode_t mode = it == last ? 0700 : 0755;
        const bool made = ::mkdirat(at, it->c_str(), mode) == 0;
        if (!made && errno != EEXIST) {
            const int e = errno;
            ::close(at);
            return error{fmt::format("cannot create {}: {}", walked.string(), std::strerror(e))};
        }
        const int next = ::openat(at, it->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (made ? O_NOFOLLOW : 0));
        const int e = errno;
        ::close(at);
        if (next < 0) return error{fmt::format("cannot open {}: {}", walked.string(), std::strerror(e))};
        if (made && ::fchmod(next, mode) != 0) {  // whatever the umask
            const int e2 = errno;
            ::close(next);
            return error{fmt::format("cannot chmod {}: {}", walked.string(), std::strerror(e2))};
        }
        at = next;
    }
    ::close(at);
    return {};
}

}  // namespace

result<std::string> drop_privileges(const config::config& cfg) {
    const std::string& user = cfg.server.user;
    if (::geteuid() != 0) {
        if (user.empty()) return std::string();
        return fmt::format("not started as root: server.user = \"{}\" ignored, running as uid {}", user, ::geteuid());
    }
    if (user.empty()) {
        if (cfg.server.allow_root) return std::string("running as root (server.allow_root = true): not recommended");
        return error{
            "refusing to run as root: set server.user to an unprivileged user (e.g. \"postern\"), "
            "or server.allow_root = true"};
    }
    errno = 0;
    const passwd* pw = ::getpwnam(user.c_str());
    if (!pw)
        return error{fmt::format("server.user: no such user '{}' (create it, e.g. useradd --system --no-create-home "
                                 "--shell /usr/sbin/nologin {})",
                                 user, user)};
    if (pw->pw_uid == 0) return error{fmt::format("server.user: '{}' has uid 0", user)};
    const uid_t uid = pw->pw_uid;
    const gid_t gid = pw->pw_gid;

    // What the server writes after the switch: the spool and the maildirs.
    std::vector<fs::path> trees{cfg.spool.dir};
    for (const auto& d : cfg.domains) {
        if (d.maildir.empty()) continue;
        if (auto r = create_missing(d.maildir); !r) return error{r.error_message()};
        trees.emplace_back(d.maildir);
    }
    for (const auto& t : trees)
        if (auto r = hand_over(t, uid, gid); !r) return error{r.error_message()};

    if (::setgroups(1, &gid) != 0) return error{fmt::format("setgroups: {}", std::strerror(errno))};
    if (::setresgid(gid, gid, gid) != 0) return error{fmt::format("setresgid({}): {}", gid, std::strerror(errno))};
    if (::setresuid(uid, uid, uid) != 0) return error{fmt::format("setresuid({}): {}", uid, std::strerror(errno))};
    // Never trust that it worked: root must be out of reach now.
    if (::setuid(0) == 0 || ::geteuid() == 0 || ::getegid() != gid)
        return error{"privileges were not dropped (root is still reachable)"};

    // The server must still reach its folders (every parent directory must be searchable).
    for (const auto& t : trees)
        if (::access(t.c_str(), R_OK | W_OK | X_OK) != 0)
            return error{fmt::format("running as {}, cannot use {}: {} (its parent directories must be searchable "
                                     "by {})",
                                     user, t.string(), std::strerror(errno), user)};
    // Files read again at every SIGHUP: say now, not at the first failed reload, when the
    // server user cannot read them (a key left 0600 root: see `postern init`).
    std::vector<std::string> files{cfg.tls.cert_file, cfg.tls.key_file, cfg.tls.ca_file};
    for (const auto& p : cfg.profiles) {
        files.push_back(p.outbound.ca_file);
        files.push_back(p.inbound.ca_file);
    }
    for (const auto& f : files)
        if (!f.empty() && ::access(f.c_str(), R_OK) != 0)
            log::warning("privileges", fmt::format("{} cannot read {} ({}): a SIGHUP reload will fail until it can "
                                                   "(e.g. chgrp {} on the file, chmod 0640, and its folder "
                                                   "searchable by that group)",
                                                   user, f, std::strerror(errno), user));
    return fmt::format("running as user {} (uid {}, gid {})", user, uid, gid);
}

}  // namespace postern::runtime
