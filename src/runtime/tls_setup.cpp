// runtime/tls_setup.cpp - build the TLS contexts of a configuration, or say at which lines its
// TLS files are unusable (see runtime/tls_setup.hpp).
#include "runtime/tls_setup.hpp"

#include <asio/ssl/context.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "tls/client.hpp"
#include "tls/context.hpp"
#include "tls/verify.hpp"

namespace postern::runtime {
namespace {

// Why one file (or setting) cannot be used.
struct tls_problem {
    std::string key;  // the key naming the file at fault; "" when no one file is (OpenSSL refused a setting)
    int line = 0;     // of that key (config::tls_config's lines; 0 = not written)
    std::string message;  // names the file, e.g. "private key K does not match certificate C"
};

std::string describe(const config::config& cfg, std::vector<tls_problem> problems, std::string_view kind = "") {
    std::stable_sort(problems.begin(), problems.end(), [](const auto& a, const auto& b) { return a.line < b.line; });
    std::string out;
    for (const auto& p : problems) {
        if (!out.empty()) out += '\n';
        const std::string where = p.line > 0 ? fmt::format("{}:{}", cfg.source_name, p.line) : cfg.source_name;
        out += fmt::format("{}: {}{}: {}", where, kind, p.key.empty() ? "tls" : p.key, p.message);
    }
    return out;
}

}  // namespace

result<tls_contexts> make_tls_contexts(const config::config& cfg) {
    const config::tls_config& t = cfg.tls;
    std::vector<tls_problem> problems;
    tls_contexts out;
    if (!t.cert_file.empty()) {
        out.server = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
        if (auto r = tls::configure_server(out.server->native_handle(), t.cert_file, t.key_file); !r) {
            // The file at fault, from tls::configure_server's messages (tls/context.cpp): the
            // certificate fails first; after it, the key (unreadable, or not the certificate's).
            const std::string& m = r.error_message();
            if (m.starts_with("cannot load certificate")) problems.push_back({"tls.cert_file", t.cert_file_line, m});
            else if (m.find("private key") != std::string::npos) problems.push_back({"tls.key_file", t.key_file_line, m});
            else problems.push_back({"", t.line, m});
        } else if (auto w = tls::certificate_date_warning(out.server->native_handle(), t.cert_file); !w.empty()) {
            out.warnings.push_back(describe(cfg, {{"tls.cert_file", t.cert_file_line, w}}, "warning: "));
        }
    }
    out.client = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    // tls.ca_file is also the trust store of every profile without a ca_file of its own
    // (profile/policy.cpp): loaded into the sessions' cache now too, as root (found by
    // review: a root-only tls.ca_file was opened again after the drop, and every mandatory
    // verify = "ca" check failed with "cannot load CA file ... Permission denied").
    auto client_ok = tls::configure_client(out.client->native_handle(), t.ca_file);
    if (client_ok && !t.ca_file.empty()) client_ok = tls::load_trust_store(t.ca_file);
    if (!client_ok) problems.push_back({"tls.ca_file", t.ca_file_line, client_ok.error_message()});
    // A profile's trust store: a file that holds no certificate is refused by the code that
    // loads tls.ca_file; then it is loaded, now (as root, before the privilege drop), into the
    // cache the sessions verify with (tls::load_trust_store): they never open the file again
    // while it is unchanged, so a CA file only root can read serves after the drop.
    for (const auto& p : cfg.profiles)
        for (const auto* dir : {&p.outbound, &p.inbound}) {
            if (dir->ca_file.empty()) continue;
            asio::ssl::context scratch(asio::ssl::context::tls_client);
            auto r = tls::configure_client(scratch.native_handle(), dir->ca_file);
            if (r) r = tls::load_trust_store(dir->ca_file);
            if (!r)
                problems.push_back({dir == &p.outbound ? "profile.outbound.ca_file" : "profile.inbound.ca_file",
                                    dir->ca_file_line, r.error_message()});
        }
    if (!problems.empty()) return error{describe(cfg, std::move(problems))};
    return out;
}

result<std::vector<std::string>> check_tls(const config::config& cfg) {
    auto contexts = make_tls_contexts(cfg);
    if (!contexts) return error{contexts.error_message()};
    return std::move(contexts->warnings);
}

}  // namespace postern::runtime
