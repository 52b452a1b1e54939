// server/shutdown_notice.hpp - RFC 5321 3.8 on SIGTERM: a session that waits for a command
// outside a transaction is told "421 4.3.2 ... shutting down" at once and closed, instead of
// holding the drain for its 10 s and then losing its connection without a word. A session in
// a transaction (after MAIL FROM, in DATA/BDAT, waiting for its commit) is left to finish it;
// it gets the 421 when it next waits for a command outside one.
// Each session thread keeps its own list of such waits (touched only by that thread);
// announce_shutdown() posts to every session thread the cancellation of its waits.
#pragma once
#include "runtime/connection.hpp"
#include "server/context.hpp"

namespace postern::server {

// On the session's thread, around a read of the next command outside a transaction: while it
// lives, a shutdown cancels the read (it completes with asio::error::operation_aborted).
class idle_wait {
public:
    explicit idle_wait(runtime::timed_connection& c);
    ~idle_wait();
    idle_wait(const idle_wait&) = delete;
    idle_wait& operator=(const idle_wait&) = delete;

private:
    runtime::timed_connection& c_;
};

// On a session thread: the shutdown has been announced to this thread.
bool shutting_down();

// On the main thread, once (SIGTERM/SIGINT): every session thread cancels its idle waits and
// from then on answers 421 instead of waiting for a command outside a transaction.
void announce_shutdown(context& ctx);

}  // namespace postern::server
