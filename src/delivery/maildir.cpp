// delivery/maildir.cpp - write one message into a Maildir safely (see maildir.hpp).
#include "delivery/maildir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <clocale>
#include <cwctype>
#include <locale.h>
#include <chrono>
#include <cstring>
#include <mutex>
#include <unordered_set>

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

bool mkdir_p1(const std::string& p) { return ::mkdir(p.c_str(), 0700) == 0 || errno == EEXIST; }

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
// left by one whose fsync failed, must not count on them.
std::mutex g_durable_mu;
std::unordered_set<std::string> g_durable_boxes;

outcome io_failure(std::string_view what, const std::string& path) {
    int e = errno;
    outcome o;
    o.result = outcome::kind::transient;
    o.dsn = (e == ENOSPC || e == EDQUOT) ? "4.3.1" : "4.3.0";
    o.reason = fmt::format("maildir {} {}: {}", what, path, std::strerror(e));
    return o;
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

// Unicode lower-casing of a UTF-8 string (glibc's C.UTF-8 tables), so that "Émile" and
// "émile" share a mailbox the way "Bob" and "bob" do. nullopt for invalid UTF-8.
std::optional<std::string> utf8_lower(std::string_view in) {
    static const locale_t utf8 = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", nullptr);
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size();) {
        auto c = static_cast<unsigned char>(in[i]);
        char32_t cp;
        std::size_t len;
        if (c < 0x80) { cp = c; len = 1; }
        else if ((c & 0xE0) == 0xC0) { cp = c & 0x1F; len = 2; }
        else if ((c & 0xF0) == 0xE0) { cp = c & 0x0F; len = 3; }
        else if ((c & 0xF8) == 0xF0) { cp = c & 0x07; len = 4; }
        else return std::nullopt;
        if (i + len > in.size()) return std::nullopt;
        for (std::size_t k = 1; k < len; ++k) {
            auto cc = static_cast<unsigned char>(in[i + k]);
            if ((cc & 0xC0) != 0x80) return std::nullopt;
            cp = (cp << 6) | (cc & 0x3F);
        }
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
    for (char c : out) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == '/') return std::nullopt;
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
    std::string box = fmt::format("{}/{}", root, *folder);
    for (const std::string& d : {root, box, box + "/tmp", box + "/new", box + "/cur"})
        if (!mkdir_p1(d)) return io_failure("mkdir", d);
    // A directory is durable once its parent is fsynced: else a power cut could take a new
    // mailbox, and the copy counted delivered with it. Once per mailbox and process.
    bool durable;
    {
        std::lock_guard lk(g_durable_mu);
        durable = g_durable_boxes.contains(box);
    }
    if (!durable) {
        for (const std::string& p : {parent_of(root), root, box})
            if (fsync_dir(p) != 0) return io_failure("fsync", p);
        std::lock_guard lk(g_durable_mu);
        g_durable_boxes.insert(box);
    }

    static std::atomic<unsigned long> seq{0};
    auto now = std::chrono::system_clock::now().time_since_epoch();
    auto sec = std::chrono::duration_cast<std::chrono::seconds>(now).count();
    auto usec = std::chrono::duration_cast<std::chrono::microseconds>(now).count() % 1000000;
    std::string name = fmt::format("{}.M{}P{}Q{}.{}", sec, usec, ::getpid(), seq.fetch_add(1), hostname);
    std::string tmp = fmt::format("{}/tmp/{}", box, name);
    std::string dst = fmt::format("{}/new/{}", box, name);

    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return io_failure("create", tmp);
    if (!write_all(fd, prefix) || !write_all(fd, content)) {
        auto o = io_failure("write", tmp);
        ::close(fd);
        ::unlink(tmp.c_str());
        return o;
    }
    if (do_fsync(fd, tmp) != 0) {
        auto o = io_failure("fsync", tmp);
        ::close(fd);
        ::unlink(tmp.c_str());
        return o;
    }
    ::close(fd);
    if (::link(tmp.c_str(), dst.c_str()) != 0) {
        auto o = io_failure("link", dst);
        ::unlink(tmp.c_str());
        return o;
    }
    ::unlink(tmp.c_str());
    if (fsync_dir(box + "/new") != 0)
        return io_failure("fsync", box + "/new");  // there but maybe not durable: retry (a duplicate beats a loss)
    return {outcome::kind::sent, "2.0.0", dst};
}

void set_maildir_fsync_hook(std::function<int(const std::string&)> hook) { g_fsync_hook = std::move(hook); }

}  // namespace postern::delivery
