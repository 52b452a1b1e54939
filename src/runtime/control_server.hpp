// runtime/control_server.hpp - the server end of `postern queue ...` (SPEC §4): a UNIX stream
// socket `<spool.dir>/control.sock`, mode 0600 from its creation (whatever the umask or the
// spool directory's mode), so only the spool's owner (and root) can manage the queue. One
// request line per connection (at most 4 KiB, read within 5 s), answered with
// control::handle() and closed. The protocol is control/control.hpp.
#pragma once
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/thread_pool.hpp>

#include <memory>
#include <string>

#include "control/control.hpp"
#include "util/result.hpp"

namespace postern::runtime {

using control_acceptor = asio::local::stream_protocol::acceptor;

// Binds and listens on control::socket_path(spool_dir); the socket is 0600 from the moment it
// exists (the process umask is 0177 during the bind, then set back: call this while no other
// thread creates files). A leftover socket file from a server
// that is gone is removed first; a socket that still answers belongs to a running server on
// the same spool and is an error (two servers must never share a spool), as is a path that
// exists but is not a socket, or one too long for sockaddr_un.
result<control_acceptor> open_control_socket(asio::io_context& io, const std::string& spool_dir);

// The accept loop and the connections on the control socket, with the thread that answers
// `list` and `show` (they read the whole spool: never on the event loop). Each connection runs
// in its own coroutine on the acceptor's executor (the event-loop thread), where the requests
// that change the queue call `q`. A refused retry/delete/hold/release is logged as a `control`
// warning; successes are the queue manager's to log.
//
// Lifetime (runtime/daemon.cpp): destroyed before `q` and the spool, after the event loop has
// stopped and before it is destroyed. The destructor (or join()) waits for the request the
// reader thread is answering, so nothing it reads is destroyed under it.
class control_server {
public:
    control_server(control_acceptor acceptor, control::queue_control& q);
    control_server(const control_server&) = delete;
    control_server& operator=(const control_server&) = delete;
    ~control_server();

    // The accept loop; returns once close() is called.
    asio::awaitable<void> run();
    // Stops accepting and removes the socket file (at shutdown), so the CLI reports "not
    // running" instead of hanging on a socket nobody serves. Connections already accepted go on.
    void close();
    // Connections accepted and not yet done with (reading the request, answering, writing the
    // answer): a drain at SIGTERM waits for them, so a `queue list` under way gets all of it.
    std::size_t under_way() const { return *under_way_; }
    // Once the event loop has stopped: waits for the request the reader thread is on, and drops
    // the ones queued behind it (their connections close when the event loop is destroyed).
    void join();

private:
    asio::awaitable<void> serve_one(asio::local::stream_protocol::socket sock);

    control_acceptor acceptor_;
    std::string path_;  // the socket file, removed by close()
    control::queue_control& q_;
    // Shared with the connections' coroutines, which may outlive this object (destroyed with the
    // event loop): each counts itself in and out.
    std::shared_ptr<std::size_t> under_way_ = std::make_shared<std::size_t>(0);
    asio::thread_pool reader_{1};  // `list` and `show`, one at a time (an administrator's command)
};

}  // namespace postern::runtime
