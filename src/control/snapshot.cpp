// control/snapshot.cpp - the spool as `postern queue list/show` sees it: queue/ and hold/
// headers plus state/ records, turned into message_view. Blocking file I/O, no Asio: the
// server runs it where it may block. Reads only each file's header, never the content, so
// listing a queue of large messages stays cheap.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "control/control.hpp"
#include "queue/spool.hpp"

namespace postern::control {
namespace {

// The header can hold up to server.max_recipients recipients; far more than that is damage.
constexpr std::size_t max_header = 8u << 20;

// The bytes of `path` up to and including the empty line ending the header ("\n\n").
// nullopt (errno set) when the file cannot be opened, or is not a regular file
// (queue::open_regular_file); otherwise what could be read.
std::optional<std::string> read_header(const std::string& path) {
    int fd = queue::open_regular_file(path);
    if (fd < 0) return std::nullopt;
    std::string out;
    char buf[8192];
    while (out.size() < max_header) {
        ssize_t r = ::read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        const std::size_t from = out.size() > 0 ? out.size() - 1 : 0;
        out.append(buf, static_cast<std::size_t>(r));
        if (auto end = out.find("\n\n", from); end != std::string::npos) {
            out.resize(end + 2);
            break;
        }
    }
    ::close(fd);
    return out;
}

struct load_result {
    std::optional<message_view> view;  // nullopt: not there
    std::string problem;               // set when the file exists but cannot be used
};

load_result load_view(const queue::spool& sp, const std::string& id, queue::area where) {
    load_result lr;
    const std::string path = sp.path(id, where);
    auto text = read_header(path);
    if (!text) {
        if (errno != ENOENT) lr.problem = fmt::format("cannot read {}: {}", path, queue::read_error(errno));
        return lr;
    }
    std::size_t header_len = 0;
    auto env = queue::parse_header(*text, header_len);
    if (!env) {
        lr.problem = fmt::format("{}: {}", path, env.error_message());
        return lr;
    }
    // Another message's header under this name: refused, as the queue runner does (listing it
    // as this message would show that one's sender and recipients under this id).
    if (lr.problem = queue::misnamed_file(path, env->id, id); !lr.problem.empty()) return lr;
    message_view m;
    m.id = id;
    m.sender = env->sender;
    m.size = env->size;
    m.arrived = env->arrived;
    m.held = where == queue::area::hold;
    // A damaged state record must not hide the message: show every recipient as queued.
    auto st = sp.read_state(id, env->recipients.size());
    std::vector<queue::rcpt_state> states =
        st ? std::move(*st) : std::vector<queue::rcpt_state>(env->recipients.size());
    m.recipients.reserve(env->recipients.size());
    for (std::size_t i = 0; i < env->recipients.size(); ++i) {
        recipient_view r;
        r.address = env->recipients[i];
        r.status = queue::to_string(states[i].status);
        r.attempts = states[i].attempts;
        r.next_attempt = states[i].next_attempt;
        r.last_reply = states[i].last_reply;
        m.recipients.push_back(std::move(r));
    }
    lr.view = std::move(m);
    return lr;
}

}  // namespace

std::vector<message_view> gather(const area_lister& list, const view_loader& load) {
    // Names first: reading the files takes long (a large queue), and a message released or held
    // meanwhile would be in neither area by the time the second one is listed. The area a name
    // was seen in last is where it is looked for first.
    std::map<std::string, bool> named;  // id -> held
    for (const bool held : {true, false, true})
        for (std::string& id : list(held)) named[std::move(id)] = held;
    std::vector<message_view> out;
    out.reserve(named.size());
    for (const auto& [id, held] : named) {
        // Not there: moved since it was named, or gone (delivered, deleted); a damaged file is
        // reported by the queue runner, and `queue show` names the problem.
        auto v = load(id, held);
        if (!v) v = load(id, !held);
        if (v) out.push_back(std::move(*v));
    }
    return out;  // sorted by id, as the map is
}

std::vector<message_view> snapshot(const queue::spool& sp) {
    const auto area_of = [](bool held) { return held ? queue::area::hold : queue::area::active; };
    return gather([&](bool held) { return sp.list(area_of(held)); },
                  [&](const std::string& id, bool held) { return load_view(sp, id, area_of(held)).view; });
}

result<message_view> snapshot_one(const queue::spool& sp, const std::string& id) {
    const bool valid = !id.empty() && id.size() <= 64 &&
                       std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); });
    if (!valid) return error{"invalid queue id"};  // never build a path from anything else
    // queue/, hold/, queue/ again: a message held or released between two looks is found.
    std::string problem;
    for (auto where : {queue::area::active, queue::area::hold, queue::area::active}) {
        auto lr = load_view(sp, id, where);
        if (lr.view) return std::move(*lr.view);
        if (problem.empty()) problem = std::move(lr.problem);
    }
    if (!problem.empty()) return error{fmt::format("{}: {}", id, problem)};
    return error{fmt::format("{}: no such message in the queue", id)};
}

}  // namespace postern::control
