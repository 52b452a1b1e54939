// queue/spool.cpp - durable commit of queue files: write, sync (syncfs or fsync), rename (never
// over an existing file), fsync directory; moves between queue/ and hold/ (link, fsync, unlink,
// fsync); removals (durable for `queue delete`); the spool lock taken before the start-up
// cleanup; per-recipient state files.
#include "queue/spool.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <climits>
#include <mutex>
#include <span>

#include <fmt/format.h>

#include "log/log.hpp"
#include "queue/state_file.hpp"

namespace postern::queue {
namespace {

std::function<int(const std::string&)> g_fsync_fault;
std::mutex g_fault_mu;

int do_fsync(int fd, const std::string& path) {
    {
        std::lock_guard lk(g_fault_mu);
        if (g_fsync_fault) {
            if (int e = g_fsync_fault(path)) { errno = e; return -1; }
        }
    }
    return ::fsync(fd);
}

// syncfs(2) of the file system holding `fd` (the same fault hook as fsync, with `path`).
int do_syncfs(int fd, const std::string& path) {
    {
        std::lock_guard lk(g_fault_mu);
        if (g_fsync_fault) {
            if (int e = g_fsync_fault(path)) { errno = e; return -1; }
        }
    }
    return ::syncfs(fd);
}

spool_failure fail(std::string_view what, const std::string& path) {
    int e = errno;
    return {e, fmt::format("{} {}: {}", what, path, std::strerror(e))};
}

const char* area_dir(area a) { return a == area::active ? "queue" : "hold"; }

bool valid_id(const std::string& id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id)
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return false;
    return true;
}

bool ensure_dir(const std::string& p) { return ::mkdir(p.c_str(), 0700) == 0 || errno == EEXIST; }

// open(2) `path` with `flags`, fsync it, close it: nullopt, or what failed.
std::optional<spool_failure> fsync_path(const std::string& path, int flags) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0600);
    if (fd < 0) return fail("open", path);
    std::optional<spool_failure> f;
    if (do_fsync(fd, path) != 0) f = fail("fsync", path);
    ::close(fd);
    return f;
}

// All of `parts`, in order, with as few writev(2) calls as the kernel allows (one, for a queue
// file: its header, the Received: line and the content).
bool write_all(int fd, std::span<const std::string_view> parts) {
    std::vector<iovec> iov;
    iov.reserve(parts.size());
    for (auto p : parts)
        if (!p.empty()) iov.push_back({const_cast<char*>(p.data()), p.size()});
    std::size_t first = 0;
    while (first < iov.size()) {
        const int n = static_cast<int>(std::min<std::size_t>(iov.size() - first, IOV_MAX));
        ssize_t w = ::writev(fd, iov.data() + first, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        auto left = static_cast<std::size_t>(w);
        while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
        if (first < iov.size()) {
            iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
            iov[first].iov_len -= left;
        }
    }
    return true;
}

bool write_all(int fd, std::string_view text) { return write_all(fd, std::span<const std::string_view>(&text, 1)); }

// Two names of one regular file (a move cut short between its link and its unlink). Neither
// name is followed: hold/ID as a symbolic link to ../queue/ID is no move's leftover (taken for
// one, the start-up removed the message it points to).
bool same_file(const std::string& a, const std::string& b) {
    struct stat sa{}, sb{};
    return ::lstat(a.c_str(), &sa) == 0 && ::lstat(b.c_str(), &sb) == 0 && S_ISREG(sa.st_mode) &&
           S_ISREG(sb.st_mode) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// The spool's sub-folder `sub` of the open folder `dirfd`, never through a symbolic link:
// spool::open runs before the privilege drop, in a spool the server user owns, so a link
// planted there would have root clean up (unlink in) a folder it points to. -1 and errno set
// on failure (ELOOP or ENOTDIR for a link).
int open_subdir(int dirfd, const char* sub) {
    return ::openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

// Remove the names of the open folder `fd` that `drop` picks (unlinkat: a link is removed, not
// followed). Takes `fd`.
template <class Pick>
void remove_entries(int fd, Pick drop) {
    DIR* d = ::fdopendir(fd);
    if (!d) {
        ::close(fd);
        return;
    }
    while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name != "." && name != ".." && drop(name)) ::unlinkat(fd, name.c_str(), 0);
    }
    ::closedir(d);
}

// rename(2) that never replaces an existing `to` (EEXIST instead): a queue id repeated (a clock
// stepped back across a restart) must not overwrite an acknowledged message. A file system
// without RENAME_NOREPLACE (EINVAL) gets link(2) then unlink(2), which refuses the same way.
int rename_noreplace(const std::string& from, const std::string& to) {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return -1;
    if (::link(from.c_str(), to.c_str()) != 0) return -1;
    ::unlink(from.c_str());
    return 0;
}

// The whole file; on failure nullopt with errno set to the failed call's (not close(2)'s).
// Only a regular file is read (open_regular_file).
std::optional<std::string> read_file(const std::string& path) {
    int fd = open_regular_file(path);
    if (fd < 0) return std::nullopt;
    std::string out;
    struct stat st{};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<std::size_t>(st.st_size));
    char buf[65536];
    for (;;) {
        ssize_t r = ::read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            const int e = errno;
            ::close(fd);
            errno = e;
            return std::nullopt;
        }
        if (r == 0) break;
        out.append(buf, static_cast<std::size_t>(r));
    }
    ::close(fd);
    return out;
}

}  // namespace

int open_regular_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return -1;
    struct stat st{};
    const bool stat_ok = ::fstat(fd, &st) == 0;
    if (stat_ok && S_ISREG(st.st_mode)) return fd;
    const int e = stat_ok ? EINVAL : errno;
    ::close(fd);
    errno = e;
    return -1;
}

std::string read_error(int e) {
    if (e == EINVAL) return "not a regular file";
    if (e == ELOOP) return "a symbolic link (not followed)";
    return std::strerror(e);
}

const char* to_string(rcpt_status s) {
    switch (s) {
        case rcpt_status::queued: return "queued";
        case rcpt_status::deferred: return "deferred";
        case rcpt_status::sent: return "sent";
        case rcpt_status::bounced: return "bounced";
    }
    return "queued";
}

namespace {

// "NAME:PORT" or "NAME:PORT UNIXTIME": a host token without spaces, CR or LF, then optionally
// one space and a decimal time. Anything else would not read back as the same entry.
bool tls_failure_entry_ok(std::string_view e) {
    const std::size_t sp = e.find(' ');
    const std::string_view host = e.substr(0, sp);
    if (host.empty() || host.find_first_of("\r\n") != std::string_view::npos) return false;
    if (sp == std::string_view::npos) return true;
    const std::string_view t = e.substr(sp + 1);
    return !t.empty() && t.size() <= 18 && t.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace

std::string format_state(const std::vector<rcpt_state>& st, const std::set<std::string>& tls_failed) {
    std::string out = "POSTERN-STATE 1\n";
    for (const auto& h : tls_failed)
        if (tls_failure_entry_ok(h)) out += fmt::format("tlsfail {}\n", h);
    for (std::size_t i = 0; i < st.size(); ++i) {
        std::string reply = st[i].last_reply;
        for (char& c : reply)
            if (c == '\r' || c == '\n') c = ' ';
        out += fmt::format("{} {} {} {} {}\n", i, to_string(st[i].status), st[i].attempts, st[i].next_attempt, reply);
    }
    return out;
}

result<std::vector<rcpt_state>> parse_state(std::string_view text, std::size_t recipients) {
    std::vector<rcpt_state> st(recipients);
    constexpr std::string_view magic = "POSTERN-STATE 1\n";
    if (text.substr(0, magic.size()) != magic) return error{"bad state magic"};
    std::size_t pos = magic.size();
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) return error{"truncated state line"};
        std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.substr(0, 8) == "tlsfail ") continue;  // parse_tls_failed() reads these
        // "IDX STATUS ATTEMPTS NEXT REPLY..."
        std::string_view f[4];
        for (auto& x : f) {
            std::size_t sp = line.find(' ');
            if (sp == std::string_view::npos) return error{"short state line"};
            x = line.substr(0, sp);
            line.remove_prefix(sp + 1);
        }
        std::size_t idx = 0;
        auto r1 = std::from_chars(f[0].data(), f[0].data() + f[0].size(), idx);
        if (r1.ec != std::errc() || idx >= recipients) return error{"bad recipient index"};
        rcpt_state& s = st[idx];
        if (f[1] == "queued") s.status = rcpt_status::queued;
        else if (f[1] == "deferred") s.status = rcpt_status::deferred;
        else if (f[1] == "sent") s.status = rcpt_status::sent;
        else if (f[1] == "bounced") s.status = rcpt_status::bounced;
        else return error{"bad status"};
        auto r2 = std::from_chars(f[2].data(), f[2].data() + f[2].size(), s.attempts);
        auto r3 = std::from_chars(f[3].data(), f[3].data() + f[3].size(), s.next_attempt);
        if (r2.ec != std::errc() || r3.ec != std::errc()) return error{"bad number"};
        s.last_reply = line;
    }
    return st;
}

std::set<std::string> parse_tls_failed(std::string_view text) {
    std::set<std::string> hosts;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) break;
        std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.substr(0, 8) == "tlsfail " && line.size() > 8) hosts.emplace(line.substr(8));
    }
    return hosts;
}

tls_failures tls_failure_times(const std::set<std::string>& entries, std::int64_t now) {
    tls_failures out;
    for (const std::string_view e : entries) {
        const std::size_t sp = e.find(' ');
        const std::string host(e.substr(0, sp));
        if (host.empty()) continue;
        std::int64_t t = 0;  // no time: a line of a version before times were kept, long ago
        if (sp != std::string_view::npos) {
            // An unreadable time: a failure just seen (the fallback waits the full delay),
            // never one long ago (plaintext at once).
            const std::string_view v = e.substr(sp + 1);
            const auto r = std::from_chars(v.data(), v.data() + v.size(), t);
            if (r.ec != std::errc() || r.ptr != v.data() + v.size() || t < 0) t = now;
        }
        note_tls_failure(out, host, t);
    }
    return out;
}

void note_tls_failure(tls_failures& times, const std::string& host, std::int64_t t) {
    const auto [it, fresh] = times.emplace(host, t);
    if (!fresh) it->second = std::min(it->second, t);
}

std::set<std::string> tls_failure_entries(const tls_failures& times) {
    std::set<std::string> out;
    for (const auto& [host, t] : times) out.insert(fmt::format("{} {}", host, std::max<std::int64_t>(0, t)));
    return out;
}

std::string misnamed_file(const std::string& path, const std::string& header_id, const std::string& id) {
    return header_id == id ? std::string() : fmt::format("{}: the file is message {}, not {}", path, header_id, id);
}

void spool::set_fsync_fault(std::function<int(const std::string&)> hook) {
    std::lock_guard lk(g_fault_mu);
    g_fsync_fault = std::move(hook);
}

result<std::unique_ptr<spool>> spool::open(const std::string& dir, durability how) {
    struct stat before {};
    const bool existed = ::stat(dir.c_str(), &before) == 0;
    if (!ensure_dir(dir)) return error{fmt::format("cannot create spool directory {}: {}", dir, std::strerror(errno))};
    for (const char* sub : {"tmp", "queue", "hold", "state"}) {
        std::string p = dir + "/" + sub;
        if (!ensure_dir(p)) return error{fmt::format("cannot create {}: {}", p, std::strerror(errno))};
    }
    // The folders' names are made durable before anything is committed into them: the fsyncs
    // of queue/ and hold/ make their files durable, not the folders' own names (on ext4 without
    // a journal a power cut could otherwise lose queue/ with every acknowledged message in it).
    // At every start, not only when this call made a folder: a crash between a mkdir and its
    // fsync, or a spool made by `postern init` (no fsync), is made durable by the next start.
    std::filesystem::path above = std::filesystem::path(dir).lexically_normal();
    if (!above.has_filename()) above = above.parent_path();  // "var/spool/"
    above = above.parent_path();
    // A folder above that this user may not read (mode 0711) cannot be opened to be synced: an
    // existing spool then starts anyway (it was named durably when it was made); one made just
    // now does not.
    if (auto f = fsync_path(above.empty() ? "." : above.string(), O_RDONLY | O_DIRECTORY))
        if (!(existed && f->errnum == EACCES)) return error{f->message};
    if (auto f = fsync_path(dir, O_RDONLY | O_DIRECTORY)) return error{f->message};
    // The sub-folders must be folders, not links (open_subdir), checked before anything in
    // them is touched: the spool is opened as root, in a folder the server user owns.
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return error{fmt::format("cannot open {}: {}", dir, std::strerror(errno))};
    for (const char* sub : {"tmp", "queue", "hold", "state"}) {
        const int fd = open_subdir(dir_fd, sub);
        if (fd < 0) {
            const int e = errno;
            ::close(dir_fd);
            return error{fmt::format("cannot open {}/{}: {}", dir, sub,
                                     e == ELOOP || e == ENOTDIR ? "not a directory (a symbolic link is not followed)"
                                                                : std::strerror(e))};
        }
        ::close(fd);
    }
    std::unique_ptr<spool> s(new spool(dir, how));
    // One server per spool, checked before anything is cleaned up: a second `postern serve` on
    // this spool would otherwise delete the running one's tmp/ files (commits in flight) and
    // its unfinished state writes. flock(2) ends with the process, so a kill -9 leaves no
    // stale lock; the pid in the file is only for the message.
    const std::string lock = dir + "/lock";
    s->lock_fd_ = ::openat(dir_fd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (s->lock_fd_ < 0) {
        const int e = errno;
        ::close(dir_fd);
        return error{fmt::format("cannot open {}: {}", lock,
                                 e == ELOOP ? "a symbolic link (not followed)" : std::strerror(e))};
    }
    struct stat lock_st {};
    if (::fstat(s->lock_fd_, &lock_st) != 0 || !S_ISREG(lock_st.st_mode)) {
        ::close(dir_fd);
        return error{fmt::format("cannot open {}: not a regular file", lock)};
    }
    if (::flock(s->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        const int e = errno;
        ::close(dir_fd);
        if (e != EWOULDBLOCK) return error{fmt::format("cannot lock {}: {}", lock, std::strerror(e))};
        std::string holder;
        if (auto pid = read_file(lock); pid && !pid->empty() && pid->size() < 16)
            holder = fmt::format(" (pid {})", pid->substr(0, pid->find('\n')));
        return error{fmt::format("another postern server{} is running on the spool {}: {} is locked", holder, dir,
                                 lock)};
    }
    if (::ftruncate(s->lock_fd_, 0) == 0) (void)write_all(s->lock_fd_, fmt::format("{}\n", ::getpid()));
    if (how == durability::filesystem) s->fs_fd_ = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    for (area a : {area::active, area::hold}) {
        const std::string p = fmt::format("{}/{}", dir, area_dir(a));
        s->area_fd_[static_cast<int>(a == area::hold)] = open_subdir(dir_fd, area_dir(a));
        if (s->area_fd_[static_cast<int>(a == area::hold)] < 0) {
            ::close(dir_fd);
            return error{fmt::format("cannot open {}: {}", p, std::strerror(errno))};
        }
    }
    // Leftovers in tmp/ were never acknowledged: discard them.
    if (const int fd = open_subdir(dir_fd, "tmp"); fd >= 0)
        remove_entries(fd, [](const std::string& name) { return name[0] != '.'; });
    // A move cut short by a crash (move(): linked into the other area, not yet unlinked): one
    // file under both names. The hold wins: an operator's hold is never undone by a crash (a
    // release cut short is simply not done yet), so queue/ID goes. Two different files under one
    // id are no move's leftover (a commit never takes an id present in either area): left alone.
    bool unlinked = false;
    for (const auto& id : s->list(area::hold)) {
        const std::string q = s->path(id, area::active);
        if (same_file(q, s->path(id, area::hold)) && ::unlink(q.c_str()) == 0) unlinked = true;
    }
    // Not durable if this fails: a power cut brings both names back, settled the same way.
    if (unlinked) (void)s->active_sync_->sync();
    // State files whose message is gone (a crash inside remove()) and unfinished state writes.
    std::vector<std::string> kept;
    if (const int fd = open_subdir(dir_fd, "state"); fd >= 0)
        remove_entries(fd, [&](const std::string& name) {
            const bool orphan = name[0] == '.' ||
                                (valid_id(name) && !s->exists(name, area::active) && !s->exists(name, area::hold));
            if (!orphan && valid_id(name)) kept.push_back(name);
            return orphan;
        });
    ::close(dir_fd);
    // The previous version's unsealed files, sealed once here (queue/state_file.hpp): from now
    // on an unsealed file is a stale block, not a message's state.
    s->seal_old_state_files(kept);
    return s;
}

std::string spool::new_id() {
    static std::atomic<unsigned> counter{0};
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    return fmt::format("{:013X}{:04X}", static_cast<unsigned long long>(us) & 0xFFFFFFFFFFFFFULL,
                       counter.fetch_add(1) & 0xFFFF);
}

std::string spool::path(const std::string& id, area where) const {
    return fmt::format("{}/{}/{}", dir_, area_dir(where), id);
}

std::optional<spool_failure> spool::commit(const envelope& env, std::initializer_list<std::string_view> parts,
                                           area where) {
    commit_item item{&env, std::vector<std::string_view>(parts), where, std::nullopt};
    commit_batch({&item, 1});
    return std::move(item.failure);
}

std::optional<spool_failure> spool::write_tmp(const std::string& tmp, const envelope& env,
                                              const std::vector<std::string_view>& parts) {
    const std::string header = format_header(env);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return fail("create", tmp);
    std::vector<std::string_view> all;
    all.reserve(parts.size() + 1);
    all.push_back(header);
    all.insert(all.end(), parts.begin(), parts.end());
    if (!write_all(fd, all)) {
        auto f = fail("write", tmp);
        ::close(fd);
        ::unlink(tmp.c_str());
        return f;
    }
    if (durability_ == durability::file && do_fsync(fd, tmp) != 0) {
        auto f = fail("fsync", tmp);
        ::close(fd);
        ::unlink(tmp.c_str());
        return f;
    }
    if (::close(fd) != 0) {
        auto f = fail("close", tmp);
        ::unlink(tmp.c_str());
        return f;
    }
    return std::nullopt;
}

void spool::commit_batch(std::span<commit_item> items) {
    struct written {
        commit_item* item;
        std::string tmp;
    };
    std::vector<written> ok;
    ok.reserve(items.size());
    // Taken before the writes: a sync of another caller that meets their error fails them too.
    const std::uint64_t content_mark = content_sync_->mark();
    for (auto& it : items) {
        it.failure.reset();
        if (!valid_id(it.env->id)) {
            it.failure = spool_failure{EINVAL, "invalid queue id"};
            continue;
        }
        std::string tmp = fmt::format("{}/tmp/{}", dir_, it.env->id);
        if (auto f = write_tmp(tmp, *it.env, it.parts)) it.failure = std::move(f);
        else ok.push_back({&it, std::move(tmp)});
    }
    if (ok.empty()) return;
    if (durability_ == durability::filesystem) {
        // The files' data and inodes reach the disk before their names enter queue/ (as with
        // fsync): one syncfs for this batch and every commit that got this far meanwhile.
        if (const int err = content_sync_->sync(content_mark); err != 0) {
            for (auto& w : ok) {
                ::unlink(w.tmp.c_str());
                w.item->failure = spool_failure{err, fmt::format("syncfs {}: {}", dir_, std::strerror(err))};
            }
            return;
        }
    }
    bool renamed_into[2] = {false, false};  // [active, hold]
    const std::uint64_t dir_mark[2] = {active_sync_->mark(), hold_sync_->mark()};
    for (auto& w : ok) {
        const std::string& id = w.item->env->id;
        const std::string final_path = path(id, w.item->where);
        // An id already taken (a clock stepped back across a restart) fails this commit (451,
        // the client sends again) rather than replace an acknowledged message: the id is
        // already written into the file (header, Received:) and was told to no one yet.
        // An id that cannot be looked up there (EIO) fails it too, with that error.
        const area other = w.item->where == area::hold ? area::active : area::hold;
        const presence there = probe(id, other);
        std::optional<spool_failure> refused;
        if (there.is == presence::kind::unknown)
            refused = spool_failure{there.errnum, fmt::format("access {}: {}; queue id {} not committed", path(id, other),
                                                              std::strerror(there.errnum), id)};
        else if (there.is == presence::kind::present || rename_noreplace(w.tmp, final_path) != 0)
            refused = there.is == presence::kind::present || errno == EEXIST
                          ? spool_failure{EEXIST, fmt::format("queue id {} is already in the spool "
                                                              "(clock stepped back?): not replaced", id)}
                          : fail("rename", final_path);
        if (refused) {
            w.item->failure = std::move(refused);
            ::unlink(w.tmp.c_str());
            continue;
        }
        renamed_into[w.item->where == area::hold] = true;
    }
    for (const area a : {area::active, area::hold}) {
        if (!renamed_into[a == area::hold]) continue;
        if (const int err = sync_of(a).sync(dir_mark[a == area::hold]); err != 0) {
            // Not durable: take them back, the clients must not get 250.
            for (auto& w : ok) {
                if (w.item->failure || w.item->where != a) continue;
                ::unlink(path(w.item->env->id, a).c_str());
                w.item->failure = folder_failure(a, err);
            }
        }
    }
}

spool::spool(std::string dir, durability how) : dir_(std::move(dir)), durability_(how) {
    content_sync_ = std::make_unique<group_sync>([this] {
        return do_syncfs(fs_fd_, dir_) == 0 ? 0 : (errno != 0 ? errno : EIO);
    });
    // One group-commit coordinator per directory that commits rename into, through the
    // directory's descriptor that open() keeps (no open and close per batch).
    auto syncer = [this](area where) {
        return std::make_unique<group_sync>([this, where, path = fmt::format("{}/{}", dir_, area_dir(where))] {
            return do_fsync(area_fd_[static_cast<int>(where == area::hold)], path) == 0 ? 0
                                                                                      : (errno != 0 ? errno : EIO);
        });
    };
    active_sync_ = syncer(area::active);
    hold_sync_ = syncer(area::hold);
}

spool::~spool() {
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
    if (fs_fd_ >= 0) ::close(fs_fd_);
    for (int fd : area_fd_)
        if (fd >= 0) ::close(fd);
}

std::uint64_t spool::directory_syncs() const { return active_sync_->syncs_run() + hold_sync_->syncs_run(); }

std::uint64_t spool::content_syncs() const { return content_sync_->syncs_run(); }

std::vector<std::string> spool::list(area where) const {
    std::vector<std::string> ids;
    if (DIR* d = ::opendir(fmt::format("{}/{}", dir_, area_dir(where)).c_str())) {
        while (dirent* e = ::readdir(d)) {
            std::string name = e->d_name;
            if (valid_id(name)) ids.push_back(std::move(name));
        }
        ::closedir(d);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

result<loaded_message> spool::load(const std::string& id, area where) const {
    if (!valid_id(id)) return error{"invalid queue id"};
    auto data = read_file(path(id, where));
    if (!data) {
        const int e = errno;
        return error{fmt::format("cannot read {}: {}", path(id, where), read_error(e))};
    }
    loaded_message m;
    m.data = std::move(*data);
    auto env = parse_header(m.data, m.content_offset);
    if (!env) return error{fmt::format("{}: {}", path(id, where), env.error_message())};
    m.env = std::move(*env);
    // Delivering another message's bytes would send that one again under this id's state.
    if (auto problem = misnamed_file(path(id, where), m.env.id, id); !problem.empty()) return error{problem};
    if (m.data.size() - m.content_offset != m.env.size)
        return error{fmt::format("{}: content size {} does not match header size {}", path(id, where),
                                 m.data.size() - m.content_offset, m.env.size)};
    return m;
}

bool spool::remove(const std::string& id, area where, bool state_written) {
    if (!valid_id(id)) return false;
    // The queue file first: a crash in between leaves an orphan state file (removed by open()),
    // never a queue file without its state (which would deliver every recipient again).
    if (::unlink(path(id, where).c_str()) != 0) return false;
    if (state_written) ::unlink(fmt::format("{}/state/{}", dir_, id).c_str());
    return true;
}

remove_result spool::remove_durably(const std::string& id, area where) {
    remove_result r;
    // The state file's removal is not synced: if it comes back without its message, open()
    // removes it as an orphan.
    const std::uint64_t mark = sync_of(where).mark();
    if (!remove(id, where)) return r;
    r.removed = true;
    if (const int err = sync_of(where).sync(mark); err != 0) r.failure = folder_failure(where, err);
    return r;
}

spool_failure spool::folder_failure(area where, int err) const {
    return {err, fmt::format("fsync {}/{}: {}", dir_, area_dir(where), std::strerror(err))};
}

presence spool::probe(const std::string& id, area where) const {
    if (!valid_id(id)) return {presence::kind::gone, 0};
    if (::access(path(id, where).c_str(), F_OK) == 0) return {presence::kind::present, 0};
    const int e = errno;
    if (e == ENOENT || e == ENOTDIR) return {presence::kind::gone, 0};
    return {presence::kind::unknown, e};
}

bool spool::exists(const std::string& id, area where) const {
    const presence p = probe(id, where);
    if (p.is != presence::kind::unknown) return p.is == presence::kind::present;
    // EIO, ELOOP, ENOMEM...: nothing known about the file. "Gone" would delete its message's
    // state (every recipient delivered again): say present.
    log::spool_error(id, fmt::format("access {}: {}; taken as present", path(id, where), std::strerror(p.errnum)));
    return true;
}

std::uint64_t spool::file_size(const std::string& id, area where) const {
    struct stat st{};
    if (!valid_id(id) || ::stat(path(id, where).c_str(), &st) != 0 || st.st_size < 0) return 0;
    return static_cast<std::uint64_t>(st.st_size);
}

void spool::remove_state(const std::string& id) {
    if (valid_id(id)) ::unlink(fmt::format("{}/state/{}", dir_, id).c_str());
}

move_result spool::move(const std::string& id, area from, area to) {
    move_result r;
    if (!valid_id(id)) return r;
    const std::string src = path(id, from), dst = path(id, to);
    // Not rename(2): on ext4 without a journal the removal from `from` (whose directory any
    // commit may fsync at any moment) can reach the disk before the entry in `to`, and a power
    // cut then leaves the file in neither (an acknowledged message in lost+found). The new name
    // is made durable first, then the old one goes: a crash in between leaves both (open()
    // keeps the held one), never none. As maildir delivery does (delivery/maildir.cpp).
    const std::uint64_t to_mark = sync_of(to).mark();
    // The new name taken back, and that made durable: else a power cut may bring it back, and
    // open() keeps the held name (a release refused would be held after all; a hold refused,
    // held). Best effort: the caller reports the first failure; this one is logged.
    const auto take_back = [&] {
        if (::unlink(dst.c_str()) != 0) {
            log::spool_error(id, fail("unlink", dst).message + "; the message is also in " + area_dir(to) + "/");
            return;
        }
        if (const int err = sync_of(to).sync(); err != 0)
            log::spool_error(id, folder_failure(to, err).message + "; after taking back " + dst +
                                     ": a power cut may bring that name back");
    };
    if (::link(src.c_str(), dst.c_str()) != 0) {
        const int e = errno;
        if (e == ENOENT) return r;  // no such message in `from`
        if (e != EEXIST || !same_file(src, dst)) {  // EEXIST: another file has the id there
            errno = e;
            r.failure = fail("link", dst);
            return r;
        }
        // Already linked by a move cut short: go on from there.
    }
    if (const int err = sync_of(to).sync(to_mark); err != 0) {
        // `to` may not keep the new name: take it back; the message stays where it was.
        take_back();
        r.failure = folder_failure(to, err);
        return r;
    }
    const std::uint64_t from_mark = sync_of(from).mark();
    if (::unlink(src.c_str()) != 0) {
        const int e = errno;
        // ENOENT: a delivery pass removed queue/ID meanwhile, every recipient done: the new
        // name must not deliver it again (nor come back after a power cut). Another error: a
        // message in both areas would be delivered while held; undone.
        take_back();
        if (e != ENOENT) {
            errno = e;
            r.failure = fail("unlink", src);
        }
        return r;
    }
    r.moved = true;
    if (const int err = sync_of(from).sync(from_mark); err != 0)  // a power cut may bring the old name back
        r.failure = folder_failure(from, err);
    return r;
}

result<std::vector<rcpt_state>> spool::read_state(const std::string& id, std::size_t recipients,
                                                  std::set<std::string>* tls_failed, std::string* damaged) const {
    const std::string p = fmt::format("{}/state/{}", dir_, id);
    auto text = read_file(p);
    if (!text) {
        if (errno == ENOENT) return std::vector<rcpt_state>(recipients);  // no state yet: all queued
        return error{fmt::format("cannot read {}: {}", p, read_error(errno))};
    }
    // Another message's bytes, or cut short: damaged, and its tlsfail hosts are not this one's.
    const auto records = unseal_state(*text, id);
    if (tls_failed) *tls_failed = records ? parse_tls_failed(*records) : std::set<std::string>{};
    auto st = records ? parse_state(*records, recipients) : error{records.error_message()};
    if (!st) {
        if (damaged) *damaged = fmt::format("{}: {}", p, st.error_message());
        return std::vector<rcpt_state>(recipients);
    }
    return st;
}

std::optional<spool_failure> spool::write_state(const std::string& id, const std::vector<rcpt_state>& st,
                                                const std::set<std::string>& tls_failed) {
    if (!valid_id(id)) return spool_failure{EINVAL, "invalid queue id"};
    // No fsync: losing a state update can only cause a repeated delivery, never a loss.
    return replace_state(id, seal_state(id, format_state(st, tls_failed)), /*sync=*/false);
}

std::optional<spool_failure> spool::replace_state(const std::string& id, std::string_view text, bool sync) {
    std::string tmp = fmt::format("{}/state/.{}.tmp", dir_, id);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return fail("create", tmp);
    if (!write_all(fd, text) || (sync && do_fsync(fd, tmp) != 0)) {
        // A full disk: the previous state stays in place (older, never newer than the truth).
        auto f = fail(sync ? "write or fsync" : "write", tmp);
        ::close(fd);
        ::unlink(tmp.c_str());
        return f;
    }
    ::close(fd);
    std::string final_path = fmt::format("{}/state/{}", dir_, id);
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
        auto f = fail("rename", final_path);
        ::unlink(tmp.c_str());
        return f;
    }
    return std::nullopt;
}

void spool::seal_old_state_files(const std::vector<std::string>& ids) {
    // Once per spool, not at every start-up: after the first, a file in the previous format is
    // a block freed before the upgrade showing under state/ID after a power cut, and sealing it
    // again would make another message's `sent` lines this one's (a loss). The marker is made
    // durable after the sealed files; a crash before it just seals again at the next start.
    const std::string marker = dir_ + "/" + std::string(state_sealed_marker);
    if (::access(marker.c_str(), F_OK) == 0) return;
    bool sealed = false;
    for (const auto& id : ids) {
        const std::string p = fmt::format("{}/state/{}", dir_, id);
        auto text = read_file(p);
        if (!text || !is_unsealed_state(*text)) continue;
        // Left unsealed, it reads as damaged from now on: every recipient queued (repeated
        // deliveries, the safe side).
        if (auto f = replace_state(id, seal_state(id, *text), /*sync=*/true))
            log::spool_error(id, fmt::format("{}; the state file stays in the previous format (read as damaged)",
                                             f->message));
        else
            sealed = true;
    }
    // One fsync of state/ for all the renames: after a power cut the sealed files are there,
    // or (unsealed, the old name back) damaged; never taken unchecked.
    const auto synced = [](const std::string& path, int flags) {
        const auto f = fsync_path(path, flags);
        if (f) log::spool_error("", f->message);
        return !f;
    };
    if (sealed && !synced(dir_ + "/state", O_RDONLY | O_DIRECTORY)) return;
    // Then the marker, and the spool directory that names it. Not made: sealed again next time.
    if (synced(marker, O_WRONLY | O_CREAT | O_NOFOLLOW)) (void)synced(dir_, O_RDONLY | O_DIRECTORY);
}

}  // namespace postern::queue
