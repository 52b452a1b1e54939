// fuzz/address.cpp - the SMTP path parser (src/smtp/address.hpp): parse_path with every
// flag combination, path_end, valid_domain, including SMTPUTF8 (RFC 6531) addresses.
// Input: one flags octet (allow_null, utf8_allowed, postmaster_ok), then the path text.
// Invariants, beyond no crash / UB:
// - an accepted path is at most 256 octets, "<...>"; the mailbox has a non-empty local part
//   (no limit of its own beyond the path's) and a valid domain, or is exactly <Postmaster> (postmaster_ok);
//   null only with allow_null; utf8 exactly when an octet is non-ASCII, and never without
//   utf8_allowed; no control characters or spaces outside a quoted local part;
// - round trip: parse_path("<" + box.str() + ">") gives the same mailbox (source routes are
//   dropped on purpose), and the text the server would frame with path_end() is the whole path
//   (so MAIL FROM:<path> splits where the parser ends);
// - a path accepted without SMTPUTF8 is also accepted with it, with the same result.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz.hpp"
#include "smtp/address.hpp"

namespace postern::fuzz {
namespace {

using namespace postern::smtp;

bool iequals_ascii(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
    return true;
}

bool same(const path& a, const path& b) {
    return a.null == b.null && a.box.local == b.box.local && a.box.domain == b.box.domain && a.box.utf8 == b.box.utf8;
}

void check(std::string_view text, bool allow_null, bool utf8_allowed, bool postmaster_ok) {
    const auto p = parse_path(text, allow_null, utf8_allowed, postmaster_ok);
    if (!p) {
        FUZZ_CHECK(!p.error_message().empty(), "error without a message: " + show(text));
        return;
    }
    FUZZ_CHECK(text.size() <= 256 && text.size() >= 2 && text.front() == '<' && text.back() == '>',
               "accepted text: " + show(text));
    if (p->null) {
        FUZZ_CHECK(allow_null && text == "<>", "null path: " + show(text));
        return;
    }
    const mailbox& b = p->box;
    FUZZ_CHECK(!b.local.empty(), "local part: " + show(text));  // no 64-octet limit (RFC 5321 4.5.3.1)
    if (b.domain.empty()) {
        FUZZ_CHECK(postmaster_ok && b.local.size() == 10 && iequals_ascii(b.local, "postmaster"),
                   "mailbox without a domain: " + show(text));
    } else {
        FUZZ_CHECK(valid_domain(b.domain, true), "domain: " + show(text));
        FUZZ_CHECK(utf8_allowed || valid_domain(b.domain, false), "non-ASCII domain without SMTPUTF8: " + show(text));
    }
    FUZZ_CHECK(b.utf8 == (!is_ascii(b.local) || !is_ascii(b.domain)), "utf8 flag: " + show(text));
    FUZZ_CHECK(utf8_allowed || !b.utf8, "non-ASCII without SMTPUTF8: " + show(text));
    const bool quoted = b.local.front() == '"';
    for (unsigned char c : b.str()) {
        FUZZ_CHECK(c >= 0x20 && c != 0x7f, "control octet: " + show(text));
        if (!quoted) FUZZ_CHECK(c != ' ', "space outside quotes: " + show(text));
    }

    // Round trip through the text the spool and the next hop get.
    const std::string again = "<" + b.str() + ">";
    const auto p2 = parse_path(again, allow_null, utf8_allowed, postmaster_ok);
    FUZZ_CHECK(p2 && same(*p, *p2), "round trip: " + show(text) + " -> " + show(again));
    FUZZ_CHECK(path_end(again) == again.size(), "path_end frames it differently: " + show(again));
    FUZZ_CHECK(path_end(text) == text.size(), "path_end frames it differently: " + show(text));

    if (!utf8_allowed) {
        const auto p3 = parse_path(text, allow_null, true, postmaster_ok);
        FUZZ_CHECK(p3 && same(*p, *p3), "SMTPUTF8 changes an ASCII result: " + show(text));
    }
}

}  // namespace
}  // namespace postern::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace postern::fuzz;
    input in(data, size);
    const std::uint8_t flags = in.byte();
    const std::string_view text = in.rest();
    check(text, flags & 1, flags & 2, flags & 4);
    // The same text inside brackets, as a forward-path with every option on.
    if (flags & 8) check("<" + std::string(text) + ">", false, true, true);
    (void)postern::smtp::valid_domain(text, flags & 2);
    (void)postern::smtp::path_end(text);
    return 0;
}
