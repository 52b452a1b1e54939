// runtime/privileges.cpp - switch from root to server.user after start-up (see privileges.hpp).
#include "runtime/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fmt/format.h>

namespace postern::runtime {
namespace {

namespace fs = std::filesystem;

// Give `root` and everything below it to uid:gid (only entries owned by someone else; symbolic
// links are not followed, so a link planted in a maildir cannot hand out another file).
result<void> hand_over(const fs::path& root, uid_t uid, gid_t gid) {
    std::error_code ec;
    if (!fs::exists(root, ec)) return {};
    auto give = [&](const fs::path& p) -> result<void> {
        struct stat st {};
        if (::lstat(p.c_str(), &st) != 0) return {};  // gone meanwhile
        if (st.st_uid == uid && st.st_gid == gid) return {};
        if (::lchown(p.c_str(), uid, gid) != 0)
            return error{fmt::format("cannot hand {} to the server user: {}", p.string(), std::strerror(errno))};
        return {};
    };
    if (auto r = give(root); !r) return r;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (auto r = give(it->path()); !r) return r;
    if (ec) return error{fmt::format("cannot walk {}: {}", root.string(), ec.message())};
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
    for (const auto& d : cfg.domains)
        if (!d.maildir.empty()) trees.emplace_back(d.maildir);
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
    return fmt::format("running as user {} (uid {}, gid {})", user, uid, gid);
}

}  // namespace postern::runtime
