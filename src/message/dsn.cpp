// message/dsn.cpp - build a bounce or delay warning as one multipart/report message.
// RFC 3464 (DSN fields), 6522 (multipart/report), 6533 (global DSN types), 3834 (Auto-Submitted),
// 2045/2046 (MIME, boundaries), 5322 2.1.1 (998-octet lines) and 2.2.3 (folding).
#include "message/dsn.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

#include <fmt/format.h>

#include "message/headers.hpp"
#include "message/received.hpp"
#include "smtp/address.hpp"
#include "smtp/text.hpp"

namespace postern::message {

namespace {

constexpr std::size_t soft_line = 78;   // RFC 5322 2.1.1 SHOULD
constexpr std::size_t hard_line = 998;  // RFC 5322 2.1.1 MUST (CRLF not counted)
// A run without spaces longer than this is split so it can be folded: the only place where
// folding changes the text (a space appears inside the run). Keeps every line < hard_line.
constexpr std::size_t max_word = 900;

using smtp::is_ascii;

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// Decodes one well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF). Returns its length, or 0 when the octet at s[i] does not start one.
std::size_t utf8_decode(std::string_view s, std::size_t i, char32_t& cp) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
        cp = c;
        return 1;
    }
    std::size_t n;
    char32_t min;
    if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (i + n > s.size()) return 0;
    for (std::size_t k = 1; k < n; ++k) {
        auto d = static_cast<unsigned char>(s[i + k]);
        if ((d & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

// The largest n' <= n that does not cut a UTF-8 sequence of the (well-formed) text s.
std::size_t utf8_floor(std::string_view s, std::size_t n) {
    if (n >= s.size()) return s.size();
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return n;
}

// The printable form of one character at s[i]: itself, or "?" for a control character
// (C0, DEL, C1), an ill-formed octet, or any non-ASCII character when !utf8. Sets n to
// the number of octets consumed.
std::string_view printable_at(std::string_view s, std::size_t i, bool utf8, std::size_t& n) {
    char32_t cp = 0;
    n = utf8_decode(s, i, cp);
    if (n == 0) {
        n = 1;
        return "?";
    }
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) return "?";
    if (cp >= 0x80 && !utf8) return "?";
    return s.substr(i, n);
}

// Anything remote or queued made into one line of text: CR, LF, TAB and other ASCII white
// space become a single space (so a multi-line reply is joined with spaces, as Postfix does;
// RFC 3464 2.3.6 allows only *text), leading and trailing space is dropped, and
// printable_at() replaces what cannot be shown.
std::string clean_line(std::string_view s, bool utf8) {
    std::string out;
    out.reserve(s.size());
    bool space = false;
    for (std::size_t i = 0; i < s.size();) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f') {
            space = true;
            ++i;
            continue;
        }
        std::size_t n = 0;
        std::string_view piece = printable_at(s, i, utf8, n);
        if (space && !out.empty()) out += ' ';
        space = false;
        out += piece;
        i += n;
    }
    return out;
}

// One line of the returned header section: spaces and tabs kept as they are (folding
// stays intact), everything else through printable_at(), cut to hard_line octets.
std::string clean_header_line(std::string_view line, bool utf8) {
    std::string out;
    out.reserve(line.size());
    for (std::size_t i = 0; i < line.size();) {
        if (line[i] == ' ' || line[i] == '\t') {
            out += line[i++];
            continue;
        }
        std::size_t n = 0;
        out += printable_at(line, i, utf8, n);
        i += n;
    }
    if (out.size() > hard_line) out.resize(utf8_floor(out, hard_line));
    return out;
}

// Appends `text` (no CR or LF, single spaces) and CRLF, folded before spaces so that lines
// stay within soft_line where the words allow and always within hard_line. For header and
// DSN fields `indent` is " ": removing each CRLF gives back the text (RFC 5322 2.2.3). For
// the text part it is "    ", a hanging indent as in Postfix's bounces.
void append_folded(std::string& out, std::string_view text, std::string_view indent) {
    std::size_t col = 0;
    bool line_empty = true;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t sp = text.find(' ', pos);
        std::size_t end = sp == std::string_view::npos ? text.size() : sp;
        std::string_view word = text.substr(pos, end - pos);
        pos = end + 1;
        while (!word.empty()) {
            std::size_t take = word.size() <= max_word ? word.size() : utf8_floor(word, max_word);
            if (take == 0) take = word.size();  // cannot happen with well-formed text
            std::string_view piece = word.substr(0, take);
            word.remove_prefix(take);
            if (line_empty) {
                out += piece;
                col = piece.size();
                line_empty = false;
            } else if (col + 1 + piece.size() > soft_line) {
                out += "\r\n";
                out += indent;
                out += piece;
                col = indent.size() + piece.size();
            } else {
                out += ' ';
                out += piece;
                col += 1 + piece.size();
            }
        }
    }
    out += "\r\n";
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
    append_folded(out, fmt::format("{}: {}", name, value), " ");
}

// Only the characters in `keep` and letters and digits.
std::string token(std::string_view s, std::string_view keep = "") {
    std::string out;
    for (char c : s)
        if (is_alnum(c) || keep.find(c) != std::string_view::npos) out += c;
    return out;
}

// A host name safe in "dns;" fields, an addr-spec and a msg-id: LDH labels joined by single
// dots. Our own name comes from configuration; this only guards the output's syntax.
std::string dns_name(std::string_view s) {
    std::string out;
    std::size_t pos = 0;
    while (pos <= s.size()) {
        std::size_t dot = s.find('.', pos);
        if (dot == std::string_view::npos) dot = s.size();
        std::string label = token(s.substr(pos, dot - pos), "-");
        if (!label.empty()) {
            if (!out.empty()) out += '.';
            out += label;
        }
        pos = dot + 1;
    }
    return out.empty() ? "localhost" : out;
}

// RFC 3463 2: class "." subject "." detail, 1 to 3 digits each; a bounce or warning has
// class 4 or 5 (a message that expires after 4xx replies is "failed" with a 4.x.x status).
bool valid_status(std::string_view s) {
    if (s.size() < 5 || (s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
    std::size_t i = 2;
    for (int part = 0; part < 2; ++part) {
        std::size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        if (i == start || i - start > 3) return false;
        if (part == 0) {
            if (i >= s.size() || s[i] != '.') return false;
            ++i;
        }
    }
    return i == s.size();
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return (x >= 'A' && x <= 'Z' ? x - 'A' + 'a' : x) == (y >= 'A' && y <= 'Z' ? y - 'A' + 'a' : y);
           });
}

// RFC 3464 2.3.2 address-type: rfc822 for ASCII, utf-8 (RFC 6533 3, utf-8-address form)
// otherwise; non-ASCII addresses only occur in the global report.
std::string typed_address(std::string_view address) {
    return fmt::format("{}; {}", is_ascii(address) ? "rfc822" : "utf-8", address);
}

// FNV-1a over s and a terminating NUL (so that "ab","c" and "a","bc" differ).
std::uint32_t fnv1a(std::uint32_t h, std::string_view s) {
    for (char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 16777619u;
    }
    return h * 16777619u;
}

struct report_recipient {
    std::string address;
    bool delayed = false;
    std::string status;
    std::string remote;
    std::string diagnostic;
    bool smtp = true;
    std::string note;
    std::int64_t last_attempt = 0;
};

report_recipient prepare(const dsn_recipient& r, bool utf8) {
    report_recipient p;
    p.address = clean_line(r.address, utf8);
    p.delayed = iequals(r.action, "delayed");
    p.status = valid_status(r.status) ? r.status : (p.delayed ? "4.0.0" : "5.0.0");
    p.remote = token(clean_line(r.remote_mta, false), ".-_:[]");
    p.diagnostic = clean_line(r.diagnostic, utf8);
    if (p.diagnostic.size() > max_diagnostic_octets) {
        p.diagnostic.resize(utf8_floor(p.diagnostic, max_diagnostic_octets - 4));
        p.diagnostic += " ...";
    }
    p.smtp = r.diagnostic_is_smtp;
    p.note = clean_line(r.note.substr(0, max_diagnostic_octets), utf8);
    p.last_attempt = r.last_attempt;
    return p;
}

// "<a@b>: host mx.b said: 550 5.1.1 unknown user", as in Postfix's bounces.
std::string human_reason(const report_recipient& r) {
    const std::string note = r.note.empty() ? "" : fmt::format(" ({})", r.note);
    if (r.diagnostic.empty())
        return fmt::format("<{}>: delivery {} (status {}){}", r.address, r.delayed ? "delayed" : "failed", r.status,
                           note);
    if (r.smtp && !r.remote.empty())
        return fmt::format("<{}>: host {} said: {}{}", r.address, r.remote, r.diagnostic, note);
    return fmt::format("<{}>: {}{}", r.address, r.diagnostic, note);
}

void append_recipient_list(std::string& out, const std::vector<report_recipient>& rs, bool delayed) {
    bool first = true;
    for (const auto& r : rs) {
        if (r.delayed != delayed) continue;
        if (!first) out += "\r\n";
        first = false;
        append_folded(out, human_reason(r), "    ");
    }
}

// Part 1: for people (RFC 6522 3: the first part is human-readable), after Postfix's texts.
std::string human_part(const dsn_input& in, const std::string& host, const std::vector<report_recipient>& rs,
                       bool any_failed, bool any_delayed) {
    std::string t;
    append_folded(t, fmt::format("This is the mail system at host {}.", host), "    ");
    t += "\r\n";
    if (any_failed) {
        t += "I'm sorry to have to inform you that your message could not\r\n"
             "be delivered to one or more recipients. The header section of\r\n"
             "your message is attached below; its body is not returned.\r\n"
             "\r\n"
             "For further assistance, please send mail to postmaster.\r\n"
             "\r\n"
             "If you do so, please include this problem report.\r\n";
    } else {
        t += "####################################################################\r\n"
             "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
             "####################################################################\r\n"
             "\r\n";
        // now >= arrival > 0 first: the subtraction cannot overflow whatever the spool says
        // (found by fuzz/dsn).
        if (in.arrival > 0 && in.now >= in.arrival && in.now - in.arrival >= 3600)
            t += fmt::format("Your message could not be delivered for {} hour(s).\r\n", (in.now - in.arrival) / 3600);
        else
            t += "Your message could not be delivered yet.\r\n";
        t += "It is still being retried, and you will be told if delivery\r\n"
             "finally fails. The header section of your message is attached\r\n"
             "below; its body is not returned.\r\n";
    }
    t += "\r\n"
         "                   The mail system\r\n"
         "\r\n";
    append_recipient_list(t, rs, !any_failed);
    if (any_failed && any_delayed) {
        t += "\r\n"
             "Delivery to the following recipients is still being retried;\r\n"
             "you do not need to resend your message to them:\r\n"
             "\r\n";
        append_recipient_list(t, rs, true);
    }
    return t;
}

// Part 2: RFC 3464 2.2 per-message fields, then one group per recipient (2.3), each group
// preceded by an empty line. Extension fields X-Postern-* (after the standard ones) follow
// Postfix's X-Postfix-*.
std::string status_part(const dsn_input& in, const std::string& host, const std::string& qid,
                        const std::string& sender, const std::vector<report_recipient>& rs) {
    std::string s;
    append_field(s, "Reporting-MTA", fmt::format("dns; {}", host));  // 2.2.2
    if (in.arrival > 0) append_field(s, "Arrival-Date", rfc5322_date(in.arrival));  // 2.2.5
    // 2.2: extension fields after the standard per-message ones (Postfix puts its X-Postfix-*
    // before Arrival-Date, against the grammar).
    if (!qid.empty()) append_field(s, "X-Postern-Queue-ID", qid);
    append_field(s, "X-Postern-Sender", typed_address(sender));
    for (const auto& r : rs) {
        s += "\r\n";
        append_field(s, "Final-Recipient", typed_address(r.address));  // 2.3.2
        append_field(s, "Action", r.delayed ? "delayed" : "failed");   // 2.3.3
        append_field(s, "Status", r.status);                           // 2.3.4
        // 2.3.5: MUST NOT be present when no remote MTA was involved.
        if (!r.remote.empty()) append_field(s, "Remote-MTA", fmt::format("dns; {}", r.remote));
        // 2.3.6: "smtp" for a remote reply; a local reason gets our own diagnostic-type.
        if (!r.diagnostic.empty())
            append_field(s, "Diagnostic-Code", fmt::format("{}; {}", r.smtp ? "smtp" : "X-Postern", r.diagnostic));
        if (r.last_attempt > 0) append_field(s, "Last-Attempt-Date", rfc5322_date(r.last_attempt));  // 2.3.7
    }
    return s;
}

// Part 3: the original header section only (see dsn.hpp), line by line, cleaned, whole lines
// up to max_returned_header_octets.
std::string headers_part(std::string_view content, bool utf8) {
    std::string_view hs = header_section(content);
    std::string out;
    std::size_t pos = 0;
    while (pos < hs.size()) {
        std::size_t nl = hs.find('\n', pos);
        std::size_t end = nl == std::string_view::npos ? hs.size() : nl;
        std::string_view line = hs.substr(pos, end - pos);
        pos = end + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        std::string clean = clean_header_line(line, utf8);
        if (out.size() + clean.size() + 2 > max_returned_header_octets) break;
        out += clean;
        out += "\r\n";
    }
    return out;
}

// RFC 2046 5.1.1: the boundary must not occur in any part. First choice, as Postfix does:
// "queue-id.time/host" (bchars only, <= 70); while any part contains the candidate (a
// stricter test than "no line starts with --boundary"), append ".1", ".2", ... Terminates:
// each rejected candidate occurs in the parts, which are finite.
std::string choose_boundary(const std::string& qid, std::int64_t now, const std::string& host,
                            const std::array<const std::string*, 3>& parts) {
    std::string base = fmt::format("{}.{}/{}", qid, now, host);
    if (base.size() > 60) base.resize(60);
    for (unsigned n = 0;; ++n) {
        std::string candidate = n == 0 ? base : fmt::format("{}.{}", base, n);
        bool clash = std::any_of(parts.begin(), parts.end(),
                                 [&](const std::string* p) { return p->find(candidate) != std::string::npos; });
        if (!clash) return candidate;
    }
}

}  // namespace

std::optional<dsn_message> make_dsn(const dsn_input& in) {
    // Never bounce a bounce (RFC 5321 4.5.5, 6.1; RFC 3464 2).
    if (in.original_sender.empty() || in.original_sender == "<>") return std::nullopt;
    if (in.recipients.empty()) return std::nullopt;

    // RFC 6533: global types when the original was SMTPUTF8 or an address needs UTF-8.
    bool global = in.smtputf8 || !is_ascii(in.original_sender) ||
                  std::any_of(in.recipients.begin(), in.recipients.end(),
                              [](const dsn_recipient& r) { return !is_ascii(r.address); });

    std::string host = dns_name(in.reporting_mta);
    std::string qid = token(in.queue_id);
    std::string sender = clean_line(in.original_sender, global);

    std::vector<report_recipient> rs;
    rs.reserve(in.recipients.size());
    std::uint32_t hash = 2166136261u;
    bool any_failed = false, any_delayed = false;
    for (const auto& r : in.recipients) {
        rs.push_back(prepare(r, global));
        if (rs.back().delayed) any_delayed = true;
        else any_failed = true;
        hash = fnv1a(fnv1a(fnv1a(hash, r.address), r.action), r.status);
    }

    std::string text = human_part(in, host, rs, any_failed, any_delayed);
    std::string status = status_part(in, host, qid, sender, rs);
    std::string headers = headers_part(in.original_content, global);
    std::string id = qid.empty() ? "noqueue" : qid;
    std::string boundary = choose_boundary(id, in.now, host, {&text, &status, &headers});

    std::string_view cte = global ? "Content-Transfer-Encoding: 8bit\r\n" : "";
    std::string c;
    c.reserve(text.size() + status.size() + headers.size() + 1024);
    append_field(c, "From", fmt::format("MAILER-DAEMON@{} (Mail Delivery System)", host));
    // An address whose only non-ASCII part is its domain is written with A-labels (the same
    // name, RFC 5890): a UTF-8 header section would need SMTPUTF8 of the sender's server, which
    // the envelope does not (RFC 6531 3.2), and a report it cannot take is lost (null sender).
    append_field(c, "To", smtp::ascii_address(sender).value_or(sender));
    append_field(c, "Subject", any_failed ? "Undelivered Mail Returned to Sender" : "Delayed Mail (still being retried)");
    append_field(c, "Date", rfc5322_date(in.now));
    // Unique per notification: a message can get a delay warning and later a bounce, or
    // bounces for different recipients at different times.
    append_field(c, "Message-ID", fmt::format("<{}.{}.{:08x}.dsn@{}>", id, in.now, hash, host));
    append_field(c, "Auto-Submitted", "auto-replied");  // RFC 3834 5
    append_field(c, "MIME-Version", "1.0");
    // RFC 6522 3: report-type names the second part's subtype. The boundary is quoted: '/'
    // is a tspecial (RFC 2045 5.1).
    c += fmt::format("Content-Type: multipart/report; report-type={};\r\n\tboundary=\"{}\"\r\n",
                     global ? "global-delivery-status" : "delivery-status", boundary);
    c += cte;
    c += "\r\nThis is a MIME-encapsulated message.\r\n";

    auto part = [&](std::string_view part_headers, const std::string& body) {
        c += fmt::format("\r\n--{}\r\n", boundary);
        c += part_headers;
        c += cte;
        c += "\r\n";
        c += body;
    };
    part(global ? "Content-Description: Notification\r\nContent-Type: text/plain; charset=utf-8\r\n"
                : "Content-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n",
         text);
    part(global ? "Content-Description: Delivery report\r\nContent-Type: message/global-delivery-status\r\n"
                : "Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n",
         status);
    std::string desc = fmt::format("Content-Description: {} Message Headers\r\n", any_failed ? "Undelivered" : "Delayed");
    part(desc + (global ? "Content-Type: message/global-headers\r\n" : "Content-Type: text/rfc822-headers\r\n"),
         headers);
    c += fmt::format("\r\n--{}--\r\n", boundary);

    dsn_message m;
    m.recipient = in.original_sender;
    m.smtputf8 = !is_ascii(c) || !is_ascii(m.recipient);
    m.eight_bit = !is_ascii(c);
    m.content = std::move(c);
    return m;
}

}  // namespace postern::message
