// control/control.hpp - the queue control protocol between `postern queue ...` and the
// running server (SPEC §4): a UNIX stream socket `<spool.dir>/control.sock` (mode 0600).
// Pure parts (request parsing, views, table and JSON formatting) live here; the socket
// server is runtime/control_server.cpp, the client is cli/queue.cpp.
//
// Wire protocol: the client sends one request line and reads the response until EOF.
//   request:  "list json|table\n" | "show ID json|table\n" | "retry ID|--all\n" |
//             "delete ID\n" | "hold ID\n" | "release ID\n"
//   response: "OK " + N + "\n" + a payload of exactly N bytes, or "ERR " + message + "\n"
// The length (and the ERR line's newline) tell a whole answer from one cut short by a server
// that stopped or gave up writing: the client then fails instead of printing half a document.
// Words are separated by single spaces; a trailing "\r\n" is tolerated. ID is 1-64 hex digits
// (lower case is accepted and normalised to upper case); nothing else reaches a file name.
// Payloads: list/show = the JSON document + "\n" or the table; retry/delete/hold/release = one
// confirmation line ("ID: deleted", "3 messages scheduled for immediate delivery").
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace postern::queue {
class spool;
}

namespace postern::control {

// The socket's path: `<spool_dir>/control.sock` (the server binds it, the CLI connects to it).
std::string socket_path(const std::string& spool_dir);

struct recipient_view {
    std::string address;
    std::string status;  // queued | deferred | sent | bounced
    unsigned attempts = 0;
    std::int64_t next_attempt = 0;  // unix time, 0 = none/asap
    std::string last_reply;
};

struct message_view {
    std::string id;
    std::string sender;  // "" = null sender
    std::uint64_t size = 0;
    std::int64_t arrived = 0;  // unix time
    bool held = false;
    std::vector<recipient_view> recipients;
};

enum class verb { list, show, retry, del, hold, release };

struct request {
    verb what = verb::list;
    std::string id;     // for show/retry/delete/hold/release; empty with all = true
    bool all = false;   // retry --all
    bool json = false;  // list/show output format
};

result<request> parse_request(std::string_view line);
std::string format_request(const request& r);  // the line, with "\n"

// SPEC §4: array of {"id","sender","size","arrived","held","recipients":[{"address","status",
// "attempts","next_attempt","last_reply"}]}. `arrived` and `next_attempt` as ISO 8601 UTC
// strings ("" for none).
std::string to_json(const std::vector<message_view>& msgs);
std::string to_json(const message_view& m);
// A human table (like postqueue -p): a heading line, one block per message (ID with "!" when
// held, SIZE, ARRIVED, SENDER; then one indented line per recipient "status attempts=N
// next=TIME|- address (last reply)"), and a last line "-- N messages". Control characters and
// invalid UTF-8 are shown as \xNN (remote replies must not drive the terminal).
std::string to_table(const std::vector<message_view>& msgs);
// One message's block alone (`queue show ID`).
std::string to_table(const message_view& m);

// Helpers, exposed for tests: ISO 8601 UTC ("2026-11-28T14:21:10Z"); a quoted JSON string
// (RFC 8259 escapes, UTF-8 kept, invalid bytes as U+FFFD).
std::string format_time(std::int64_t unix_time);
std::string json_string(std::string_view s);

// The spool as the control views see it (control/snapshot.cpp; blocking file I/O, no Asio):
// every message in queue/ and hold/ (held = in hold/), sorted by id, with per-recipient state
// from state/ (absent = all queued). Reads only the queue file headers, never the content.
// A message that disappears while being read (delivered, deleted) is skipped; one held or
// released meanwhile is listed once, where it was read.
std::vector<message_view> snapshot(const queue::spool& sp);
// One message; an error "ID: no such message in the queue" when it is in neither area.
result<message_view> snapshot_one(const queue::spool& sp, const std::string& id);

// How snapshot() goes through the spool, with the file system behind two functions so that a
// test can move a message between any two steps: `list(held)` names the messages in hold/
// (true) or queue/ (false), `load(id, held)` reads one (nullopt: not there). Every name is
// listed before any file is read - hold/, queue/, then hold/ again, so that a message moved
// once between the areas while they are listed is named at least once - and a message no
// longer where it was named is looked for in the other area.
using area_lister = std::function<std::vector<std::string>(bool held)>;
using view_loader = std::function<std::optional<message_view>(const std::string& id, bool held)>;
std::vector<message_view> gather(const area_lister& list, const view_loader& load);

// The operations the server offers; implemented by the queue manager (runtime). The control
// server calls retry/remove/hold/release on the event-loop thread, and list/show (which only
// read the spool) on its reader thread. Error messages are shown to the administrator as they
// are.
class queue_control {
public:
    virtual ~queue_control() = default;
    virtual std::vector<message_view> list() = 0;
    virtual result<message_view> show(const std::string& id) = 0;
    virtual result<unsigned> retry(const std::string& id, bool all) = 0;  // how many messages
    virtual result<void> remove(const std::string& id) = 0;
    virtual result<void> hold(const std::string& id) = 0;
    virtual result<void> release(const std::string& id) = 0;
};

// Execute one request line against `q`; returns the full response text ("OK N\n..." / "ERR ...\n").
std::string handle(queue_control& q, std::string_view line);

// --- response framing --------------------------------------------------------------------

std::string ok_response(std::string_view payload);   // "OK N\n" + payload
std::string err_response(std::string_view message);  // "ERR message\n", made one line

struct response {
    bool ok = false;
    std::string text;  // ok: the payload; otherwise the server's message (without its "\n")
};

// A response as the client read it, up to EOF. An error when it is not whole: nothing at all,
// fewer payload bytes than announced, an ERR line without its newline; or not a response.
result<response> parse_response(std::string_view bytes);

// spool.dir's problem as the control socket's home, if any: `<spool_dir>/control.sock` must fit
// in a UNIX socket address (sockaddr_un.sun_path: 107 bytes and the NUL on Linux).
std::optional<std::string> socket_path_problem(const std::string& spool_dir);

}  // namespace postern::control
