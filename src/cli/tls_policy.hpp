// cli/tls_policy.hpp - `postern tls-policy DOMAIN [--probe] [-c FILE]` (SPEC §4): which profile
// and TLS policy apply to mail for DOMAIN and why, the route and its hosts; with --probe,
// connects to every host and address and reports what a delivery would do there, like
// Postfix's posttls-finger. The decisions are the delivery code's own (delivery/route,
// profile/policy, outbound::deliverer::probe); this file wires them up and prints
// tls::format_report. Output format: README.md, "postern tls-policy".
// Exit status: 0 the command ran (with --probe: every probed address would take the mail);
// 1 with --probe, some address would not (refused, deferred, unreachable, or DNS stops delivery),
// or the lookups could not run;
// 2 a DOMAIN that is no domain (empty, characters a domain name cannot hold, an address with
// '@'; "postern tls-policy: ..." on stderr), a bad configuration (FILE:LINE: message) or, with
// --probe, an unusable trust store (tls.ca_file). The server's key and certificate are never read.
#pragma once
#include <string>

namespace CLI {
class App;
}

namespace postern::cli {

// Registers `tls-policy` on `app`; after parsing, run() when selected().
class tls_policy_command {
public:
    explicit tls_policy_command(CLI::App& app);
    tls_policy_command(const tls_policy_command&) = delete;
    tls_policy_command& operator=(const tls_policy_command&) = delete;

    bool selected() const;
    int run() const;

private:
    CLI::App* cmd_ = nullptr;
    std::string config_path_ = "postern.toml";
    std::string domain_;
    bool probe_ = false;
};

}  // namespace postern::cli
