// runtime/tls_setup.hpp - the TLS contexts a configuration makes (serve, at start-up and on every
// SIGHUP) and, when its TLS files cannot be used, why, in check-config's "FILE:LINE: key: message"
// form: serve, a reload and check-config refuse the same files with the same words.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "util/result.hpp"

namespace asio::ssl {
class context;
}

namespace postern::runtime {

struct tls_contexts {
    std::shared_ptr<asio::ssl::context> server;  // inbound STARTTLS; null without tls.cert_file
    std::shared_ptr<asio::ssl::context> client;  // outbound STARTTLS, trust store tls.ca_file
    // Files that serve but deserve a word (a certificate expired or expiring within 30 days):
    // "FILE:LINE: warning: key: message", printed by check-config, logged by serve.
    std::vector<std::string> warnings;
};

// Loads what the server will need: the certificate chain and key (checked to match), the
// outbound trust store (tls.ca_file or the system store), and every profile's ca_file (loaded
// by sessions under that profile; loaded here with the same code as tls.ca_file, so that a file
// holding no certificate stops start-up or a reload instead of failing every session).
// Error: one "FILE:LINE: key: message" line per problem, in line order (FILE as the config
// names it, LINE that of the key naming the file; "FILE: tls: message" when no one key is).
result<tls_contexts> make_tls_contexts(const config::config& cfg);

// make_tls_contexts, its contexts thrown away: what `check-config` runs. Its warnings.
result<std::vector<std::string>> check_tls(const config::config& cfg);

}  // namespace postern::runtime
