// dns/unbound_resolver.cpp - the resolver on libunbound, driven by the Asio event loop.
// libunbound resolves (and, once a trust anchor is set, validates) in its own background
// thread (ub_ctx_async(ctx, 1): a thread, not a forked copy of the daemon); results come back
// through a pipe, ub_fd(). We wait for that pipe with a stream_descriptor on a strand and call
// ub_process(), which runs our callback per finished query; the callback completes the
// awaiting coroutine on its own executor. Each query also has an Asio deadline, since
// libunbound alone may take ~20 s to give up on a dead server.
#include "dns/resolver.hpp"

#include <unbound.h>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/dispatch.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/post.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/prefer.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

#include "dns/rdata.hpp"

namespace postern::dns {

resolver::~resolver() = default;

namespace {

constexpr int type_a = 1;
constexpr int type_ptr = 12;
constexpr int type_mx = 15;
constexpr int type_aaaa = 28;
constexpr int class_in = 1;

// RFC 6761/6303/7686 names that libunbound answers itself by default (services/localzone.c,
// util/as112.c in unbound 1.17). With dns.servers set they are declared "transparent" local
// zones: with no local data in them, every query goes to the forwarders. ("local-zone:
// <name> nodefault" would be the documented way, but libunbound 1.17's ub_ctx_set_option()
// stores the whole "<name> nodefault" string as the name, so it never matches.) The private
// reverse zones (RFC 1918, 6598, documentation ranges) go with unblock-lan-zones.
constexpr const char* special_use_zones[] = {
    "localhost.",
    "127.in-addr.arpa.",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
    "onion.",
    "test.",
    "invalid.",
    "home.arpa.",
    "resolver.arpa.",
    "service.arpa.",
};

const char* type_name(int type) {
    switch (type) {
    case type_a: return "A";
    case type_ptr: return "PTR";
    case type_mx: return "MX";
    case type_aaaa: return "AAAA";
    }
    return "?";
}

// One query's outcome, copied out of the ub_result (which is freed at once).
struct raw_answer {
    dns_status status = dns_status::temporary;
    bool secure = false;
    std::vector<std::string> rdata;
    std::string error;
};

raw_answer classify(const std::string& what, int err, const ub_result* r) {
    raw_answer a;
    if (err != 0) {
        // UB_SYNTAX: the name cannot be a domain name; it never will be, so it is not "temporary".
        a.status = err == UB_SYNTAX ? dns_status::nxdomain : dns_status::temporary;
        a.error = what + ": " + (err == UB_SYNTAX ? "not a valid domain name" : ub_strerror(err));
        return a;
    }
    a.secure = r->secure != 0;
    if (r->bogus) {
        a.status = dns_status::bogus;
        a.secure = false;
        a.error = what + ": DNSSEC validation failed" + (r->why_bogus ? std::string(": ") + r->why_bogus : "");
        return a;
    }
    switch (r->rcode) {
    case 0:  // NOERROR
        if (r->havedata && r->data) {
            a.status = dns_status::ok;
            for (int i = 0; r->data[i]; ++i) a.rdata.emplace_back(r->data[i], static_cast<std::size_t>(r->len[i]));
        } else {
            a.status = dns_status::nodata;
        }
        break;
    case 3:  // NXDOMAIN
        a.status = dns_status::nxdomain;
        a.error = what + ": no such domain";
        break;
    case 2:
        a.error = what + ": SERVFAIL";
        break;
    case 5:
        a.error = what + ": REFUSED";
        break;
    default:
        a.error = what + ": DNS error (RCODE " + std::to_string(r->rcode) + ")";
        break;
    }
    return a;
}

// A type-erased, move-only completion handler for void(raw_answer). complete() posts the
// handler to its own executor (never inline: we are inside ub_process on the strand).
class completion {
public:
    virtual ~completion() = default;
    virtual void complete(raw_answer a) = 0;
};

template <class Handler>
class completion_for final : public completion {
public:
    explicit completion_for(Handler h)
        : handler_(std::move(h)),
          work_(asio::prefer(asio::get_associated_executor(handler_), asio::execution::outstanding_work.tracked)) {}

    void complete(raw_answer a) override {
        auto ex = std::move(work_);
        asio::post(ex, [h = std::move(handler_), a = std::move(a)]() mutable { std::move(h)(std::move(a)); });
    }

private:
    Handler handler_;
    std::decay_t<decltype(asio::prefer(std::declval<asio::associated_executor_t<Handler>>(),
                                       asio::execution::outstanding_work.tracked))>
        work_;
};

// The libunbound context and the queries in flight. Shared with the handlers it starts, so it
// outlives the resolver object until the last of them has run.
class engine : public std::enable_shared_from_this<engine> {
public:
    engine(asio::any_io_executor ex, ub_ctx* ctx, std::chrono::milliseconds timeout)
        : strand_(asio::make_strand(ex)), ctx_(ctx), pipe_(strand_, ub_fd(ctx)), timeout_(timeout) {}

    ~engine() {
        pipe_.release();  // the fd is libunbound's; it closes it in ub_ctx_delete
        queries_.clear();
        ub_ctx_delete(ctx_);
    }

    engine(const engine&) = delete;
    engine& operator=(const engine&) = delete;

    template <class Token>
    auto async_query(std::string name, int type, Token&& token) {
        return asio::async_initiate<Token, void(raw_answer)>(
            [self = shared_from_this()](auto handler, std::string name, int type) {
                std::unique_ptr<completion> c =
                    std::make_unique<completion_for<std::decay_t<decltype(handler)>>>(std::move(handler));
                asio::dispatch(self->strand_, [self, c = std::move(c), name = std::move(name), type]() mutable {
                    self->start(std::move(c), std::move(name), type);
                });
            },
            token, std::move(name), type);
    }

    // Stop: every waiting query completes with `temporary`. Runs on the strand.
    void shutdown() {
        asio::dispatch(strand_, [self = shared_from_this()] {
            self->closed_ = true;
            asio::error_code ig;
            self->pipe_.cancel(ig);
            self->fail_all("resolver shut down");
        });
    }

private:
    struct query {
        query(asio::strand<asio::any_io_executor>& s, std::uint64_t n, std::string w)
            : serial(n), what(std::move(w)), timer(s) {}
        std::uint64_t serial;
        std::string what;  // "partner.test/MX", for messages
        int async_id = 0;
        std::unique_ptr<completion> done;
        asio::steady_timer timer;
    };

    void start(std::unique_ptr<completion> c, std::string name, int type) {
        std::string what = name + "/" + type_name(type);
        if (closed_) {
            c->complete(raw_answer{dns_status::temporary, false, {}, what + ": resolver shut down"});
            return;
        }
        if (name.empty()) {
            c->complete(classify(what, UB_SYNTAX, nullptr));
            return;
        }
        const std::uint64_t serial = next_serial_++;
        auto q = std::make_unique<query>(strand_, serial, what);
        int id = 0;
        // The callback gets the serial, not a pointer: a query we gave up on (timeout) is
        // looked up and found gone, even if libunbound delivered it after all.
        const int err = ub_resolve_async(ctx_, name.c_str(), type, class_in,
                                         reinterpret_cast<void*>(static_cast<std::uintptr_t>(serial)),
                                         &engine::on_result, &id);
        if (err != 0) {
            c->complete(classify(what, err, nullptr));
            return;
        }
        q->async_id = id;
        q->done = std::move(c);
        q->timer.expires_after(timeout_);
        q->timer.async_wait([self = shared_from_this(), serial](const asio::error_code& ec) {
            if (!ec) self->on_timeout(serial);
        });
        queries_.emplace(serial, std::move(q));
        wait_for_results();
    }

    // libunbound's callback, from inside ub_process() (so on the strand, with `processing`
    // naming the engine whose context is being processed).
    static void on_result(void* arg, int err, ub_result* r) {
        std::unique_ptr<ub_result, void (*)(ub_result*)> owned(r, &ub_resolve_free);
        engine* self = processing;
        const auto serial = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(arg));
        if (!self) return;
        auto it = self->queries_.find(serial);
        if (it == self->queries_.end()) return;
        self->finish(serial, classify(it->second->what, err, r));
    }

    void finish(std::uint64_t serial, raw_answer a) {
        auto it = queries_.find(serial);
        if (it == queries_.end()) return;
        std::unique_ptr<query> q = std::move(it->second);
        queries_.erase(it);
        q->timer.cancel();
        q->done->complete(std::move(a));
        stop_waiting_if_idle();
    }

    // Nothing in flight: drop the pipe wait, so an idle resolver holds no work on the loop
    // (io_context::run() can return) and nothing is left to fire later.
    void stop_waiting_if_idle() {
        if (!queries_.empty() || !waiting_) return;
        asio::error_code ig;
        pipe_.cancel(ig);
    }

    void on_timeout(std::uint64_t serial) {
        auto it = queries_.find(serial);
        if (it == queries_.end()) return;
        ub_cancel(ctx_, it->second->async_id);  // its callback will not run
        const auto ms = timeout_.count();
        const std::string limit = ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
        finish(serial, raw_answer{dns_status::temporary, false, {}, it->second->what + ": timed out after " + limit});
    }

    void fail_all(const std::string& why) {
        auto pending = std::move(queries_);
        queries_.clear();
        for (auto& [serial, q] : pending) {
            ub_cancel(ctx_, q->async_id);
            q->timer.cancel();
            q->done->complete(raw_answer{dns_status::temporary, false, {}, q->what + ": " + why});
        }
        stop_waiting_if_idle();
    }

    // Keep one wait on the result pipe while queries are in flight.
    void wait_for_results() {
        if (waiting_ || closed_ || queries_.empty()) return;
        waiting_ = true;
        pipe_.async_wait(asio::posix::stream_descriptor::wait_read,
                         [self = shared_from_this()](const asio::error_code& ec) {
                             self->waiting_ = false;
                             if (self->closed_) return;
                             if (ec == asio::error::operation_aborted) {  // idle (see finish), or re-arm
                                 self->wait_for_results();
                                 return;
                             }
                             if (ec) {
                                 self->fail_all(std::string("waiting for libunbound: ") + ec.message());
                                 return;
                             }
                             self->process();
                         });
        // Asio watches the pipe edge-triggered: a result written before the wait was queued
        // might not wake it, so look once now that it is queued.
        if (ub_poll(ctx_)) asio::post(strand_, [self = shared_from_this()] { self->process(); });
    }

    void process() {
        if (closed_) return;
        processing = this;
        const int err = ub_process(ctx_);
        processing = nullptr;
        if (err != 0) fail_all(std::string("libunbound: ") + ub_strerror(err));
        wait_for_results();
    }

    asio::strand<asio::any_io_executor> strand_;
    ub_ctx* ctx_;
    asio::posix::stream_descriptor pipe_;
    std::chrono::milliseconds timeout_;
    std::map<std::uint64_t, std::unique_ptr<query>> queries_;
    std::uint64_t next_serial_ = 1;
    bool waiting_ = false;
    bool closed_ = false;
    static thread_local engine* processing;
};

thread_local engine* engine::processing = nullptr;

// The status, DNSSEC flag and error of `raw`, as an answer of type Answer (records to be added).
template <class Answer>
Answer answer_from(raw_answer& raw) {
    Answer out;
    out.status = raw.status;
    out.secure = raw.secure;
    out.error = std::move(raw.error);
    return out;
}

mx_answer to_mx_answer(raw_answer raw) {
    auto out = answer_from<mx_answer>(raw);
    if (raw.status != dns_status::ok) return out;
    std::size_t bad = 0;
    for (const auto& rd : raw.rdata) {
        if (auto rec = parse_mx_rdata(rd)) out.records.push_back(std::move(*rec));
        else ++bad;
    }
    if (out.records.empty()) {
        // Still `ok`, with no records: the answer is final (asking again gets the same
        // records), and delivery/route.cpp bounces a domain with no usable MX host (5.4.4),
        // as Postfix does (DNS_INVAL), instead of deferring until queue.max_age.
        out.error = "every MX record is malformed";
    } else if (bad) {
        out.error = std::to_string(bad) + " malformed MX record(s) ignored";
    }
    return out;
}

name_answer to_name_answer(raw_answer raw) {
    auto out = answer_from<name_answer>(raw);
    if (raw.status != dns_status::ok) return out;
    for (const auto& rd : raw.rdata) {
        std::size_t pos = 0;
        auto name = read_wire_name(rd, pos);
        if (name && pos == rd.size() && !name->empty()) out.names.push_back(std::move(*name));
    }
    if (out.names.empty()) {
        // A name with a space, 8-bit octets or a backslash, or the root, will not get better by
        // asking again: the address has no usable name, as with NODATA (Postfix: "unknown"),
        // never a temporary failure that would 451 the client on every command, forever.
        out.status = dns_status::nodata;
        out.error = "every PTR record is malformed";
    }
    return out;
}

void add_addresses(address_answer& out, const raw_answer& raw, std::size_t size, std::size_t& bad) {
    if (raw.status != dns_status::ok) return;
    for (const auto& rd : raw.rdata) {
        if (auto a = parse_address_rdata(rd, size)) out.addresses.push_back(std::move(*a));
        else ++bad;
    }
}

// A and AAAA answers -> one answer. Any bogus half poisons the whole (a forged answer beside a
// good one is still an attack); any address makes it usable, the other half's trouble noted.
address_answer combine(const raw_answer& a, const raw_answer& aaaa) {
    address_answer out;
    std::size_t bad = 0;
    add_addresses(out, a, 4, bad);
    add_addresses(out, aaaa, 16, bad);
    std::string notes;
    for (const auto* r : {&a, &aaaa})
        if (!r->error.empty()) notes += (notes.empty() ? "" : "; ") + r->error;
    if (bad) notes += (notes.empty() ? "" : "; ") + std::to_string(bad) + " malformed address record(s) ignored";
    out.error = std::move(notes);
    auto either = [&](dns_status s) { return a.status == s || aaaa.status == s; };
    if (either(dns_status::bogus)) {
        out.status = dns_status::bogus;
        out.addresses.clear();
        return out;
    }
    out.secure = a.secure && aaaa.secure;
    if (!out.addresses.empty()) out.status = dns_status::ok;
    else if (either(dns_status::temporary) || either(dns_status::ok)) out.status = dns_status::temporary;  // ok: all malformed
    else if (either(dns_status::nxdomain)) out.status = dns_status::nxdomain;
    else out.status = dns_status::nodata;
    if (out.status != dns_status::ok && out.status != dns_status::nodata && out.status != dns_status::nxdomain)
        out.secure = false;
    return out;
}

class unbound_resolver final : public resolver {
public:
    explicit unbound_resolver(std::shared_ptr<engine> e) : engine_(std::move(e)) {}
    ~unbound_resolver() override { engine_->shutdown(); }

    asio::awaitable<mx_answer> mx(std::string domain) override {
        auto e = engine_;  // alive until this coroutine is done, even if the resolver is not
        raw_answer raw = co_await e->async_query(std::move(domain), type_mx, asio::use_awaitable);
        co_return to_mx_answer(std::move(raw));
    }

    asio::awaitable<address_answer> addresses(std::string host) override {
        using namespace asio::experimental::awaitable_operators;
        auto e = engine_;
        auto [a, aaaa] = co_await (e->async_query(host, type_a, asio::use_awaitable) &&
                                   e->async_query(host, type_aaaa, asio::use_awaitable));
        co_return combine(a, aaaa);
    }

    asio::awaitable<name_answer> ptr(std::string ip) override {
        auto name = reverse_name(ip);
        if (!name) co_return name_answer{dns_status::nxdomain, {}, false, ip + ": not an IP address"};
        auto e = engine_;
        raw_answer raw = co_await e->async_query(std::move(*name), type_ptr, asio::use_awaitable);
        co_return to_name_answer(std::move(raw));
    }

private:
    std::shared_ptr<engine> engine_;
};

void check(int err, const std::string& what) {
    if (err != 0) throw std::runtime_error("dns: " + what + ": " + ub_strerror(err));
}

}  // namespace

std::unique_ptr<resolver> make_resolver(asio::any_io_executor ex, const std::vector<config::host_port>& servers,
                                        resolver_options options) {
    std::unique_ptr<ub_ctx, void (*)(ub_ctx*)> ctx(ub_ctx_create(), &ub_ctx_delete);
    if (!ctx) throw std::runtime_error("dns: cannot create a libunbound context");
    // A background thread, not a forked copy of the daemon (the default).
    check(ub_ctx_async(ctx.get(), 1), "ub_ctx_async");
    if (!servers.empty()) {
        for (const auto& s : servers) {
            const std::string addr = s.host + "@" + std::to_string(s.port);
            check(ub_ctx_set_fwd(ctx.get(), addr.c_str()), "forwarder " + s.to_string());
        }
        // SPEC §5: every name goes to dns.servers, special-use ones included.
        for (const char* zone : special_use_zones)
            check(ub_ctx_set_option(ctx.get(), "local-zone:", (std::string(zone) + " transparent").c_str()),
                  std::string("local-zone ") + zone);
        check(ub_ctx_set_option(ctx.get(), "unblock-lan-zones:", "yes"), "unblock-lan-zones");
        check(ub_ctx_set_option(ctx.get(), "insecure-lan-zones:", "yes"), "insecure-lan-zones");
    } else {
        // The system's resolvers; without a readable resolv.conf libunbound recurses from the
        // root itself, which is a working resolver too.
        (void)ub_ctx_resolvconf(ctx.get(), nullptr);
        (void)ub_ctx_hosts(ctx.get(), nullptr);
    }
    if (ub_fd(ctx.get()) < 0) throw std::runtime_error("dns: libunbound has no result pipe");
    auto e = std::make_shared<engine>(std::move(ex), ctx.get(), options.timeout);
    ctx.release();  // the engine owns it now
    return std::make_unique<unbound_resolver>(std::move(e));
}

}  // namespace postern::dns
