// runtime/control_server.hpp - the server end of `postern queue ...` (SPEC §4): a UNIX stream
// socket `<spool.dir>/control.sock`, mode 0600 from its creation (whatever the umask or the
// spool directory's mode), so only the spool's owner (and root) can manage the queue. One
// request line per connection (at most 4 KiB, read within 5 s), answered with
// control::handle() and closed. The protocol is control/control.hpp.
#pragma once
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>

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

// The accept loop; returns once the acceptor is closed. Each connection runs in its own
// coroutine on the acceptor's executor, and `q` is called on that executor (the event-loop
// thread), so it may touch queue-runner state directly. A refused retry/delete/hold/release
// is logged as a `control` warning; successes are the queue manager's to log.
asio::awaitable<void> serve_control(control_acceptor& acceptor, control::queue_control& q);

// Stops accepting and removes the socket file (at shutdown), so the CLI reports "not running"
// instead of hanging on a socket nobody serves.
void close_control_socket(control_acceptor& acceptor);

}  // namespace postern::runtime
