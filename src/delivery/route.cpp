// delivery/route.cpp - routing decision and MX ordering (SPEC §3.3; RFC 5321 5.1; RFC 7505;
// RFC 6531 3.2: U-label domains routed by their A-label).
#include "delivery/route.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <map>

#include "smtp/address.hpp"

namespace postern::delivery {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool is_ipv4(const std::string& s) {
    in_addr a{};
    return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& s) {
    in6_addr a{};
    return ::inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

// RFC 5321 4.1.3 Snum is 1*3DIGIT: "127.000.000.002" is 127.0.0.2 (decimal, never octal), a
// form inet_pton(3) refuses. The dotted quad without leading zeros; `s` unchanged when it is
// not four such numbers.
std::string without_leading_zeros(const std::string& s) {
    std::string out;
    std::size_t i = 0;
    for (int part = 0; part < 4; ++part) {
        std::size_t n = 0;
        unsigned v = 0;
        for (; i < s.size() && s[i] >= '0' && s[i] <= '9' && n < 4; ++i, ++n) v = v * 10 + static_cast<unsigned>(s[i] - '0');
        if (n == 0 || n > 3 || v > 255) return s;
        out += std::to_string(v);
        if (part < 3) {
            if (i >= s.size() || s[i] != '.') return s;
            out += '.';
            ++i;
        }
    }
    return i == s.size() ? out : s;
}

// "[192.0.2.1]" -> "192.0.2.1"; "[IPv6:2001:db8::1]" -> "2001:db8::1" (RFC 5321 4.1.3).
// Empty when `domain` is not a usable address literal.
std::string address_literal(std::string_view domain) {
    if (domain.size() < 3 || domain.front() != '[' || domain.back() != ']') return {};
    std::string inner(domain.substr(1, domain.size() - 2));
    if (lower(inner.substr(0, 5)) == "ipv6:") {
        inner = lower(inner.substr(5));
        // IPv6v4-full / -comp: the IPv4 part after the last ':' may carry leading zeros too
        if (const auto colon = inner.rfind(':'); colon != std::string::npos && inner.find('.', colon) != std::string::npos)
            inner = inner.substr(0, colon + 1) + without_leading_zeros(inner.substr(colon + 1));
        return is_ipv6(inner) ? inner : std::string{};
    }
    inner = without_leading_zeros(inner);
    return is_ipv4(inner) ? inner : std::string{};
}

// Fisher-Yates by hand: std::shuffle's use of the engine is unspecified, this is not (a seeded
// engine gives the same order everywhere).
template <class It>
void shuffle(It first, It last, std::mt19937& rng) {
    for (auto n = static_cast<std::size_t>(last - first); n > 1; --n) {
        const std::size_t j = static_cast<std::size_t>(rng() % n);
        std::swap(first[static_cast<std::ptrdiff_t>(n - 1)], first[static_cast<std::ptrdiff_t>(j)]);
    }
}

}  // namespace

std::string to_string(route::kind k) {
    switch (k) {
    case route::kind::maildir: return "maildir";
    case route::kind::static_hosts: return "static";
    case route::kind::mx: return "mx";
    }
    return "?";
}

std::string to_string(mx_verdict v) {
    switch (v) {
    case mx_verdict::ok: return "ok";
    case mx_verdict::implicit: return "implicit";
    case mx_verdict::null_mx: return "null-mx";
    case mx_verdict::no_such_domain: return "no-such-domain";
    case mx_verdict::no_usable_host: return "no-usable-host";
    case mx_verdict::temporary: return "temporary";
    }
    return "?";
}

std::string routing_domain(std::string_view recipient_domain) {
    if (!recipient_domain.empty() && recipient_domain.back() == '.') recipient_domain.remove_suffix(1);
    // RFC 6531 3.2: a U-label domain is routed, looked up and matched by its A-label, exactly
    // as the inbound side matched it (smtp::domain_to_ascii serves both). A name without
    // one (a spool written before the session refused such names, a mistyped `postern
    // tls-policy` argument) stays as written: it matches
    // nothing configured and its MX lookup fails.
    auto ascii = smtp::domain_to_ascii(recipient_domain);
    return ascii ? std::move(*ascii) : lower(recipient_domain);
}

route decide_route(const config::config& cfg, std::string_view recipient_domain) {
    route r;
    r.domain = routing_domain(recipient_domain);
    r.port = cfg.delivery.port;

    // 1. Hosted domains come first: a "*" smarthost must never take the organisation's own mail.
    if (const auto* d = cfg.find_domain(r.domain)) {
        if (!d->maildir.empty()) {
            r.how = route::kind::maildir;
            r.maildir = d->maildir;
            r.source = "domain " + d->name + " maildir";
        } else {
            r.how = route::kind::static_hosts;
            r.hosts = d->relay_to;
            r.source = "domain " + d->name + " relay_to";
        }
        return r;
    }
    // 2. and 3. Static routes: the exact domain, else the "*" smarthost.
    const config::route_config* wildcard = nullptr;
    for (const auto& rc : cfg.routes) {
        if (rc.domain == "*") {
            if (!wildcard) wildcard = &rc;
            continue;
        }
        if (lower(rc.domain) == r.domain) {
            r.how = route::kind::static_hosts;
            r.hosts = rc.hosts;
            r.source = "route " + rc.domain;
            return r;
        }
    }
    if (wildcard) {
        r.how = route::kind::static_hosts;
        r.hosts = wildcard->hosts;
        r.source = "route *";
        return r;
    }
    // 4. An address literal names its host; there is nothing to look up (RFC 5321 5.1).
    if (std::string ip = address_literal(r.domain); !ip.empty()) {
        r.how = route::kind::static_hosts;
        r.hosts.push_back(config::host_port{ip, cfg.delivery.port});
        r.literal = true;
        r.source = "address literal";
        return r;
    }
    // 5. MX.
    r.how = route::kind::mx;
    r.source = "mx";
    return r;
}

mx_plan plan_mx(const dns::mx_answer& ans, std::string_view domain_in, std::uint16_t port, std::mt19937& rng) {
    mx_plan plan;
    std::string domain = lower(domain_in);
    if (!domain.empty() && domain.back() == '.') domain.pop_back();
    const std::string detail = ans.error.empty() ? std::string{} : " (" + ans.error + ")";

    switch (ans.status) {
    case dns::dns_status::nxdomain:
        plan.verdict = mx_verdict::no_such_domain;
        plan.reason = "domain " + domain + " does not exist" + detail;
        return plan;
    case dns::dns_status::nodata:
        // RFC 5321 5.1: no MX records -> the domain is its own mail host, preference 0.
        plan.verdict = mx_verdict::implicit;
        plan.hosts.push_back(target_host{domain, 0, port});
        plan.reason = "no MX records for " + domain + ": trying the domain itself";
        return plan;
    case dns::dns_status::temporary:
        plan.verdict = mx_verdict::temporary;
        plan.reason = "MX lookup for " + domain + " failed temporarily" + detail;
        return plan;
    case dns::dns_status::bogus:
        plan.verdict = mx_verdict::temporary;
        plan.reason = "MX lookup for " + domain + ": DNSSEC validation failed" + detail;
        return plan;
    case dns::dns_status::ok:
        break;
    }

    // RFC 7505 3: a null MX is a record whose exchange is the root; the domain accepts no mail.
    const bool null_mx = std::any_of(ans.records.begin(), ans.records.end(),
                                     [](const dns::mx_record& r) { return r.host.empty(); });
    if (null_mx) {
        plan.verdict = mx_verdict::null_mx;
        plan.reason = "domain " + domain + " does not accept mail (null MX)";
        if (ans.records.size() > 1) plan.reason += "; it also lists other MX hosts, which RFC 7505 forbids";
        return plan;
    }

    // Best preference per host; IP literals dropped (an MX names a host, RFC 5321 5.1).
    std::map<std::string, std::uint16_t> best;
    std::vector<std::string> literals;
    for (const auto& rec : ans.records) {
        std::string host = lower(rec.host);
        if (!host.empty() && host.back() == '.') host.pop_back();
        if (is_ipv4(host) || is_ipv6(host)) {
            literals.push_back(host);
            continue;
        }
        auto [it, inserted] = best.emplace(host, rec.preference);
        if (!inserted) it->second = std::min(it->second, rec.preference);
    }
    std::string notes = ans.error;
    if (!literals.empty()) {
        std::string list;
        for (const auto& l : literals) list += (list.empty() ? "" : ", ") + l;
        notes += std::string(notes.empty() ? "" : "; ") + "MX hosts that are IP addresses ignored: " + list;
    }
    if (best.empty()) {
        plan.verdict = mx_verdict::no_usable_host;
        plan.reason = "no usable MX host for " + domain + (notes.empty() ? "" : ": " + notes);
        return plan;
    }

    // Ascending preference; each run of equal preferences shuffled (RFC 5321 5.1). The map gives
    // a fixed starting order, so the result depends on the seed alone, not on the DNS order.
    for (const auto& [host, pref] : best) plan.hosts.push_back(target_host{host, pref, port});
    std::stable_sort(plan.hosts.begin(), plan.hosts.end(),
                     [](const target_host& a, const target_host& b) { return a.preference < b.preference; });
    for (auto first = plan.hosts.begin(); first != plan.hosts.end();) {
        auto last = std::find_if(first, plan.hosts.end(),
                                 [&](const target_host& h) { return h.preference != first->preference; });
        shuffle(first, last, rng);
        first = last;
    }
    plan.verdict = mx_verdict::ok;
    plan.reason = notes;
    return plan;
}

void order_addresses(std::vector<std::string>& ips, std::mt19937& rng) {
    // IPv4 before IPv6, as the resolver gives them: many hosts (this project's test machines
    // among them) have no IPv6 route, and an unreachable family tried first costs a connect
    // timeout per address. Random within each family only.
    const auto v6 = std::stable_partition(ips.begin(), ips.end(), [](const std::string& ip) { return is_ipv4(ip); });
    shuffle(ips.begin(), v6, rng);
    shuffle(v6, ips.end(), rng);
}

}  // namespace postern::delivery
