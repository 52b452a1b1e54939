// log/log.hpp - structured event log on stderr (SPEC §6): one line per event, text or JSON.
// One function per event kind, so every call site logs the same fields the same way.
// Thread-safe: each line is written with a single write(2).
#pragma once
#include <initializer_list>
#include <string>
#include <string_view>

namespace postern::log {

enum class level { info, warning, error };
enum class format { text, json };

void set_format(format f);

struct field {
    std::string_view key;
    std::string value;
    bool number = false;  // a count or a time in seconds, written by us: a JSON number, not a string
};

// The generic emitter; prefer the named functions below.
void emit(level lv, std::string_view event, std::initializer_list<field> fields);
// Formats one line without writing it (for tests).
std::string format_line(format f, level lv, std::string_view event, std::initializer_list<field> fields);

// --- events ---------------------------------------------------------------------------------
void started(std::string_view version, std::string_view config_path, std::string_view listen);
void stopping(std::string_view why);
void config_reloaded(std::string_view path);
void config_reload_failed(std::string_view path, std::string_view error);
void connection_refused(std::string_view client, std::string_view reason);

// The fields every line of one inbound session starts with (SPEC §6, issue 4: the profile and
// the TLS verdict on every connection line). `profile` is the connection profile that applies
// ("-" for none; it can change at MAIL FROM when a sender-domain profile applies); `tls` is
// the verdict so far: none (no TLS) | untrusted (TLS; no client certificate, or its chain
// fails) | trusted (chain ok) | verified (chain ok and the profile's names or pins match) |
// refused (the session does not meet the profile's requirements).
struct session_tags {
    std::string_view session;
    std::string_view client;
    std::string_view profile;
    std::string_view tls;
};
// `client_name`: forward-confirmed reverse DNS, or "unknown"; `tls_policy`: the level the
// profile requires (profile/policy.hpp).
void connection_opened(const session_tags& t, std::string_view local, std::string_view client_name,
                       std::string_view tls_policy);
void connection_closed(const session_tags& t, std::string_view reason, unsigned messages, unsigned errors);
void tls_established(const session_tags& t, std::string_view version, std::string_view cipher, int bits);
void tls_failed(const session_tags& t, std::string_view reason);
// The session against its profile's requirements, once TLS is up (mandatory profiles only).
void tls_policy_checked(const session_tags& t, std::string_view level, bool ok, std::string_view reason);
// `proto`, `cipher`: the TLS session the message came over ("" when plaintext).
void message_queued(const session_tags& t, std::string_view id, std::string_view sender, std::size_t recipients,
                    std::size_t size, std::string_view proto, std::string_view cipher, bool held);
void message_rejected(const session_tags& t, std::string_view reply);
// One line per delivery attempt per recipient (SPEC §6). relay is "maildir" for local delivery.
struct delivery_attempt {
    std::string_view id;
    std::string_view recipient;
    std::string_view relay;
    std::string_view profile;
    std::string_view tls;  // none | fallback | untrusted | trusted | verified
    std::string_view tls_version;
    std::string_view tls_cipher;
    std::string_view result;  // sent | deferred | bounced
    std::string_view dsn;     // 2.0.0
    std::string_view reason;
    double delay_s = 0;
    unsigned attempt = 1;
};
void delivery(const delivery_attempt& a);
void spool_error(std::string_view id, std::string_view what);
void warning(std::string_view event, std::string_view message);
void error(std::string_view event, std::string_view message);

}  // namespace postern::log
