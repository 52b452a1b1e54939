// cli/queue.hpp - `postern queue list|show|retry|delete|hold|release` (SPEC §4): the client end
// of the control socket. Reads the config for spool.dir (the TLS files it names need not be
// readable: the key may be root's alone), sends one request line to
// `<spool.dir>/control.sock` (plain POSIX sockets, no Asio), prints the answer.
// Exit status: 0 success; 1 the server refused (its message on stderr), cannot be reached, or
// its answer came cut short (nothing printed), or stdout cannot be written; 2 a bad
// configuration (FILE:LINE: message).
#pragma once
#include <string>

#include "control/control.hpp"

namespace CLI {
class App;
}

namespace postern::cli {

// Registers `queue` and its subcommands on `app`; after parsing, run() when selected().
class queue_command {
public:
    explicit queue_command(CLI::App& app);
    queue_command(const queue_command&) = delete;
    queue_command& operator=(const queue_command&) = delete;

    bool selected() const;
    int run() const;

private:
    CLI::App* queue_ = nullptr;
    CLI::App* list_ = nullptr;
    CLI::App* show_ = nullptr;
    CLI::App* retry_ = nullptr;
    CLI::App* delete_ = nullptr;
    CLI::App* hold_ = nullptr;
    CLI::App* release_ = nullptr;
    std::string config_path_ = "postern.toml";
    std::string id_;
    bool all_ = false;
    bool json_ = false;
};

// One request/response exchange on the control socket at `socket_path`; prints the payload
// on stdout (only a whole one), or "postern queue: ..." on stderr. Returns the exit status
// (0 or 1).
int run_queue_request(const std::string& socket_path, const control::request& req);

}  // namespace postern::cli
