// tls/policy_report.cpp - the text of `postern tls-policy`: stable "key: value" lines an
// administrator can read and grep (in the manner of postconf and posttls-finger).
#include "tls/policy_report.hpp"

#include <fmt/format.h>

#include "config/values.hpp"

namespace postern::tls {
namespace {

using profile::tls_level;

constexpr std::string_view indent = "          ";  // continuation lines of "key:      value"

// Peer-controlled text (a greeting, certificate names) must not drive the terminal.
std::string printable(std::string_view s) {
    std::string out;
    for (const char c : s) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    return out;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : std::string(sep)) + printable(s);
    return out;
}

std::string_view level_meaning(tls_level l) {
    switch (l) {
        case tls_level::none: return "no TLS: STARTTLS is never issued";
        case tls_level::may:
            return "opportunistic TLS: STARTTLS when offered; the certificate is checked and logged, not enforced";
        case tls_level::encrypt: return "mandatory TLS, any certificate";
        case tls_level::ca: return "mandatory TLS; the chain must verify to a trusted CA, in date";
        case tls_level::ca_name:
            return "mandatory TLS; the chain must verify to a trusted CA and the certificate must name the peer";
        case tls_level::fingerprint: return "mandatory TLS; the certificate or its public key must match a pin";
        case tls_level::dane: return "mandatory TLS with DANE (not implemented yet: no mail is sent)";
    }
    return "?";
}

std::string_view step_words(profile::match_step s) {
    switch (s) {
        case profile::match_step::recipient_domain: return "recipient domain";
        case profile::match_step::host_ip: return "destination IP";
        case profile::match_step::host_name: return "destination host name";
        case profile::match_step::any: return "\"*\"";
        default: return "?";
    }
}

std::string profile_text(const profile::resolved_tls_policy& p) {
    if (p.profile.empty()) return "none";
    return fmt::format("{} (matched by {})", p.profile, step_words(p.step));
}

// "policy:" and its continuation: the level, what it means, and the requirements it carries.
void policy_lines(std::string& out, const profile::resolved_tls_policy& p) {
    out += fmt::format("policy:   {} - {}\n", profile::to_string(p.level), level_meaning(p.level));
    std::vector<std::string> req;
    if (profile::requires_tls(p.level)) {
        // Never below TLS 1.2 (the contexts' floor; config warns about "1.0" and "1.1").
        if (p.min_version == config::tls_version::v1_0 || p.min_version == config::tls_version::v1_1)
            req.push_back(fmt::format("min TLS 1.2 ({} configured; never below 1.2)", config::to_string(p.min_version)));
        else
            req.push_back(fmt::format("min TLS {}", config::to_string(p.min_version)));
        req.push_back(fmt::format("min cipher bits {}", p.min_cipher_bits));
    }
    if (profile::requires_chain(p.level) || p.level == tls_level::may)
        req.push_back("trust store " + (p.ca_file.empty() ? std::string("system") : p.ca_file));
    if (profile::uses_pins(p.level)) req.push_back("pins " + join(p.fingerprints, ", "));
    if (!req.empty()) out += fmt::format("{}{}\n", indent, join(req, "; "));
}

std::string relay(const host_report& h) {
    return h.ip.empty() ? fmt::format("{}:{}", h.host.name, h.host.port)
                        : fmt::format("{}[{}]:{}", h.host.name, h.ip, h.host.port);
}

std::string route_text(const delivery::route& w) {
    switch (w.how) {
        case delivery::route::kind::maildir: return fmt::format("maildir {} ({})", w.maildir, w.source);
        case delivery::route::kind::static_hosts: {
            std::vector<std::string> hosts;
            for (const auto& h : w.hosts) hosts.push_back(h.to_string());
            return fmt::format("static hosts {} ({})", join(hosts, ", "), w.source);
        }
        case delivery::route::kind::mx: return fmt::format("mx (delivery.port {})", w.port);
    }
    return "?";
}

std::string mx_text(delivery::mx_verdict v) {
    switch (v) {
        case delivery::mx_verdict::ok: return "MX records found";
        case delivery::mx_verdict::implicit: return "no MX records: the domain itself is the mail host (RFC 5321 5.1)";
        case delivery::mx_verdict::null_mx: return "null MX: the domain accepts no mail (RFC 7505)";
        case delivery::mx_verdict::no_such_domain: return "the domain does not exist (NXDOMAIN)";
        case delivery::mx_verdict::no_usable_host: return "no usable MX host (IP literals or malformed records only)";
        case delivery::mx_verdict::temporary: return "the lookup failed";
    }
    return "?";
}

std::string outcome_text(const delivery::outcome& o) {
    return o.dsn.empty() ? printable(o.reason) : fmt::format("{} {}", o.dsn, printable(o.reason));
}

void host_line(std::string& out, const policy_report& r, const host_report& h) {
    std::string line = "  " + relay(h);
    if (r.where.how == delivery::route::kind::mx) line += fmt::format(" pref={}", h.host.preference);
    if (h.ip.empty()) {
        out += fmt::format("{} no address: {}\n", line, outcome_text(h.no_address));
        return;
    }
    const auto& p = h.policy;
    line += fmt::format(" profile={} policy={}", p.profile.empty() ? "-" : p.profile, profile::to_string(p.level));
    if (p.level != tls_level::none && !p.names.empty()) line += " names=" + join(p.names, ",");
    out += line + "\n";
    // A host can select another profile than the recipient domain alone (by IP or name).
    if (p.step != r.policy.step || p.profile != r.policy.profile) out += fmt::format("      why: {}\n", p.why);
}

void chain_lines(std::string& out, const std::vector<certificate_summary>& chain) {
    constexpr std::string_view more = "             ";  // under the text after "  chain:     "
    bool first = true;
    for (const auto& c : chain) {
        out += fmt::format("{}{} subject={} issuer={} notBefore={} notAfter={}", first ? "  chain:     " : more,
                           c.depth, printable(c.subject), printable(c.issuer), c.not_before, c.not_after);
        if (!c.dns_names.empty()) out += " names=" + join(c.dns_names, ",");
        if (!c.ip_addresses.empty()) out += " ips=" + join(c.ip_addresses, ",");  // what "matched 192.0.2.1" matched
        out += "\n";
        if (c.depth == 0) out += fmt::format("{}  sha256:{} spki-sha256:{}\n", more, c.sha256, c.spki_sha256);
        first = false;
    }
}

std::string verdict_text(const policy_report& r, const host_report& h, const probe_facts& f) {
    switch (f.verdict) {
        case probe_verdict::deliver:
            if (!f.tls_version.empty()) return fmt::format("would deliver over TLS ({})", f.trust);
            if (h.policy.level == tls_level::none) return "would deliver in plaintext (TLS off by policy)";
            if (f.starttls_offered == false) return "would deliver in plaintext (STARTTLS not offered)";
            return "would deliver in plaintext";
        case probe_verdict::refuse: return "would NOT deliver: " + outcome_text(f.why);
        case probe_verdict::defer_tls:
            return fmt::format(
                "would defer: {}; the next attempt, after tls.handshake_retry_delay ({}), tries TLS again "
                "and delivers without TLS if the handshake fails again",
                outcome_text(f.why), config::detail::format_duration(r.handshake_retry_delay));
        case probe_verdict::unreachable: return "cannot connect: " + outcome_text(f.why);
    }
    return "?";
}

void probe_block(std::string& out, const policy_report& r, const host_report& h) {
    out += fmt::format("probe {}\n", relay(h));
    if (!h.probe) {  // no address: nothing to connect to
        out += fmt::format("  verdict:   cannot connect: {}\n", outcome_text(h.no_address));
        return;
    }
    const probe_facts& f = *h.probe;
    if (!f.greeting.empty()) out += fmt::format("  greeting:  220 {}\n", printable(f.greeting));
    if (f.starttls_offered)
        out += fmt::format("  starttls:  {}\n", *f.starttls_offered ? "offered" : "not offered");
    if (!f.tls_version.empty())
        out += fmt::format("  tls:       {} {} ({} bits)\n", f.tls_version, f.tls_cipher, f.tls_bits);
    else if (f.starttls_issued)
        out += "  tls:       handshake failed\n";
    else if (f.starttls_offered == true && h.policy.level == tls_level::none)
        out += "  tls:       not used (TLS off by policy)\n";
    else if (f.starttls_offered)
        out += "  tls:       none\n";
    chain_lines(out, f.chain);
    if (!f.tls_version.empty()) {
        if (f.enforced && !f.unmet.empty()) out += fmt::format("  verify:    failed: {}\n", printable(f.unmet));
        else
            out += fmt::format("  verify:    {} ({}){}\n", f.trust, printable(f.check),
                               f.enforced ? "" : ", not enforced (opportunistic TLS)");
    }
    out += fmt::format("  verdict:   {}\n", verdict_text(r, h, f));
}

bool host_would_deliver(const host_report& h) {
    return h.probe && h.probe->verdict == probe_verdict::deliver;
}

}  // namespace

std::string format_report(const policy_report& r) {
    std::string out;
    out += fmt::format("domain:   {}\n", r.domain);
    out += fmt::format("route:    {}\n", route_text(r.where));
    if (r.where.how == delivery::route::kind::maildir) {
        out += "verdict:  local delivery to maildir, no SMTP, TLS does not apply\n";
        return out;
    }
    out += fmt::format("profile:  {}\n", profile_text(r.policy));
    out += fmt::format("why:      {}\n", r.policy.why);
    policy_lines(out, r.policy);
    if (r.mx) out += fmt::format("mx:       {}{}\n", mx_text(*r.mx), r.mx_note.empty() ? "" : "; " + printable(r.mx_note));
    if (r.stop) {
        const bool bounce = r.stop->result == delivery::outcome::kind::permanent;
        out += fmt::format("verdict:  would {}: {}\n", bounce ? "bounce" : "defer", outcome_text(*r.stop));
        return out;
    }
    out += "hosts:\n";
    for (const auto& h : r.hosts) host_line(out, r, h);
    if (!r.probed) return out;
    std::size_t failing = 0;
    for (const auto& h : r.hosts) {
        out += "\n";
        probe_block(out, r, h);
        if (!host_would_deliver(h)) ++failing;
    }
    out += "\n";
    if (failing == 0) out += fmt::format("result:   every probed address would take the mail ({})\n", r.hosts.size());
    else out += fmt::format("result:   {} of {} probed addresses would NOT take the mail\n", failing, r.hosts.size());
    return out;
}

bool would_deliver(const policy_report& r) {
    if (r.where.how == delivery::route::kind::maildir) return true;
    if (r.stop || r.hosts.empty()) return false;
    if (!r.probed) return true;
    for (const auto& h : r.hosts)
        if (!host_would_deliver(h)) return false;
    return true;
}

}  // namespace postern::tls
