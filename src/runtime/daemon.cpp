// runtime/daemon.cpp - process lifecycle of `postern serve` (SPEC §4): the open-files limit, the
// spool (locked: one server per spool), listeners, privilege drop, event loops; SIGHUP reloads;
// SIGTERM drains inbound sessions, delivery passes and control requests under way for up to
// 10 s (a SIGHUP then is ignored). The TLS contexts come from runtime/tls_setup.cpp, which
// `check-config` uses too.
#include "runtime/daemon.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>

#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <algorithm>
#include <functional>
#include <list>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "log/log.hpp"
#include "runtime/queue_runner.hpp"
#include "server/context.hpp"
#include "server/session.hpp"
#include "server/shutdown_notice.hpp"
#include "smtp/server_session.hpp"
#include "dns/resolver.hpp"
#include "runtime/control_server.hpp"
#include "runtime/loop_load.hpp"
#include "runtime/privileges.hpp"
#include "runtime/thread_name.hpp"
#include "runtime/tls_setup.hpp"

namespace postern::runtime {
namespace {

using tcp = asio::ip::tcp;

// The keys a reload cannot apply (sockets bound, threads started, the spool open, the user
// switched, the resolver built), named when the new file changes them.
std::string restart_only_changes(const config::config& was, const config::config& now) {
    const auto text = [](const std::vector<config::host_port>& v) {
        std::vector<std::string> out;
        for (const auto& h : v) out.push_back(h.to_string());
        return out;
    };
    std::vector<std::string> keys;
    if (text(was.server.listen) != text(now.server.listen)) keys.emplace_back("server.listen");
    if (was.server.threads != now.server.threads) keys.emplace_back("server.threads");
    if (was.server.user != now.server.user) keys.emplace_back("server.user");
    if (was.spool.dir != now.spool.dir) keys.emplace_back("spool.dir");
    if (was.spool.sync != now.spool.sync) keys.emplace_back("spool.sync");
    if (text(was.dns.servers) != text(now.dns.servers)) keys.emplace_back("dns.servers");
    return fmt::format("{}", fmt::join(keys, ", "));
}

// A reload's configuration with the keys a reload cannot apply kept at the running values, so
// that the configuration in effect says what is in effect: the MX self-check (delivery/
// myself.hpp) must compare against the addresses actually bound, not the new server.listen.
std::shared_ptr<const config::config> keep_restart_only(const config::config& loaded, const config::config& running) {
    auto c = std::make_shared<config::config>(loaded);
    c->server.listen = running.server.listen;
    c->server.threads = running.server.threads;
    c->server.user = running.server.user;
    c->spool.dir = running.spool.dir;
    c->spool.sync = running.spool.sync;
    c->dns.servers = running.dns.servers;
    return c;
}

// A complete generation (config + TLS contexts) or the reason it cannot be used. `running`:
// the configuration in effect (on a reload), whose restart-only keys stay.
result<std::shared_ptr<const server::generation>> build_generation(const std::string& path,
                                                                   const config::config* running = nullptr) {
    auto cfg = config::load(path);
    if (!cfg) return error{cfg.error_message()};
    for (const auto& w : config::warnings(**cfg)) log::warning("config", w);
    auto contexts = make_tls_contexts(**cfg);  // "FILE:LINE: key: message", as check-config says it
    if (!contexts) return error{contexts.error_message()};
    for (const auto& w : contexts->warnings) log::warning("tls", w);
    if (running) {
        if (auto keys = restart_only_changes(*running, **cfg); !keys.empty())
            log::warning("reload", fmt::format("{} changed: applied at the next restart, not now (the rest "
                                               "of the configuration is in effect)",
                                               keys));
    }
    auto gen = std::make_shared<server::generation>();
    gen->cfg = running ? keep_restart_only(**cfg, *running) : *cfg;
    gen->tls = std::move(contexts->server);
    gen->client_tls = std::move(contexts->client);
    return std::shared_ptr<const server::generation>(std::move(gen));
}

// Every inbound session and outbound connection is a descriptor, and so is each spool file
// being read or written: the soft RLIMIT_NOFILE (often 1024) goes up to the hard limit, which
// an unprivileged process may do (systemd: LimitNOFILE sets both). Below what
// server.max_connections needs, EMFILE would refuse sessions and fail spool reads: said once,
// at start-up.
void raise_open_files_limit(const config::config& cfg) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlimit want = rl;
        // An unlimited hard limit cannot be the soft one: fs.nr_open (1,048,576 by default) caps it.
        want.rlim_cur = rl.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : rl.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &want) == 0) rl.rlim_cur = want.rlim_cur;
    }
    // Beyond the sessions: 100 outbound transactions and 200 parked connections (runtime/
    // queue_runner.cpp, outbound/connection_cache.hpp), two files per disk thread, listeners,
    // the control socket, the spool's own descriptors, the resolver: 512 is ample.
    const rlim_t need = static_cast<rlim_t>(cfg.server.max_connections) + 512;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        log::warning("limits", fmt::format("open files limit (RLIMIT_NOFILE) is {} (hard {}), below the {} that "
                                           "server.max_connections = {} needs: raise the hard limit "
                                           "(ulimit -Hn, systemd LimitNOFILE) or lower server.max_connections",
                                           rl.rlim_cur, rl.rlim_max, need, cfg.server.max_connections));
}

// SIGHUP is held (blocked) from the start of `serve` until its handler is installed: before
// that, its default action would end the process, and it may come at any time (a reload script,
// a terminal closing). Blocked before any thread starts, so every thread inherits the mask;
// unblocked in the main thread only, which then takes every SIGHUP - one sent during start-up
// becomes a reload as soon as the server runs.
void mask_sighup(int how) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    ::pthread_sigmask(how, &set, nullptr);
}

}  // namespace

int serve(const std::string& config_path) {
    // Allocations of 1 MiB and more (message bodies past the content budget's free share,
    // loaded queue files) get a mapping of their own, given back to the system when freed.
    // glibc's default threshold rises after such frees, and freed bodies then stay resident in
    // its heaps: 20 sessions of endless DATA peaked at 506-649 MiB for the 512 MiB budget, and
    // at 480-532 MiB with this (bench/hostile/run.sh 30 data; docs/reliability.md).
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mask_sighup(SIG_BLOCK);
    std::signal(SIGPIPE, SIG_IGN);
    // A file-size limit (ulimit -f, systemd's LimitFSIZE) makes a write past it fail with
    // EFBIG (452 4.3.1 for that message) instead of SIGXFSZ killing the server.
    std::signal(SIGXFSZ, SIG_IGN);
    auto first = build_generation(config_path);
    if (!first) {
        std::fprintf(stderr, "%s\n", first.error_message().c_str());
        return 2;
    }
    const auto& cfg0 = *(*first)->cfg;
    log::set_format(cfg0.log.format == config::log_format::json ? log::format::json : log::format::text);
    raise_open_files_limit(cfg0);

    auto sp = queue::spool::open(cfg0.spool.dir, cfg0.spool.sync == config::spool_sync::file
                                                     ? queue::spool::durability::file
                                                     : queue::spool::durability::filesystem);
    if (!sp) {
        std::fprintf(stderr, "%s: spool: %s\n", config_path.c_str(), sp.error_message().c_str());
        return 1;
    }

    // What every session shares. Declared before the session loops so that it outlives them: at
    // exit, a session still open (cut off by the end of the drain, or by a second SIGTERM) is
    // destroyed with its loop, and gives its place back to ctx.admitted then.
    server::context ctx;
    // The session threads' event loops (server.threads; 0 = one per CPU). Declared before the
    // main loop so that they outlive it: at exit, the main loop's pending accepts hold sockets
    // that belong to these loops (their threads start after the privilege drop, below).
    const unsigned nthreads =
        cfg0.server.threads ? cfg0.server.threads : std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::unique_ptr<asio::io_context>> workers;
    for (unsigned i = 0; i < nthreads; ++i) workers.push_back(std::make_unique<asio::io_context>(1));
    asio::io_context io(1);

    std::list<tcp::acceptor> acceptors;
    std::string listening;
    for (const auto& l : cfg0.server.listen) {
        asio::error_code ec;
        auto addr = asio::ip::make_address(l.host, ec);
        if (ec) {
            std::fprintf(stderr, "%s: bad listen address %s\n", config_path.c_str(), l.to_string().c_str());
            return 2;
        }
        tcp::endpoint ep(addr, l.port);
        auto& acc = acceptors.emplace_back(io);
        acc.open(ep.protocol(), ec);
        if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec && addr.is_v6()) acc.set_option(asio::ip::v6_only(true), ec);
        if (!ec) acc.bind(ep, ec);
        if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            std::fprintf(stderr, "cannot listen on %s: %s\n", l.to_string().c_str(), ec.message().c_str());
            return 1;
        }
        listening += (listening.empty() ? "" : ",") + l.to_string();
    }
    // Ports bound, keys read: from here on, never root (runtime/privileges.hpp). Before any
    // thread starts (the disk pool, libunbound's).
    auto dropped = drop_privileges(cfg0);
    if (!dropped) {
        std::fprintf(stderr, "%s: %s\n", config_path.c_str(), dropped.error_message().c_str());
        return 1;
    }
    if (!dropped->empty()) log::emit(geteuid() == 0 ? log::level::warning : log::level::info, "privileges",
                                     {{"message", *dropped}});
    // The control socket: made by the user the server runs as (the spool's owner), and while
    // no other thread runs (open_control_socket sets the process umask around its bind).
    auto control_socket = open_control_socket(io, cfg0.spool.dir);
    if (!control_socket) {
        std::fprintf(stderr, "%s: %s\n", config_path.c_str(), control_socket.error_message().c_str());
        return 1;
    }

    // The disk pool: every fsync blocks one of these threads, and concurrent fsyncs are what
    // the file system batches (queue/group_sync.hpp; the shared fsyncbench: 1 thread ~1,400/s,
    // 8 threads ~2,900-3,500/s, 20 threads up to ~7,800/s on the reference machine). With 4
    // threads 20 sessions queued behind 4 fsyncs: inbound plaintext 1,600-1,800 msgs/s, with
    // 20 or 40 threads 1,860-2,020 (issue 6). Idle threads cost no CPU and little memory.
    constexpr int disk_threads = 24;
    asio::thread_pool pool(disk_threads);
    name_pool_threads(pool, disk_threads, "disk");
    ctx.current = *first;
    ctx.spool = sp->get();
    ctx.disk_pool = &pool;
    // spool.sync = "filesystem": inbound messages are committed in batches on one thread
    // (queue/committer.hpp). Declared after the session loops: it is joined (and finishes what
    // was submitted, posting the results to those loops) before they are destroyed.
    std::optional<queue::committer> committer;
    if (cfg0.spool.sync == config::spool_sync::filesystem) ctx.committer = &committer.emplace(**sp);
    auto resolver = dns::make_resolver(io.get_executor(), cfg0.dns.servers);
    ctx.resolver = resolver.get();
    ctx.content_budget = std::make_shared<smtp::content_budget>(cfg0.server.max_buffered_size);
    queue_runner runner(io, pool, **sp, *resolver, [&ctx] {
        return queue_runner::settings{ctx.current->cfg, ctx.current->client_tls};
    });
    ctx.runner = &runner;
    ctx.main = io.get_executor();
    // Declared after the queue runner and the main loop: destroyed before the runner (its reader
    // thread, which may be reading the spool for `queue list`, is joined first), while the
    // main loop still exists to destroy the connections' coroutines.
    control_server control_srv(std::move(*control_socket), runner);
    // Session threads (server.threads; 0 = one per CPU), each with its own event loop; the
    // accept loops hand each connection to the one policy::loop_choice picks, from the load that
    // runtime/loop_load.hpp samples (server/context.hpp says who owns what).
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
    std::vector<std::thread> threads;
    for (auto& w : workers) {
        keep_running.push_back(asio::make_work_guard(*w));
        ctx.workers.push_back(w.get());
    }
    for (std::size_t i = 0; i < workers.size(); ++i)
        threads.emplace_back([&w = workers[i], i] {
            name_this_thread(fmt::format("session-{}", i));
            w->run();
        });
    ctx.loops = policy::loop_choice(workers.size());
    struct join_on_exit {
        std::vector<std::unique_ptr<asio::io_context>>& workers;
        std::vector<std::thread>& threads;
        void operator()() {
            for (auto& w : workers) w->stop();
            for (auto& t : threads)
                if (t.joinable()) t.join();
        }
        ~join_on_exit() { (*this)(); }
    } stop_workers{workers, threads};
    for (auto& acc : acceptors) asio::co_spawn(io, server::accept_loop(ctx, acc), asio::detached);
    if (workers.size() > 1) asio::co_spawn(io, sample_loop_load(io, threads, ctx.loops, ctx.draining), asio::detached);
    asio::co_spawn(io, control_srv.run(), asio::detached);
    log::started(PROJECT_VERSION_STRING, config_path, listening);
    runner.recover();

    asio::signal_set signals(io, SIGHUP, SIGTERM, SIGINT);
    mask_sighup(SIG_UNBLOCK);
    // While stopping: a second SIGTERM or SIGINT stops now. A SIGHUP neither reloads nor stops
    // (it used to end the drain, cutting off the sessions in their transactions).
    std::function<void()> wait_stop = [&] {
        signals.async_wait([&](asio::error_code ec, int sig) {
            if (ec) return;
            if (sig != SIGHUP) {
                io.stop();
                return;
            }
            log::warning("signal", "SIGHUP while stopping: ignored (no reload; SIGTERM or SIGINT stops at once)");
            wait_stop();
        });
    };
    std::function<void()> wait_signal;
    wait_signal = [&] {
        signals.async_wait([&](asio::error_code ec, int sig) {
            if (ec) return;
            if (sig == SIGHUP) {
                auto next = build_generation(config_path, ctx.current->cfg.get());
                if (!next) {
                    log::config_reload_failed(config_path, next.error_message());
                } else {
                    log::set_format((*next)->cfg->log.format == config::log_format::json ? log::format::json
                                                                                          : log::format::text);
                    ctx.current = *next;
                    ctx.content_budget->set_limit((*next)->cfg->server.max_buffered_size);
                    log::config_reloaded(config_path);
                }
                wait_signal();
                return;
            }
            // SIGTERM / SIGINT: stop accepting, let sessions finish for a while, then stop.
            log::stopping(sig == SIGTERM ? "SIGTERM" : "SIGINT");
            ctx.draining = true;
            server::announce_shutdown(ctx);  // idle sessions: 421 4.3.2 at once (RFC 5321 3.8)
            for (auto& acc : acceptors) {
                asio::error_code ig;
                acc.close(ig);
            }
            runner.stop();
            control_srv.close();
            // Stop once the last session, the last delivery pass and the last control request
            // under way have ended (a transaction cut off after its data was sent is delivered
            // again after the restart; queue_runner::stop() starts nothing new; a `queue list`
            // gets its whole answer), or after 10 s at the latest.
            asio::co_spawn(
                io,
                [&]() -> asio::awaitable<void> {
                    asio::steady_timer t(io);
                    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
                    while ((ctx.admitted.open() > 0 || *ctx.closing > 0 || runner.passes_under_way() > 0 ||
                            control_srv.under_way() > 0) &&
                           std::chrono::steady_clock::now() < deadline) {
                        t.expires_after(std::chrono::milliseconds(50));
                        co_await t.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
                    }
                    io.stop();
                },
                asio::detached);
            wait_stop();
        });
    };
    wait_signal();
    io.run();
    stop_workers();  // sessions still running after the drain end here
    control_srv.join();  // a `queue list` still reading the spool ends before the spool does
    pool.join();
    return 0;
}

}  // namespace postern::runtime
