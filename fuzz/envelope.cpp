// fuzz/envelope.cpp - the spool's on-disk records: the queue file header (src/queue/envelope.hpp)
// and the per-recipient state file (src/queue/spool.hpp parse_state / parse_tls_failed).
// Input: one octet choosing the mode and a recipient count, then a queue file (mode 0), a state
// file (mode 1), or envelope fields to format (mode 2: length-prefixed strings).
// Invariants, beyond no crash / UB:
// - parse_header: an accepted header has an id, arrival and size, at least one non-empty
//   recipient, no CR or LF in any value, and ends with an empty line at header_len;
//   round trip: parse_header(format_header(e)) == e, with header_len the formatted length;
// - format_header of an envelope whose values have no CR/LF (what the server guarantees)
//   parses back to the same envelope;
// - parse_state: one entry per recipient; round trip through format_state gives the same
//   states (format_state writes CR and LF in a reply as spaces: the documented sanitisation);
//   the tlsfail hosts written are read back by parse_tls_failed and are ignored by parse_state;
//   tls_failure_times gives each host once with a time >= 0, and round-trips through
//   tls_failure_entries.
// - unseal_state (src/queue/state_file.hpp) of the input never crashes; a sealed state file
//   unseals to format_state's text for its own id and fails for any other id.
#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz.hpp"
#include "queue/envelope.hpp"
#include "queue/spool.hpp"
#include "queue/state_file.hpp"

namespace postern::fuzz {
namespace {

using namespace postern::queue;

bool clean(std::string_view v) { return v.find_first_of("\r\n") == std::string_view::npos; }

bool same(const envelope& a, const envelope& b) {
    return a.id == b.id && a.arrived == b.arrived && a.sender == b.sender && a.recipients == b.recipients &&
           a.eight_bit == b.eight_bit && a.smtputf8 == b.smtputf8 && a.client_ip == b.client_ip &&
           a.helo == b.helo && a.tls == b.tls && a.size == b.size;
}

void round_trip(const envelope& e) {
    const std::string h = format_header(e);
    std::size_t len = 0;
    const auto e2 = parse_header(h + "content", len);
    FUZZ_CHECK(e2, "formatted header does not parse: " + e2.error_message() + ": " + show(h));
    FUZZ_CHECK(same(e, *e2), "header round trip: " + show(h));
    FUZZ_CHECK(len == h.size(), "header_len after round trip");
}

void check_header(std::string_view data) {
    std::size_t len = 0;
    const auto e = parse_header(data, len);
    if (!e) {
        FUZZ_CHECK(!e.error_message().empty(), "error without a message");
        return;
    }
    FUZZ_CHECK(len >= 2 && len <= data.size() && data.substr(len - 2, 2) == "\n\n", "header_len " + std::to_string(len));
    FUZZ_CHECK(!e->id.empty() && !e->recipients.empty(), "id or recipients missing");
    for (const auto& r : e->recipients) FUZZ_CHECK(!r.empty() && clean(r), "recipient " + show(r));
    FUZZ_CHECK(clean(e->id) && clean(e->sender) && clean(e->client_ip) && clean(e->helo) && clean(e->tls),
               "CR or LF in a value");
    round_trip(*e);
}

void check_state(std::string_view text, std::size_t recipients) {
    constexpr std::string_view id = "0123456789ABCDEF0";
    if (const auto u = unseal_state(text, id)) (void)parse_state(*u, recipients);
    const auto st = parse_state(text, recipients);
    const std::set<std::string> hosts = parse_tls_failed(text);
    for (const auto& h : hosts) FUZZ_CHECK(!h.empty() && h.find('\n') == std::string::npos, "tlsfail host " + show(h));
    if (!st) return;
    FUZZ_CHECK(st->size() == recipients, "one state per recipient");
    // What format_state keeps: a host token without CR or LF, then optionally one space and a
    // decimal time of at most 18 digits ("mx.test:25 1764460000").
    std::set<std::string> written;
    for (const auto& h : hosts) {
        const std::size_t sp = h.find(' ');
        const std::string host = h.substr(0, sp), t = sp == std::string::npos ? "" : h.substr(sp + 1);
        const bool time_ok = sp == std::string::npos ||
                             (!t.empty() && t.size() <= 18 && std::all_of(t.begin(), t.end(), [](char c) {
                                 return c >= '0' && c <= '9';
                             }));
        if (!host.empty() && host.find_first_of("\r\n") == std::string::npos && time_ok) written.insert(h);
    }
    const std::string f = format_state(*st, hosts);
    const auto st2 = parse_state(f, recipients);
    FUZZ_CHECK(st2 && st2->size() == recipients, "formatted state does not parse: " + show(f));
    for (std::size_t i = 0; i < recipients; ++i) {
        std::string reply = (*st)[i].last_reply;
        for (char& c : reply)
            if (c == '\r' || c == '\n') c = ' ';
        const rcpt_state& a = (*st)[i];
        const rcpt_state& b = (*st2)[i];
        FUZZ_CHECK(a.status == b.status && a.attempts == b.attempts && a.next_attempt == b.next_attempt &&
                       b.last_reply == reply,
                   "state round trip: " + show(f));
    }
    FUZZ_CHECK(parse_tls_failed(f) == written, "tlsfail round trip: " + show(f));
    const std::string sealed = seal_state(id, f);
    const auto back = unseal_state(sealed, id);
    FUZZ_CHECK(back && *back == f, "seal round trip: " + show(sealed));
    FUZZ_CHECK(!unseal_state(sealed, "0123456789ABCDEF1"), "sealed state taken for another id: " + show(sealed));
    // Every host read back, once, with a time that is no later than any of its entries'.
    const tls_failures times = tls_failure_times(hosts, 1764460000);
    for (const auto& [h, t] : times) FUZZ_CHECK(!h.empty() && t >= 0, "tlsfail time of " + show(h));
    FUZZ_CHECK(tls_failure_times(tls_failure_entries(times), 1764460000) == times, "tlsfail times round trip");
}

void check_format(input& in, std::size_t recipients) {
    envelope e;
    e.id = in.string(64);
    e.arrived = static_cast<std::int64_t>(in.u64());
    e.sender = in.string(300);
    for (std::size_t i = 0; i < recipients; ++i) e.recipients.emplace_back(in.string(300));
    const std::uint8_t f = in.byte();
    e.eight_bit = f & 1;
    e.smtputf8 = f & 2;
    e.client_ip = in.string(64);
    e.helo = in.string(300);
    e.tls = in.string(64);
    e.size = in.u64();
    bool ok = !e.id.empty() && !e.recipients.empty() && clean(e.id) && clean(e.sender) && clean(e.client_ip) &&
              clean(e.helo) && clean(e.tls);
    for (const auto& r : e.recipients) ok = ok && !r.empty() && clean(r);
    if (ok) round_trip(e);
}

}  // namespace
}  // namespace postern::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace postern::fuzz;
    input in(data, size);
    const std::uint8_t mode = in.byte();
    const std::size_t recipients = 1 + ((mode >> 2) & 7);
    switch (mode & 3) {
        case 0: check_header(in.rest()); break;
        case 1: check_state(in.rest(), recipients); break;
        default: check_format(in, recipients); break;
    }
    return 0;
}
