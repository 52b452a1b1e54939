// server/session.hpp - one inbound SMTP connection: the coroutine that drives smtp::server_session
// over a TCP socket (and, after STARTTLS, an OpenSSL stream), with per-operation timeouts.
#pragma once
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>

#include <string>

#include "server/context.hpp"

namespace postern::server {

// One session with the configuration `gen`, on the executor of `sock` (a session thread);
// `remote` is the client's address as accept(2) gave it, `local_port` the listener's port,
// `place` its admission (given back before the socket is closed).
asio::awaitable<void> run_session(context& ctx, std::shared_ptr<const generation> gen, asio::ip::tcp::socket sock,
                                  asio::ip::tcp::endpoint remote, unsigned short local_port, std::string session_id,
                                  policy::admission::slot place);

// Accept loop for one listening socket (on the main event loop); enforces max_connections and
// max_connections_per_ip and deals the connections out to the session threads.
asio::awaitable<void> accept_loop(context& ctx, asio::ip::tcp::acceptor& acceptor);

}  // namespace postern::server
