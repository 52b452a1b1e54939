// cli/queue.cpp - `postern queue ...`: parse the subcommand, read spool.dir from the config,
// exchange one request with the running server over its control socket, print the answer.
// Blocking POSIX sockets on purpose: a CLI with one request needs no event loop.
#include "cli/queue.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "config/config.hpp"

namespace postern::cli {
namespace {

constexpr int send_timeout_s = 10;
constexpr int receive_timeout_s = 120;  // `list` of a very large queue takes a while

void set_timeout(int fd, int opt, int seconds) {
    timeval tv{};
    tv.tv_sec = seconds;
    ::setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

void fail(const std::string& message) { std::fprintf(stderr, "postern queue: %s\n", message.c_str()); }

void unreachable(const std::string& path, int err) {
    std::string why = std::strerror(err);
    // Permission denied: the server is probably there, but the socket is 0600.
    const char* hint = err == EACCES || err == EPERM ? "run as the spool's owner or root"
                                                     : "is `postern serve` running?";
    fail("cannot reach the server at " + path + ": " + why + " (" + hint + ")");
}

// The payload on stdout, all of it: a full disk or a closed pipe is a failure, not success.
bool print(const std::string& payload) {
    const bool written = std::fwrite(payload.data(), 1, payload.size(), stdout) == payload.size();
    if (std::fflush(stdout) == 0 && written && !std::ferror(stdout)) return true;
    fail(std::string("cannot write the answer to standard output: ") + std::strerror(errno));
    return false;
}

}  // namespace

int run_queue_request(const std::string& socket_path, const control::request& req) {
    const std::string line = control::format_request(req);
    // Refuse locally what the server would refuse (a bad id), without needing the server.
    if (auto check = control::parse_request(line); !check) {
        fail(check.error_message());
        return 1;
    }

    sockaddr_un sa{};
    if (socket_path.size() >= sizeof sa.sun_path) {
        unreachable(socket_path, ENAMETOOLONG);
        return 1;
    }
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, socket_path.c_str(), socket_path.size() + 1);

    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        unreachable(socket_path, errno);
        return 1;
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
        unreachable(socket_path, errno);
        ::close(fd);
        return 1;
    }
    set_timeout(fd, SO_SNDTIMEO, send_timeout_s);
    set_timeout(fd, SO_RCVTIMEO, receive_timeout_s);

    for (std::size_t off = 0; off < line.size();) {
        ssize_t w = ::send(fd, line.data() + off, line.size() - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            fail("cannot send the request to " + socket_path + ": " + std::strerror(errno));
            ::close(fd);
            return 1;
        }
        off += static_cast<std::size_t>(w);
    }
    ::shutdown(fd, SHUT_WR);

    std::string response;
    char buf[65536];
    for (;;) {
        ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            ::close(fd);
            fail("no answer from the server at " + socket_path + ": " +
                 (e == EAGAIN || e == EWOULDBLOCK ? std::string("timed out") : std::strerror(e)));
            return 1;
        }
        if (r == 0) break;
        response.append(buf, static_cast<std::size_t>(r));
    }
    ::close(fd);

    // Only a whole answer is printed: one cut short (the server stopped or gave up writing)
    // would give a `--json` consumer half a document and exit 0.
    auto answer = control::parse_response(response);
    if (!answer) {
        fail(answer.error_message());
        return 1;
    }
    if (!answer->ok) {
        fail(answer->text);
        return 1;
    }
    return print(answer->text) ? 0 : 1;
}

queue_command::queue_command(CLI::App& app) {
    queue_ = app.add_subcommand("queue", "manage the running server's queue (through <spool.dir>/control.sock)");
    queue_->require_subcommand(1);
    queue_->add_option("-c,--config", config_path_, "configuration file")->capture_default_str();

    auto add = [&](const char* name, const char* what) {
        CLI::App* s = queue_->add_subcommand(name, what);
        s->add_option("-c,--config", config_path_, "configuration file")->capture_default_str();
        return s;
    };
    list_ = add("list", "messages still queued, with per-recipient state");
    list_->add_flag("--json", json_, "print a JSON array");

    show_ = add("show", "one message, with per-recipient state");
    show_->add_option("ID", id_, "queue id")->required();
    show_->add_flag("--json", json_, "print a JSON object");

    retry_ = add("retry", "attempt delivery now, ignoring the retry schedule");
    auto* target = retry_->add_option_group("target", "which messages");
    target->add_option("ID", id_, "queue id");
    target->add_flag("--all", all_, "every queued message (held ones stay held)");
    target->require_option(1);

    delete_ = add("delete", "remove a message from the queue, without a bounce");
    delete_->add_option("ID", id_, "queue id")->required();
    hold_ = add("hold", "put a message on hold: not delivered until released");
    hold_->add_option("ID", id_, "queue id")->required();
    release_ = add("release", "release a held message for delivery");
    release_->add_option("ID", id_, "queue id")->required();
}

bool queue_command::selected() const { return queue_->parsed(); }

int queue_command::run() const {
    control::request req;
    req.id = id_;
    req.json = json_;
    if (list_->parsed()) {
        req.what = control::verb::list;
        req.id.clear();
    } else if (show_->parsed()) {
        req.what = control::verb::show;
    } else if (retry_->parsed()) {
        req.what = control::verb::retry;
        req.all = all_;
        if (all_) req.id.clear();
    } else if (delete_->parsed()) {
        req.what = control::verb::del;
    } else if (hold_->parsed()) {
        req.what = control::verb::hold;
    } else if (release_->parsed()) {
        req.what = control::verb::release;
    } else {
        return 1;
    }

    // Only spool.dir is needed: not the key, which may be readable by root alone.
    auto cfg = config::load(config_path_, /*check_files=*/false);
    if (cfg) return run_queue_request(control::socket_path((*cfg)->spool.dir), req);
    // A file being edited (or one a SIGHUP refused: the server keeps the configuration it last
    // loaded) must not take the queue out of the administrator's hands: its spool.dir is enough.
    auto dir = config::spool_dir_of(config_path_);
    if (!dir) {
        std::fprintf(stderr, "%s\n", cfg.error_message().c_str());
        return 2;
    }
    std::fprintf(stderr, "postern queue: warning: %s has errors (a running server keeps the configuration it "
                         "last loaded); using its spool.dir %s:\n%s\n",
                 config_path_.c_str(), dir->c_str(), cfg.error_message().c_str());
    return run_queue_request(control::socket_path(*dir), req);
}

}  // namespace postern::cli
