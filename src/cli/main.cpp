// cli/main.cpp - the `postern` command line (SPEC §4): serve, init, check-config, queue,
// tls-policy.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "cli/check_config.hpp"
#include "cli/init.hpp"
#include "cli/queue.hpp"
#include "cli/tls_policy.hpp"
#include "runtime/daemon.hpp"

int main(int argc, char** argv) {
    CLI::App app{"Postern - SMTP mail gateway with TLS policy"};
    app.set_version_flag("--version", std::string("postern ") + PROJECT_VERSION_STRING);
    app.require_subcommand(1);

    std::string config_path = "postern.toml";
    auto* serve = app.add_subcommand("serve", "run the server in the foreground (logs to stderr)");
    serve->add_option("-c,--config", config_path, "configuration file")->capture_default_str();

    std::string init_dir;
    auto* init = app.add_subcommand("init", "write a working default configuration into DIR");
    init->add_option("DIR", init_dir, "directory to create")->required();

    auto* check = app.add_subcommand("check-config", "validate the configuration; errors as FILE:LINE: message");
    check->add_option("-c,--config", config_path, "configuration file")->capture_default_str();

    postern::cli::queue_command queue(app);
    postern::cli::tls_policy_command tls_policy(app);

    // A command line that cannot be understood (an unknown command or option, a missing
    // argument) exits 2, as check-config and tls-policy do for their usage errors, instead of
    // CLI11's own codes (106, 109, ...); --help and --version still exit 0.
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }

    // What the commands cannot handle themselves (out of memory, no thread or resolver could be
    // started) ends the process with a message and exit status 1, not std::terminate's abort.
    try {
        if (*serve) return postern::runtime::serve(config_path);
        if (*init) return postern::cli::init(init_dir);
        if (queue.selected()) return queue.run();
        if (tls_policy.selected()) return tls_policy.run();
        if (*check) return postern::cli::check_config(config_path);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "postern: %s\n", e.what());
        return 1;
    }
    return 1;
}
