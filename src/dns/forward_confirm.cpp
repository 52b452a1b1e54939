// dns/forward_confirm.cpp - forward-confirmed reverse DNS for inbound clients (SPEC §1.4: a
// profile matches a client "host name (forward-confirmed reverse DNS)"): PTR names of the
// address, each confirmed by its own A/AAAA lookup. A definite "no" (no PTR, no name whose
// addresses include the client's) is no name; a failed lookup is reported as temporary.
#include <asio/use_awaitable.hpp>

#include <algorithm>

#include "dns/rdata.hpp"
#include "dns/resolver.hpp"

namespace postern::dns {

namespace {
bool definite(dns_status s) { return s == dns_status::nxdomain || s == dns_status::nodata; }
}  // namespace

asio::awaitable<client_name> forward_confirmed_name(resolver& r, std::string ip, std::size_t max_names) {
    client_name out;
    auto ptr = co_await r.ptr(ip);
    if (ptr.status != dns_status::ok) {
        out.temporary = !definite(ptr.status);
        out.error = ptr.error.empty() ? std::string("no PTR record for ") + ip : ptr.error;
        co_return out;
    }
    auto& names = ptr.names;
    if (names.size() > max_names) names.resize(max_names);
    // One name at a time: the usual case is one PTR record.
    for (const auto& name : names) {
        auto a = co_await r.addresses(name);
        if (a.status == dns_status::ok &&
            std::any_of(a.addresses.begin(), a.addresses.end(),
                        [&](const std::string& addr) { return same_address(addr, ip); })) {
            out.name = name;
            out.temporary = false;
            out.error.clear();
            co_return out;
        }
        if (a.status != dns_status::ok && !definite(a.status)) {
            out.temporary = true;  // unless a later name confirms
            out.error = a.error;
        }
    }
    if (!out.temporary) out.error = "no PTR name of " + ip + " resolves back to it";
    co_return out;
}

}  // namespace postern::dns
