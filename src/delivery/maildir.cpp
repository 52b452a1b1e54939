// delivery/maildir.cpp - write one message into a Maildir safely (see maildir.hpp).
#include "delivery/maildir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

namespace postern::delivery {
namespace {

bool mkdir_p1(const std::string& p) { return ::mkdir(p.c_str(), 0700) == 0 || errno == EEXIST; }

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
    if (out.empty() || out.size() > 255 || out.front() == '.') return std::nullopt;
    for (char& c : out) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == '/') return std::nullopt;
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

outcome deliver_maildir(const std::string& root, std::string_view local_part, std::string_view prefix,
                        std::string_view content, std::string_view hostname) {
    auto folder = maildir_folder(local_part);
    if (!folder) return {outcome::kind::permanent, "5.1.3", "local part is not a valid mailbox name"};
    std::string box = fmt::format("{}/{}", root, *folder);
    for (const std::string& d : {root, box, box + "/tmp", box + "/new", box + "/cur"})
        if (!mkdir_p1(d)) return io_failure("mkdir", d);

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
    if (::fsync(fd) != 0) {
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
    int dfd = ::open((box + "/new").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || ::fsync(dfd) != 0) {
        auto o = io_failure("fsync", box + "/new");
        if (dfd >= 0) ::close(dfd);
        return o;  // the file is there but maybe not durable: retry (a duplicate beats a loss)
    }
    ::close(dfd);
    return {outcome::kind::sent, "2.0.0", dst};
}

}  // namespace postern::delivery
