// server/context.hpp - what every inbound session shares: the current config (swapped on
// SIGHUP), the TLS context, the spool, the disk pool and the committer, connection counters, the queue runner,
// the DNS resolver, the memory budget for message content, the session threads.
// Owned by runtime/daemon.cpp. Threads: the accept loops, `current`, the queue runner and the
// resolver belong to the main event loop (`main`); sessions run on the session threads' event
// loops (`workers`) and reach those only by posting to `main`. The spool, the disk pool, the
// committer, the connection counts (`admitted`), the content budget and the log are thread-safe.
#pragma once
#include <atomic>
#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/ssl/context.hpp>
#include <asio/thread_pool.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "policy/admission.hpp"
#include "policy/loop_choice.hpp"
#include "queue/committer.hpp"
#include "queue/spool.hpp"

namespace postern::runtime {
class queue_runner;
}
namespace postern::dns {
class resolver;
}
namespace postern::smtp {
class content_budget;
}

namespace postern::server {

struct generation {
    std::shared_ptr<const config::config> cfg;
    std::shared_ptr<asio::ssl::context> tls;  // null when no certificate is configured
    std::shared_ptr<asio::ssl::context> client_tls;  // outbound STARTTLS (trust store: tls.ca_file)
};

struct context {
    std::shared_ptr<const generation> current;  // replaced whole on reload (main thread)
    asio::any_io_executor main;                 // the main event loop
    std::vector<asio::io_context*> workers;     // session event loops; empty = sessions on main
    policy::loop_choice loops{1};               // which of `workers` takes the next connection
    queue::spool* spool = nullptr;
    asio::thread_pool* disk_pool = nullptr;
    queue::committer* committer = nullptr;  // batches inbound commits (spool.sync = "filesystem"); else null
    runtime::queue_runner* runner = nullptr;
    dns::resolver* resolver = nullptr;  // client host names (forward-confirmed reverse DNS)
    // Message content held in memory by all sessions (server.max_buffered_size); shared with
    // each session, which may outlive the context at exit.
    std::shared_ptr<smtp::content_budget> content_budget;

    // Connections open, in all and per client IP: admitted by the accept loops, released by
    // each session's thread as it ends (thread-safe).
    policy::admission admitted;
    // Sessions whose place went back (their SMTP exchange is over) that are still closing: the
    // TLS close_notify exchange, the close and their `disconnect` log line. The drain at
    // SIGTERM waits for them too. Shared: a session may outlive the context at exit.
    std::shared_ptr<std::atomic<unsigned>> closing = std::make_shared<std::atomic<unsigned>>(0);
    std::uint64_t next_session = 1;  // main thread
    bool draining = false;
};

}  // namespace postern::server
