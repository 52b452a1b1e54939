// fuzz/dsn.cpp - bounce and delay-warning generation (src/message/dsn.hpp make_dsn) with every
// input fuzzed: host name, queue id, sender, times, up to four recipients (address, action,
// status, remote MTA, diagnostic of any bytes and length), the original content, SMTPUTF8.
// Input: a flags octet, then length-prefixed fields and 64-bit times; the rest is the content.
// Invariants, beyond no crash / UB:
// - nothing for a null sender ("" or "<>") or no recipients, else a message from the null
//   sender to the original sender;
// - the content has CRLF line ends only, lines of at most 998 octets (RFC 5322 2.1.1), no
//   control characters but TAB, is valid UTF-8, and 7-bit ASCII unless the original was
//   SMTPUTF8 or an address is non-ASCII; dsn_message::smtputf8 says exactly whether it is not;
// - the header section parses: field lines and folded continuations, each of From, To,
//   Subject, Date, Message-ID, Auto-Submitted, MIME-Version, Content-Type exactly once; a Date
//   in the four-digit-year range has the RFC 5322 3.3 form;
// - MIME (RFC 2046 5.1.1): the boundary is 1..70 bchars, occurs nowhere but in the three
//   delimiter lines and the close delimiter, which is last;
// - the delivery-status part (RFC 3464) has one group per recipient: Final-Recipient, Action
//   failed|delayed, and a Status class.subject.detail of class 4 or 5.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz.hpp"
#include "message/dsn.hpp"

namespace postern::fuzz {
namespace {

using namespace postern::message;

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n;
        char32_t cp;
        if (c < 0x80) n = 1, cp = c;
        else if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07;
        else return false;
        if (i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k) {
            const auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (d & 0x3F);
        }
        static const char32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n;
    }
    return true;
}

std::vector<std::string_view> split_lines(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t pos = 0;
    while (pos < s.size()) {
        const std::size_t e = s.find("\r\n", pos);
        out.push_back(s.substr(pos, e - pos));
        if (e == std::string_view::npos) break;
        pos = e + 2;
    }
    return out;
}

// RFC 5322 3.3 date-time as rfc5322_date writes it: "Sat, 28 Nov 2026 14:21:10 +0000".
bool valid_date(std::string_view d) {
    static const std::string_view days = "Mon Tue Wed Thu Fri Sat Sun ";
    static const std::string_view months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec ";
    auto digits = [&](std::size_t at, std::size_t n) {
        for (std::size_t i = at; i < at + n; ++i)
            if (i >= d.size() || d[i] < '0' || d[i] > '9') return false;
        return true;
    };
    return d.size() == 31 && days.find(d.substr(0, 3)) % 4 == 0 && d.substr(3, 2) == ", " && digits(5, 2) &&
           d[7] == ' ' && months.find(d.substr(8, 3)) % 4 == 0 && d[11] == ' ' && digits(12, 4) && d[16] == ' ' &&
           digits(17, 2) && d[19] == ':' && digits(20, 2) && d[22] == ':' && digits(23, 2) &&
           d.substr(25) == " +0000";
}

// Header fields of `lines` (up to the first empty line), unfolded: name -> values.
std::multimap<std::string, std::string> fields(const std::vector<std::string_view>& lines, std::size_t& body_start,
                                               std::string_view content) {
    std::multimap<std::string, std::string> out;
    std::string name, value;
    auto flush = [&] {
        if (!name.empty()) out.emplace(name, value);
        name.clear();
    };
    std::size_t i = 0;
    for (; i < lines.size() && !lines[i].empty(); ++i) {
        const std::string_view l = lines[i];
        if (l[0] == ' ' || l[0] == '\t') {
            FUZZ_CHECK(!name.empty(), "continuation without a field: " + show(content));
            value += l;
            continue;
        }
        flush();
        const std::size_t colon = l.find(':');
        FUZZ_CHECK(colon != std::string_view::npos && colon > 0, "not a header field: " + show(l));
        for (unsigned char c : l.substr(0, colon))
            FUZZ_CHECK(c > 0x20 && c < 0x7f, "field name: " + show(l));
        name = std::string(l.substr(0, colon));
        value = std::string(l.substr(colon + 1));
    }
    flush();
    body_start = i + 1;
    return out;
}

void check_dsn(const dsn_input& in) {
    const auto m = make_dsn(in);
    const bool none = in.original_sender.empty() || in.original_sender == "<>" || in.recipients.empty();
    FUZZ_CHECK(m.has_value() != none, "DSN made (or not) wrongly");
    if (!m) return;
    FUZZ_CHECK(m->sender.empty() && m->recipient == in.original_sender, "DSN envelope");
    const std::string& c = m->content;
    FUZZ_CHECK(crlf_only(c, 998), "line ends or a line over 998 octets: " + show(c, 4000));
    for (unsigned char ch : c)
        FUZZ_CHECK(ch >= 0x20 || ch == '\t' || ch == '\r' || ch == '\n', "control octet: " + show(c, 4000));
    FUZZ_CHECK(valid_utf8(c), "invalid UTF-8: " + show(c, 4000));
    bool global = in.smtputf8 || !is_ascii(in.original_sender);
    for (const auto& r : in.recipients) global = global || !is_ascii(r.address);
    if (!global) FUZZ_CHECK(is_ascii(c), "8-bit octets in an ASCII report");
    FUZZ_CHECK(m->smtputf8 == (!is_ascii(c) || !is_ascii(m->recipient)), "smtputf8 flag");

    const auto lines = split_lines(c);
    std::size_t body = 0;
    const auto f = fields(lines, body, c);
    for (const char* name : {"From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version",
                             "Content-Type"})
        FUZZ_CHECK(f.count(name) == 1, std::string("header field ") + name);
    if (in.now >= 0 && in.now <= 253402300799)
        FUZZ_CHECK(valid_date(f.find("Date")->second.substr(1)), "Date: " + show(f.find("Date")->second));

    const std::string& ct = f.find("Content-Type")->second;
    const std::size_t b = ct.find("boundary=\"");
    FUZZ_CHECK(b != std::string::npos, "no boundary: " + show(ct));
    const std::size_t e = ct.find('"', b + 10);
    FUZZ_CHECK(e != std::string::npos, "boundary quote: " + show(ct));
    const std::string boundary = ct.substr(b + 10, e - b - 10);
    FUZZ_CHECK(!boundary.empty() && boundary.size() <= 70 && boundary.back() != ' ', "boundary " + show(boundary));
    for (char ch : boundary)
        FUZZ_CHECK(std::string_view("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ")
                           .find(ch) != std::string_view::npos,
                   "boundary character: " + show(boundary));
    std::vector<std::size_t> delimiters;
    std::size_t close = 0, last_nonempty = 0;
    for (std::size_t i = body; i < lines.size(); ++i) {
        if (!lines[i].empty()) last_nonempty = i;
        if (lines[i] == "--" + boundary) delimiters.push_back(i);
        else if (lines[i] == "--" + boundary + "--") close = i;
        else FUZZ_CHECK(lines[i].find(boundary) == std::string_view::npos, "boundary inside a part: " + show(lines[i]));
    }
    FUZZ_CHECK(delimiters.size() == 3 && close > delimiters.back() && close == last_nonempty, "MIME structure");

    // The delivery-status part: its header block, per-message fields, one group per recipient.
    std::size_t groups = 0;
    for (std::size_t i = delimiters[1] + 1; i < delimiters[2]; ++i) {
        const std::string_view l = lines[i];
        if (l.substr(0, 17) == "Final-Recipient: ") ++groups;
        if (l.substr(0, 8) == "Action: ")
            FUZZ_CHECK(l == "Action: failed" || l == "Action: delayed", "Action: " + show(l));
        if (l.substr(0, 8) == "Status: ") FUZZ_CHECK(valid_status_code(l.substr(8), "45"), "Status: " + show(l));
    }
    FUZZ_CHECK(groups == in.recipients.size(), "recipient groups: " + std::to_string(groups));
}

}  // namespace
}  // namespace postern::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace postern::fuzz;
    using namespace postern::message;
    input in(data, size);
    const std::uint8_t flags = in.byte();
    dsn_input d;
    d.smtputf8 = flags & 1;
    const std::size_t n = ((flags >> 1) & 7) % 5;
    d.reporting_mta = in.string(100);
    d.queue_id = in.string(40);
    d.original_sender = in.string(300);
    d.arrival = static_cast<std::int64_t>(in.u64());
    d.now = static_cast<std::int64_t>(in.u64());
    if (flags & 0x10) {  // mostly plausible times: the epoch to 2106
        d.arrival &= 0xFFFFFFFF;
        d.now &= 0xFFFFFFFF;
    }
    for (std::size_t i = 0; i < n; ++i) {
        dsn_recipient r;
        r.address = in.string(300);
        static const char* const actions[] = {"failed", "delayed", "DELAYED", ""};
        const std::uint8_t a = in.byte();
        r.action = a & 4 ? std::string(in.string(16)) : actions[a & 3];
        r.status = in.string(16);
        r.remote_mta = in.string(300);
        r.diagnostic = in.string(8191);
        r.diagnostic_is_smtp = a & 8;
        r.last_attempt = static_cast<std::int64_t>(in.u64());
        d.recipients.push_back(r);
    }
    const std::string content(in.rest());
    d.original_content = content;
    check_dsn(d);
    return 0;
}
