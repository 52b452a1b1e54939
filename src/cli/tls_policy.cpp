// cli/tls_policy.cpp - `postern tls-policy`: route and policy from the config, hosts (and with
// --probe, what each would do) from the delivery driver on a one-thread event loop, then the
// report on stdout.
#include "cli/tls_policy.hpp"

// Asio first (see dns/resolver.hpp: every translation unit must choose its allocator alike).
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ssl/context.hpp>

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "delivery/route.hpp"
#include "dns/resolver.hpp"
#include "outbound/attempt.hpp"
#include "profile/policy.hpp"
#include "smtp/address.hpp"
#include "tls/client.hpp"
#include "tls/policy_report.hpp"

namespace postern::cli {
namespace {

// Why DOMAIN cannot be a recipient domain, or nullopt. Accepted: what the server accepts in
// RCPT TO - a domain name (U-labels too, with an A-label form) or an address literal
// ([192.0.2.1], [IPv6:2001:db8::1]) - and a trailing dot, which routing ignores.
std::optional<std::string> domain_problem(std::string_view domain) {
    const auto quoted = [](std::string_view s) { return "'" + std::string(s) + "'"; };
    if (const auto at = domain.rfind('@'); at != std::string_view::npos)
        return quoted(domain) + " is an address: give the domain" +
               (at + 1 < domain.size() ? " (" + std::string(domain.substr(at + 1)) + ")" : std::string());
    std::string_view d = domain;
    if (!d.empty() && d.back() == '.') d.remove_suffix(1);
    if (d.empty()) return "DOMAIN is empty: give a domain name, as in example.com";
    if (!smtp::valid_domain(d, /*utf8_allowed=*/true))
        return quoted(domain) + " is not a domain name (letters, digits and hyphens in dot-separated labels, or an "
                                "address literal such as [192.0.2.1])";
    if (auto a = smtp::domain_to_ascii(d); !a)
        return quoted(domain) + " is not a valid internationalized domain name (" + a.error_message() + ")";
    return std::nullopt;
}

}  // namespace

tls_policy_command::tls_policy_command(CLI::App& app) {
    cmd_ = app.add_subcommand("tls-policy",
                              "the profile and effective TLS policy for mail to DOMAIN, and its hosts; "
                              "--probe connects to each and reports what a delivery would do");
    cmd_->add_option("DOMAIN", domain_, "recipient domain")->required();
    cmd_->add_flag("--probe", probe_,
                   "connect to every host and address (up to where MAIL FROM would be sent, then QUIT); "
                   "exit 1 if any would not take the mail");
    cmd_->add_option("-c,--config", config_path_, "configuration file")->capture_default_str();
}

bool tls_policy_command::selected() const { return cmd_->parsed(); }

int tls_policy_command::run() const {
    // A usage error, before anything is read or looked up (an empty name or "user@x" used to
    // be looked up in the DNS and reported as a domain that does not exist).
    if (auto problem = domain_problem(domain_)) {
        std::fprintf(stderr, "postern tls-policy: %s\n", problem->c_str());
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);  // a peer closing while we write must not end the command
    // A client's view: the server's key and certificate are never read (the key may be
    // readable by root alone); the trust store only with --probe, below.
    auto cfg = config::load(config_path_, /*check_files=*/false);
    if (!cfg) {
        std::fprintf(stderr, "%s\n", cfg.error_message().c_str());
        return 2;
    }
    tls::policy_report report;
    report.where = delivery::decide_route(**cfg, domain_);
    report.domain = report.where.domain;
    // The domain-level answer: the recipient domain alone, no host facts yet.
    report.policy = profile::resolve_outbound(**cfg, {report.domain, std::nullopt, std::nullopt});

    if (report.where.how != delivery::route::kind::maildir) {
        // With --probe, the client context exactly as `postern serve` builds it (runtime/
        // daemon.cpp): the verdict under verify = "ca" / "ca+name" depends on this trust store.
        // Without, nothing connects: no trust store is read.
        auto client_tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
        if (auto r = probe_ ? tls::configure_client(client_tls->native_handle(), (*cfg)->tls.ca_file) : result<void>();
            !r) {
            std::fprintf(stderr, "%s: tls.ca_file: %s\n", config_path_.c_str(), r.error_message().c_str());
            return 2;
        }
        std::exception_ptr failure;
        try {
            asio::io_context io(1);
            auto resolver = dns::make_resolver(io.get_executor(), (*cfg)->dns.servers);
            outbound::deliverer d(*resolver, *cfg, client_tls);
            asio::co_spawn(io, d.probe(report, probe_), [&](std::exception_ptr e) { failure = e; });
            io.run();
        } catch (...) {
            failure = std::current_exception();
        }
        if (failure) {
            try {
                std::rethrow_exception(failure);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "postern tls-policy: %s\n", e.what());
            } catch (...) {
                std::fprintf(stderr, "postern tls-policy: unexpected error\n");
            }
            return 1;
        }
    }
    std::fputs(tls::format_report(report).c_str(), stdout);
    return probe_ && !tls::would_deliver(report) ? 1 : 0;
}

}  // namespace postern::cli
