// outbound/connection_cache.hpp - idle outbound SMTP sessions kept open for reuse (SPEC §3.4
// "connections are reused"; Postfix's scache). A session that finished a transaction in a
// reusable state is parked under (host, ip, port, what its policy required of the session:
// profile::session_requirements) for a few seconds; the next attempt to the same host under
// the same requirements takes it and skips connect, greeting, EHLO and the TLS handshake. Parked
// sessions that are not taken in time get QUIT and are closed; closing never waits for the peer
// (a QUIT that does not fit in the socket's send buffer is dropped). A session is only handed out
// under the configuration it was checked against (a reload that changes a profile's pins,
// versions or trust store must not let a session checked under the old rules carry mail),
// and not after max_age since it was set up (Postfix's smtp_connection_reuse_time_limit).
// Event-loop thread only.
#pragma once
#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "runtime/connection.hpp"
#include "smtp/client_session.hpp"
#include "tls/client.hpp"

namespace postern::outbound {

struct parked_session {
    std::shared_ptr<runtime::timed_connection> conn;
    std::unique_ptr<smtp::client_session> session;  // state ready
    std::string tls, tls_version, tls_cipher;       // as established
    // The certificate's verdict when TLS is up (nullopt without TLS): the chain's part of it
    // holds for the next transaction, the names' part is judged again for its policy.
    std::optional<tls::peer_trust> trust;
    // The configuration its TLS policy was checked under (identity only), and when it was
    // set up: both carry over when a session is reused and parked again.
    std::shared_ptr<const void> checked_under;
    std::chrono::steady_clock::time_point established{};
};

class connection_cache {
public:
    explicit connection_cache(asio::any_io_executor ex, std::chrono::seconds idle = std::chrono::seconds(5),
                              std::size_t max_total = 200, std::chrono::seconds max_age = std::chrono::seconds(300))
        : ex_(std::move(ex)), idle_(idle), max_total_(max_total), max_age_(max_age) {}
    ~connection_cache();

    static std::string key(const std::string& host, const std::string& ip, std::uint16_t port);
    // A session parked under `key` and checked under `config` (the same object), younger than
    // max_age. Sessions under `key` that fail either test are closed on the way.
    std::optional<parked_session> take(const std::string& key, const std::shared_ptr<const void>& config);
    void put(const std::string& key, parked_session s);  // closes it at once when the cache is full
    void close_all();
    std::size_t size() const { return entries_.size(); }

private:
    struct entry {
        std::string key;
        parked_session s;
        std::shared_ptr<asio::steady_timer> timer;
    };
    static void close(parked_session& s);

    asio::any_io_executor ex_;
    std::chrono::seconds idle_;
    std::size_t max_total_;
    std::chrono::seconds max_age_;
    std::list<entry> entries_;
};

}  // namespace postern::outbound
