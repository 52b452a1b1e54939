// runtime/control_server.cpp - accept loop and one-request sessions on the control socket.
// Only moves bytes and enforces limits (request size, timeouts); the decisions are in
// control::handle() (control/control.cpp) and the queue manager behind control::queue_control.
#include "runtime/control_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "log/log.hpp"
#include "runtime/blocking.hpp"
#include "runtime/thread_name.hpp"

namespace postern::runtime {
namespace {

using stream = asio::local::stream_protocol;
constexpr auto tok = asio::experimental::as_tuple(asio::use_awaitable);

constexpr std::size_t max_request = 4096;  // bytes, newline included
constexpr std::chrono::seconds read_timeout{5};
constexpr std::chrono::seconds write_timeout{30};  // a large `list` to a slow reader

// Is something listening on `path`? A UNIX socket with no listener refuses at once.
bool socket_answers(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
    ::close(fd);
    return ok;
}

// One connection, shared with its watchdog timer so the timer's handler never outlives it.
struct control_conn {
    explicit control_conn(stream::socket s) : sock(std::move(s)), timer(sock.get_executor()) {}
    stream::socket sock;
    asio::steady_timer timer;
    bool timed_out = false;
};

void arm(const std::shared_ptr<control_conn>& c, std::chrono::seconds limit) {
    c->timer.expires_after(limit);
    c->timer.async_wait([w = std::weak_ptr<control_conn>(c)](asio::error_code ec) {
        auto c = w.lock();
        if (ec || !c || c->timer.expiry() > asio::steady_timer::clock_type::now()) return;
        c->timed_out = true;
        asio::error_code ig;
        c->sock.cancel(ig);
    });
}

std::string first_line(std::string_view s) {
    auto nl = s.find('\n');
    return std::string(s.substr(0, nl));
}

// A refused request that would have changed the queue is logged here; the queue manager
// logs the changes it makes (held, released, deleted), so a success is not logged twice.
void log_refusal(std::string_view line, const std::string& response) {
    auto req = control::parse_request(line);
    if (!req || req->what == control::verb::list || req->what == control::verb::show) return;
    if (!response.starts_with("ERR ")) return;
    log::emit(log::level::warning, "control",
              {{"request", first_line(control::format_request(*req))},
               {"error", first_line(std::string_view(response).substr(4))}});
}

}  // namespace

result<control_acceptor> open_control_socket(asio::io_context& io, const std::string& spool_dir) {
    const std::string path = control::socket_path(spool_dir);
    if (auto problem = control::socket_path_problem(spool_dir)) return error{*problem};  // config::load says it first
    struct stat st{};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return error{fmt::format("{} exists and is not a socket", path)};
        if (socket_answers(path))
            return error{fmt::format("{} is in use: another postern server is running on this spool", path)};
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            return error{fmt::format("cannot remove stale {}: {}", path, std::strerror(errno))};
    }
    control_acceptor acc(io);
    asio::error_code ec;
    acc.open(stream(), ec);
    if (!ec) {
        // bind() makes the socket file with 0777 minus the umask: with a umask of 0177 it is
        // 0600 from the start. The spool directory does not cover that moment: one that
        // existed before keeps its own mode (0755 is common). The umask is the process's, so
        // it is set back at once; serve calls this before any other thread runs.
        const mode_t old_umask = ::umask(0177);
        acc.bind(stream::endpoint(path), ec);
        ::umask(old_umask);
    }
    if (ec) return error{fmt::format("cannot bind {}: {}", path, ec.message())};
    // 0600 whatever bind() did (a file system that ignores the umask, an ACL's default mask).
    if (::chmod(path.c_str(), 0600) != 0) {
        int e = errno;
        ::unlink(path.c_str());
        return error{fmt::format("cannot chmod {}: {}", path, std::strerror(e))};
    }
    acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        ::unlink(path.c_str());
        return error{fmt::format("cannot listen on {}: {}", path, ec.message())};
    }
    return result<control_acceptor>(std::move(acc));
}

control_server::control_server(control_acceptor acceptor, control::queue_control& q)
    : acceptor_(std::move(acceptor)), q_(q) {
    name_pool_threads(reader_, 1, "control");
    asio::error_code ec;
    if (acceptor_.is_open()) path_ = acceptor_.local_endpoint(ec).path();
}

control_server::~control_server() { join(); }

asio::awaitable<void> control_server::run() {
    for (;;) {
        auto [ec, sock] = co_await acceptor_.async_accept(tok);
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
            log::warning("control", fmt::format("accept: {}", ec.message()));
            // EMFILE and friends: back off a little instead of spinning.
            asio::steady_timer t(acceptor_.get_executor());
            t.expires_after(std::chrono::milliseconds(100));
            co_await t.async_wait(tok);
            continue;
        }
        asio::co_spawn(acceptor_.get_executor(), serve_one(std::move(sock)), [](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                log::error("control", ex.what());
            }
        });
    }
}

asio::awaitable<void> control_server::serve_one(stream::socket sock) {
    // Counted until its frame ends, however it ends (answered, client gone, or destroyed with
    // the event loop after this object: the count is shared, not this object's).
    struct counted {
        std::shared_ptr<std::size_t> n;
        explicit counted(std::shared_ptr<std::size_t> c) : n(std::move(c)) { ++*n; }
        counted(const counted&) = delete;
        counted& operator=(const counted&) = delete;
        ~counted() { --*n; }
    } in_progress(under_way_);
    auto c = std::make_shared<control_conn>(std::move(sock));
    std::string line;
    std::string response;
    char buf[1024];
    arm(c, read_timeout);
    for (;;) {
        auto [ec, n] = co_await c->sock.async_read_some(asio::buffer(buf), tok);
        line.append(buf, n);
        if (auto nl = line.find('\n'); nl != std::string::npos) {
            if (nl + 1 > max_request) response = control::err_response("request too long");
            line.resize(nl + 1);
            break;
        }
        if (line.size() >= max_request) {
            response = control::err_response("request too long");
            break;
        }
        if (c->timed_out) {
            response = control::err_response("timed out waiting for the request");
            break;
        }
        if (ec == asio::error::eof && !line.empty()) break;  // a request without its newline
        if (ec) co_return;                                   // the client went away
    }
    if (response.empty()) {
        // `list` and `show` read every queue file (or one): never on the main loop, which also
        // runs the accept loops, the queue manager and DNS; a queue of 100,000 messages would
        // stall them all. They only read the spool, so they may run on another thread; the
        // requests that change the queue stay on the main loop with the queue manager. `line`
        // outlives the reader's work: this frame is held by the work's completion handler.
        // (References only: built with GCC 12, a run_blocking() lambda's by-value capture of a
        // std::string is freed twice.)
        auto req = control::parse_request(line);
        if (req && (req->what == control::verb::list || req->what == control::verb::show)) {
            response = co_await run_blocking(reader_, [&q = q_, &line] { return control::handle(q, line); });
        } else {
            response = control::handle(q_, line);
        }
        log_refusal(line, response);
    }
    c->timed_out = false;
    arm(c, write_timeout);
    co_await asio::async_write(c->sock, asio::buffer(response), tok);
    c->timer.cancel();
    asio::error_code ig;
    c->sock.shutdown(stream::socket::shutdown_both, ig);
    c->sock.close(ig);
}

void control_server::close() {
    asio::error_code ec;
    acceptor_.close(ec);
    if (!path_.empty()) ::unlink(path_.c_str());
    path_.clear();
}

void control_server::join() {
    reader_.stop();
    reader_.join();
}

}  // namespace postern::runtime
