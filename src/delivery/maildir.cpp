// delivery/maildir.cpp - write one message into a Maildir safely, with LF line ends (see
// maildir.hpp).
#include "delivery/maildir.hpp"

#include "smtp/address.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <clocale>
#include <cwctype>
#include <locale.h>
#include <chrono>
#include <cstring>
#include <mutex>
#include <unordered_set>
#include <utility>

#include <fmt/format.h>

namespace postern::delivery {
namespace {

std::function<int(const std::string&)> g_fsync_hook;

int do_fsync(int fd, const std::string& path) {
    if (g_fsync_hook)
        if (const int e = g_fsync_hook(path)) {
            errno = e;
            return -1;
        }
    return ::fsync(fd);
}

// fsync of a directory: 0, or -1 with errno.
int fsync_dir(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    const int rc = do_fsync(fd, path);
    const int e = errno;
    ::close(fd);
    errno = e;
    return rc;
}

// A file descriptor closed with its scope.
class unique_fd {
public:
    explicit unique_fd(int fd = -1) : fd_(fd) {}
    ~unique_fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        std::swap(fd_, o.fd_);
        return *this;
    }
    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }

private:
    int fd_;
};

// The directory `name` under `parent` (a directory fd, or AT_FDCWD), made when missing
// (`created` is then set) and opened. With `follow` false a symbolic link there is not
// followed: the open fails (dir_failure tells).
unique_fd make_dir_at(int parent, const char* name, bool follow, bool& created) {
    if (::mkdirat(parent, name, 0700) == 0) created = true;
    else if (errno != EEXIST) return unique_fd();
    return unique_fd(::openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW)));
}

// "/a/b" -> "/a", "b" -> ".", "/b" -> "/" (trailing slashes ignored).
std::string parent_of(std::string p) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    const auto slash = p.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : p.substr(0, slash);
}

// Mailboxes whose directories (the root's entry in its parent, the box's in the root, tmp, new
// and cur in the box) this process has made durable. Until then every delivery fsyncs them,
// whoever created them: a delivery that found them made by another one still in flight, or
// left by one whose fsync failed, must not count on them. A delivery that creates one (the
// mailbox was removed since) fsyncs its parent whatever this says.
std::mutex g_durable_mu;
std::unordered_set<std::string> g_durable_boxes;

outcome io_failure(std::string_view what, const std::string& path) {
    int e = errno;
    outcome o;
    o.result = outcome::kind::transient;
    o.dsn = (e == ENOSPC || e == EDQUOT || e == EFBIG) ? "4.3.1" : "4.3.0";
    o.reason = fmt::format("maildir {} {}: {}", what, path, std::strerror(e));
    return o;
}

// The directory `name` under `parent` (`path`) could not be made or opened (make_dir_at): a
// symbolic link there (O_NOFOLLOW | O_DIRECTORY then fails with ENOTDIR), or errno says why.
outcome dir_failure(int parent, const char* name, const std::string& path) {
    const int e = errno;
    struct stat st;
    if (::fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return {outcome::kind::transient, "4.3.0", fmt::format("maildir {} is a symbolic link: not followed", path)};
    errno = e;
    return io_failure("directory", path);
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Writes the pieces given to put() to `fd` as one stream with every CRLF turned into LF: a
// Maildir file is a local mail file with Unix line ends (Postfix's local(8) and virtual(8),
// Dovecot's LDA, qmail), not SMTP's wire format. A bare CR or LF stays as it is. A CR ending
// one piece waits for the next one's first octet (the pair can straddle prefix and content).
// Converted into a buffer of maildir_write_chunk octets, written whenever it fills: linear
// time, bounded memory. false (errno set by write) when a write failed.
class lf_writer {
public:
    explicit lf_writer(int fd) : fd_(fd) { buf_.reserve(maildir_write_chunk); }
    bool put(std::string_view data) {
        while (!data.empty()) {
            if (cr_) {
                cr_ = false;
                const bool crlf = data.front() == '\n';
                if (!emit(crlf ? "\n" : "\r")) return false;
                if (crlf) {
                    data.remove_prefix(1);
                    continue;
                }
            }
            const auto cr = data.find('\r');
            if (!emit(data.substr(0, cr))) return false;
            if (cr == std::string_view::npos) break;
            cr_ = true;
            data.remove_prefix(cr + 1);
        }
        return true;
    }
    // The last piece was put: a CR it ended with is written, then what the buffer holds.
    bool finish() {
        if (cr_ && !emit("\r")) return false;
        cr_ = false;
        return flush();
    }

private:
    bool emit(std::string_view s) {
        while (!s.empty()) {
            const std::size_t n = std::min(s.size(), maildir_write_chunk - buf_.size());
            buf_.append(s.substr(0, n));
            s.remove_prefix(n);
            if (buf_.size() == maildir_write_chunk && !flush()) return false;
        }
        return true;
    }
    bool flush() {
        const bool ok = write_all(fd_, buf_);
        buf_.clear();
        return ok;
    }

    int fd_;
    bool cr_ = false;  // a CR was put and not yet written
    std::string buf_;
};

// Unicode lower-casing of a UTF-8 string (glibc's C.UTF-8 tables), so that "Émile" and
// "émile" share a mailbox the way "Bob" and "bob" do. nullopt for malformed UTF-8 (RFC 3629,
// smtp::utf8_sequence): an overlong form would smuggle past maildir_folder's checks the '.',
// '/' or NUL it decodes to ("\xC0\xAE\xC0\xAE" is "..").
std::optional<std::string> utf8_lower(std::string_view in) {
    static const locale_t utf8 = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", nullptr);
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size();) {
        char32_t cp = static_cast<unsigned char>(in[i]);
        std::size_t len = 1;
        if (cp >= 0x80 && (len = smtp::utf8_sequence(in, i, &cp)) == 0) return std::nullopt;
        i += len;
        if (utf8 && cp >= 0x80) cp = static_cast<char32_t>(::towlower_l(static_cast<wint_t>(cp), utf8));
        else if (cp >= 'A' && cp <= 'Z') cp = cp - 'A' + 'a';
        if (cp < 0x80) out += static_cast<char>(cp);
        else if (cp < 0x800) { out += static_cast<char>(0xC0 | (cp >> 6)); out += static_cast<char>(0x80 | (cp & 0x3F)); }
        else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    return out;
}

}  // namespace

std::optional<std::string> maildir_folder(std::string_view local) {
    std::string out;
    if (local.size() >= 2 && local.front() == '"' && local.back() == '"') {
        // Quoted local part (RFC 5321 4.1.2): drop the quotes and the backslash escapes.
        local = local.substr(1, local.size() - 2);
        for (std::size_t i = 0; i < local.size(); ++i) {
            if (local[i] == '\\' && i + 1 < local.size()) ++i;
            out += local[i];
        }
    } else {
        out = local;
    }
    if (out.empty() || out.front() == '.') return std::nullopt;
    // No control, line separator or bidirectional formatting character
    // (smtp::is_invisible_control): a folder name is shown in listings and terminals, where
    // they would hide or reorder it. Malformed UTF-8 is refused by utf8_lower below.
    for (std::size_t i = 0; i < out.size();) {
        const auto u = static_cast<unsigned char>(out[i]);
        if (u == '/') return std::nullopt;
        char32_t cp = u;
        std::size_t n = 1;
        if (u >= 0x80 && (n = smtp::utf8_sequence(out, i, &cp)) == 0) return std::nullopt;
        if (smtp::is_invisible_control(cp)) return std::nullopt;
        i += n;
    }
    // The folder name's limit (NAME_MAX, 255 octets) applies to the lower-cased name, which can
    // be longer than the local part (U+023A is 2 octets, its lower case 3): checked before, a
    // long local part passed RCPT and then failed every delivery ("File name too long").
    auto folder = utf8_lower(out);
    if (folder && folder->size() > 255) return std::nullopt;
    return folder;
}

outcome deliver_maildir(const std::string& root, std::string_view local_part, std::string_view prefix,
                        std::string_view content, std::string_view hostname) {
    auto folder = maildir_folder(local_part);
    if (!folder) return {outcome::kind::permanent, "5.1.3", "local part is not a valid mailbox name"};
    const std::string box = fmt::format("{}/{}", root, *folder);
    // The directories are made when missing and opened, each relative to the one above it: the
    // root as configured (an administrator's link is followed), the mailbox and its tmp/, new/
    // and cur/ never through a symbolic link (deferred, 4.3.0). A link there would send
    // the mail elsewhere. The file is then created, linked and synced relative to them.
    // parents[k] gains an entry when a directory under it is created: sync[k] is then set.
    const std::string parents[] = {parent_of(root), root, box};
    bool sync[] = {false, false, false};
    unique_fd root_fd = make_dir_at(AT_FDCWD, root.c_str(), /*follow=*/true, sync[0]);
    if (!root_fd) return io_failure("directory", root);
    unique_fd box_fd = make_dir_at(root_fd.get(), folder->c_str(), false, sync[1]);
    if (!box_fd) return dir_failure(root_fd.get(), folder->c_str(), box);
    unique_fd sub[3];  // tmp, new, cur
    const char* const sub_names[] = {"tmp", "new", "cur"};
    for (std::size_t k = 0; k < 3; ++k)
        if (!(sub[k] = make_dir_at(box_fd.get(), sub_names[k], false, sync[2])))
            return dir_failure(box_fd.get(), sub_names[k], fmt::format("{}/{}", box, sub_names[k]));
    const int tmp_fd = sub[0].get(), new_fd = sub[1].get();
    // A directory is durable once its parent is fsynced: else a power cut could take a new
    // mailbox, and the copy counted delivered with it. Whenever a directory was created here,
    // and by every delivery until one has made the mailbox durable in this process (one that
    // found the directories made by another still in flight, or left by one whose fsync
    // failed, must not count on them).
    bool durable;
    {
        std::lock_guard lk(g_durable_mu);
        durable = g_durable_boxes.contains(box);
    }
    const int parent_fds[] = {-1, root_fd.get(), box_fd.get()};
    for (std::size_t k = 0; k < 3; ++k) {
        if (durable && !sync[k]) continue;
        if ((k == 0 ? fsync_dir(parents[k]) : do_fsync(parent_fds[k], parents[k])) != 0)
            return io_failure("fsync", parents[k]);
    }
    if (!durable) {
        std::lock_guard lk(g_durable_mu);
        g_durable_boxes.insert(box);
    }

    static std::atomic<unsigned long> seq{0};
    auto now = std::chrono::system_clock::now().time_since_epoch();
    auto sec = std::chrono::duration_cast<std::chrono::seconds>(now).count();
    auto usec = std::chrono::duration_cast<std::chrono::microseconds>(now).count() % 1000000;
    const std::string name = fmt::format("{}.M{}P{}Q{}.{}", sec, usec, ::getpid(), seq.fetch_add(1), hostname);
    const std::string tmp = fmt::format("{}/tmp/{}", box, name);
    const std::string dst = fmt::format("{}/new/{}", box, name);

    unique_fd fd(::openat(tmp_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return io_failure("create", tmp);
    auto failed = [&](std::string_view what, const std::string& path) {
        auto o = io_failure(what, path);
        ::unlinkat(tmp_fd, name.c_str(), 0);
        return o;
    };
    lf_writer out(fd.get());
    if (!out.put(prefix) || !out.put(content) || !out.finish()) return failed("write", tmp);
    if (do_fsync(fd.get(), tmp) != 0) return failed("fsync", tmp);
    fd = unique_fd();
    if (::linkat(tmp_fd, name.c_str(), new_fd, name.c_str(), 0) != 0) return failed("link", dst);
    ::unlinkat(tmp_fd, name.c_str(), 0);
    if (do_fsync(new_fd, box + "/new") != 0)
        return io_failure("fsync", box + "/new");  // there but maybe not durable: retry (a duplicate beats a loss)
    return {outcome::kind::sent, "2.0.0", dst};
}

void set_maildir_fsync_hook(std::function<int(const std::string&)> hook) { g_fsync_hook = std::move(hook); }

}  // namespace postern::delivery
