// server/shutdown_notice.cpp - per-thread list of idle command waits (see shutdown_notice.hpp).
#include "server/shutdown_notice.hpp"

#include <asio/post.hpp>

#include <unordered_set>

namespace postern::server {

namespace {

struct thread_state {
    bool shutting_down = false;
    std::unordered_set<runtime::timed_connection*> waiting;
};
thread_local thread_state t_state;

void cancel_waits() {
    t_state.shutting_down = true;
    for (runtime::timed_connection* c : t_state.waiting) {
        asio::error_code ig;
        c->sock.cancel(ig);
    }
}

}  // namespace

idle_wait::idle_wait(runtime::timed_connection& c) : c_(c) { t_state.waiting.insert(&c_); }

idle_wait::~idle_wait() { t_state.waiting.erase(&c_); }

bool shutting_down() { return t_state.shutting_down; }

void announce_shutdown(context& ctx) {
    if (ctx.workers.empty()) {
        asio::post(ctx.main, cancel_waits);  // sessions run on the main loop
        return;
    }
    for (asio::io_context* w : ctx.workers) asio::post(*w, cancel_waits);
}

}  // namespace postern::server
