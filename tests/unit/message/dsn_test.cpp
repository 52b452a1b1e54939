// tests/unit/message/dsn_test.cpp - bounces and delay warnings (SPEC §3.5; RFC 3464, 6522, 6533).
// The output is parsed here with a deliberately small MIME reader: top-level header fields,
// the boundary parameter, the parts between delimiter lines, and DSN field groups.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "message/dsn.hpp"

using namespace postern;

namespace {

const char* original =
    "Received: from client.test (client.test [192.0.2.9])\r\n"
    "\tby mx.example.test (Postern) with ESMTP id 4F2A;\r\n"
    "\tThu, 01 Jan 1970 00:00:00 +0000\r\n"
    "From: Alice <alice@origin.test>\r\n"
    "To: bob@dest.test, carol@dest.test\r\n"
    "Subject: quarterly figures\r\n"
    "Message-ID: <orig-1@origin.test>\r\n"
    "\r\n"
    "SECRET BODY TEXT: the figures are attached.\r\n"
    "Received: from a line in the body\r\n";

message::dsn_input base_input() {
    message::dsn_input in;
    in.reporting_mta = "mx.example.test";
    in.queue_id = "4F2A";
    in.original_sender = "alice@origin.test";
    in.arrival = 1764339000;
    in.now = 1764339670;
    in.original_content = original;
    message::dsn_recipient bob;
    bob.address = "bob@dest.test";
    bob.action = "failed";
    bob.status = "5.1.1";
    bob.remote_mta = "mx.dest.test";
    bob.diagnostic = "550 5.1.1 <bob@dest.test>: Recipient address rejected: User unknown";
    bob.last_attempt = 1764339600;
    message::dsn_recipient carol;
    carol.address = "carol@dest.test";
    carol.action = "failed";
    carol.status = "5.4.6";
    carol.diagnostic = "Hop count exceeded - possible mail loop";
    carol.diagnostic_is_smtp = false;
    in.recipients = {bob, carol};
    return in;
}

// Every line ends in CRLF, no bare CR or LF, no line over 998 octets (RFC 5322 2.1.1, 2.3).
void expect_wire_clean(const std::string& m) {
    ASSERT_GE(m.size(), 2u);
    EXPECT_EQ(m.substr(m.size() - 2), "\r\n");
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < m.size(); ++i) {
        if (m[i] == '\r') {
            ASSERT_TRUE(i + 1 < m.size() && m[i + 1] == '\n') << "bare CR at " << i;
        } else if (m[i] == '\n') {
            ASSERT_TRUE(i > 0 && m[i - 1] == '\r') << "bare LF at " << i;
            EXPECT_LE(i - 1 - line_start, 998u) << "long line at " << line_start;
            line_start = i + 1;
        }
    }
}

struct mime_part {
    std::string headers;  // header lines, each ending in CRLF
    std::string body;
};

struct mime_message {
    std::string headers;
    std::string boundary;
    std::vector<mime_part> parts;
    bool closed = false;
};

// Unfolded values of every field `name` (case-sensitive, as we write them) in a block of
// header-like lines.
std::vector<std::string> fields(const std::string& block, const std::string& name) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < block.size()) {
        std::size_t end = block.find("\r\n", pos);
        if (end == std::string::npos) end = block.size();
        std::string line = block.substr(pos, end - pos);
        pos = end + 2;
        if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) continue;  // belongs to a skipped field
        if (line.rfind(name + ":", 0) != 0) continue;
        std::string value = line.substr(name.size() + 1);
        // Unfold: continuation lines belong to this field (RFC 5322 2.2.3).
        while (pos < block.size() && (block[pos] == ' ' || block[pos] == '\t')) {
            std::size_t e = block.find("\r\n", pos);
            if (e == std::string::npos) e = block.size();
            value += block.substr(pos, e - pos);
            pos = e + 2;
        }
        std::size_t first = value.find_first_not_of(" \t");
        out.push_back(first == std::string::npos ? "" : value.substr(first));
    }
    return out;
}

std::string field(const std::string& block, const std::string& name) {
    auto v = fields(block, name);
    return v.empty() ? "<absent>" : v.front();
}

mime_message parse(const std::string& m) {
    mime_message r;
    std::size_t split = m.find("\r\n\r\n");
    if (split == std::string::npos) return r;
    r.headers = m.substr(0, split + 2);
    std::string body = m.substr(split + 4);
    std::string ct = field(r.headers, "Content-Type");
    std::size_t b = ct.find("boundary=\"");
    if (b == std::string::npos) return r;
    b += 10;
    r.boundary = ct.substr(b, ct.find('"', b) - b);
    // RFC 2046 5.1.1: the CRLF before "--boundary" belongs to the delimiter.
    std::string delim = "\r\n--" + r.boundary;
    std::size_t pos = body.find(delim);
    while (pos != std::string::npos) {
        pos += delim.size();
        if (body.compare(pos, 2, "--") == 0) {
            r.closed = true;
            break;
        }
        pos += 2;  // CRLF ending the delimiter line
        std::size_t next = body.find(delim, pos);
        std::string part = body.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
        std::size_t ph = part.find("\r\n\r\n");
        mime_part p;
        if (part.rfind("\r\n", 0) == 0) {
            p.body = part.substr(2);
        } else if (ph != std::string::npos) {
            p.headers = part.substr(0, ph + 2);
            p.body = part.substr(ph + 4);
        }
        r.parts.push_back(p);
        pos = next;
    }
    return r;
}

// The groups of DSN fields (RFC 3464 2.1: per-message, then per-recipient), split at empty lines.
std::vector<std::string> dsn_groups(const std::string& body) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < body.size()) {
        std::size_t end = body.find("\r\n\r\n", pos);
        if (end == std::string::npos) {
            out.push_back(body.substr(pos));
            break;
        }
        out.push_back(body.substr(pos, end + 2 - pos));
        pos = end + 4;
    }
    return out;
}

std::size_t count(const std::string& s, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
    return n;
}

// The bounce of base_input() with `original` as the content, checked wire-clean with three
// parts: the whole DSN, and its third part (the returned text/rfc822-headers).
struct bounce {
    std::string content;
    std::string returned_headers;
};
bounce bounce_of(std::string_view original) {
    auto in = base_input();
    in.original_content = original;
    auto d = message::make_dsn(in);
    if (!d) {
        ADD_FAILURE() << "no DSN";
        return {};
    }
    expect_wire_clean(d->content);
    auto m = parse(d->content);
    EXPECT_EQ(m.parts.size(), 3u);
    return {d->content, m.parts.size() == 3 ? m.parts[2].body : "<no third part>"};
}

}  // namespace

TEST(dsn, structure_of_a_bounce) {
    auto in = base_input();
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->sender, "");
    EXPECT_EQ(d->recipient, "alice@origin.test");
    EXPECT_FALSE(d->smtputf8);
    EXPECT_FALSE(d->eight_bit);  // goes to a server without 8BITMIME too
    expect_wire_clean(d->content);

    auto m = parse(d->content);
    EXPECT_EQ(field(m.headers, "From"), "MAILER-DAEMON@mx.example.test (Mail Delivery System)");
    EXPECT_EQ(field(m.headers, "To"), "alice@origin.test");
    EXPECT_EQ(field(m.headers, "Subject"), "Undelivered Mail Returned to Sender");
    EXPECT_EQ(field(m.headers, "Date"), "Fri, 28 Nov 2025 14:21:10 +0000");
    EXPECT_EQ(field(m.headers, "Auto-Submitted"), "auto-replied");
    EXPECT_EQ(field(m.headers, "MIME-Version"), "1.0");
    std::string mid = field(m.headers, "Message-ID");
    EXPECT_EQ(mid.front(), '<');
    EXPECT_NE(mid.find("@mx.example.test>"), std::string::npos) << mid;
    EXPECT_NE(field(m.headers, "Content-Type").find("multipart/report; report-type=delivery-status;"),
              std::string::npos);

    ASSERT_FALSE(m.boundary.empty());
    EXPECT_LE(m.boundary.size(), 70u);
    EXPECT_TRUE(m.closed);
    ASSERT_EQ(m.parts.size(), 3u);
    // The boundary occurs only as the three delimiters and the close delimiter (and the parameter).
    EXPECT_EQ(count(d->content, "\r\n--" + m.boundary + "\r\n"), 3u);
    EXPECT_EQ(count(d->content, "\r\n--" + m.boundary + "--\r\n"), 1u);
    EXPECT_EQ(count(d->content, m.boundary), 5u);

    EXPECT_EQ(field(m.parts[0].headers, "Content-Type"), "text/plain; charset=us-ascii");
    EXPECT_EQ(field(m.parts[1].headers, "Content-Type"), "message/delivery-status");
    EXPECT_EQ(field(m.parts[2].headers, "Content-Type"), "text/rfc822-headers");

    // Part 1 names each recipient and the reason.
    const std::string& text = m.parts[0].body;
    EXPECT_NE(text.find("This is the mail system at host mx.example.test."), std::string::npos) << text;
    EXPECT_NE(text.find("could not\r\nbe delivered to one or more recipients"), std::string::npos) << text;
    EXPECT_NE(text.find("<bob@dest.test>: host mx.dest.test said: 550 5.1.1 <bob@dest.test>:"), std::string::npos)
        << text;
    EXPECT_NE(text.find("<carol@dest.test>: Hop count exceeded - possible mail loop"), std::string::npos) << text;

    // Part 2: per-message fields, then one group per recipient.
    auto groups = dsn_groups(m.parts[1].body);
    ASSERT_EQ(groups.size(), 3u) << m.parts[1].body;
    EXPECT_EQ(field(groups[0], "Reporting-MTA"), "dns; mx.example.test");
    EXPECT_EQ(field(groups[0], "X-Postern-Queue-ID"), "4F2A");
    EXPECT_EQ(field(groups[0], "X-Postern-Sender"), "rfc822; alice@origin.test");
    EXPECT_EQ(field(groups[0], "Arrival-Date"), "Fri, 28 Nov 2025 14:10:00 +0000");
    // RFC 3464 2.2: the extension fields follow the standard per-message fields.
    EXPECT_LT(groups[0].find("Reporting-MTA:"), groups[0].find("Arrival-Date:"));
    EXPECT_LT(groups[0].find("Arrival-Date:"), groups[0].find("X-Postern-Queue-ID:")) << groups[0];
    EXPECT_LT(groups[0].find("Arrival-Date:"), groups[0].find("X-Postern-Sender:")) << groups[0];

    EXPECT_EQ(field(groups[1], "Final-Recipient"), "rfc822; bob@dest.test");
    EXPECT_EQ(field(groups[1], "Action"), "failed");
    EXPECT_EQ(field(groups[1], "Status"), "5.1.1");
    EXPECT_EQ(field(groups[1], "Remote-MTA"), "dns; mx.dest.test");
    EXPECT_EQ(field(groups[1], "Diagnostic-Code"),
              "smtp; 550 5.1.1 <bob@dest.test>: Recipient address rejected: User unknown");
    EXPECT_EQ(field(groups[1], "Last-Attempt-Date"), "Fri, 28 Nov 2025 14:20:00 +0000");

    EXPECT_EQ(field(groups[2], "Final-Recipient"), "rfc822; carol@dest.test");
    EXPECT_EQ(field(groups[2], "Action"), "failed");
    EXPECT_EQ(field(groups[2], "Status"), "5.4.6");
    EXPECT_EQ(field(groups[2], "Remote-MTA"), "<absent>");  // RFC 3464 2.3.5: no remote MTA involved
    EXPECT_EQ(field(groups[2], "Diagnostic-Code"), "X-Postern; Hop count exceeded - possible mail loop");
    EXPECT_EQ(field(groups[2], "Last-Attempt-Date"), "<absent>");
}

// RFC 3464 2.3.6: an `smtp` Diagnostic-Code is the remote MTA's reply as given. Postern's own
// reason for giving up (expiry at queue.max_age) is a note in the human-readable part (found
// by review: "smtp; 451 4.7.1 greylisted; message expired after 432001s in the queue").
TEST(dsn, note_goes_to_the_human_part_not_the_smtp_diagnostic) {
    auto in = base_input();
    in.recipients.resize(1);
    in.recipients[0].status = "4.7.1";
    in.recipients[0].diagnostic = "451 4.7.1 greylisted";
    in.recipients[0].note = "message expired after 432001s in the queue";
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    auto m = parse(d->content);
    ASSERT_EQ(m.parts.size(), 3u);
    EXPECT_NE(m.parts[0].body.find("<bob@dest.test>: host mx.dest.test said: 451 4.7.1 greylisted (message expired\r\n"
                                   "    after 432001s in the queue)"),
              std::string::npos)
        << m.parts[0].body;
    auto groups = dsn_groups(m.parts[1].body);
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(field(groups[1], "Diagnostic-Code"), "smtp; 451 4.7.1 greylisted");
    EXPECT_EQ(m.parts[1].body.find("expired"), std::string::npos) << m.parts[1].body;
}

TEST(dsn, null_sender_gets_no_bounce) {
    auto in = base_input();
    in.original_sender = "";
    EXPECT_FALSE(message::make_dsn(in));
    in.original_sender = "<>";
    EXPECT_FALSE(message::make_dsn(in));
}

TEST(dsn, no_recipients_no_report) {
    auto in = base_input();
    in.recipients.clear();
    EXPECT_FALSE(message::make_dsn(in));
}

TEST(dsn, only_the_original_header_section_is_returned) {
    auto d = message::make_dsn(base_input());
    ASSERT_TRUE(d);
    EXPECT_EQ(d->content.find("SECRET BODY TEXT"), std::string::npos);
    EXPECT_EQ(d->content.find("from a line in the body"), std::string::npos);
    auto m = parse(d->content);
    ASSERT_EQ(m.parts.size(), 3u);
    std::string o = original;
    EXPECT_EQ(m.parts[2].body, o.substr(0, o.find("\r\n\r\n") + 2));
}

// Found in review: without the empty line after the headers, the whole content (up to 100 KB)
// went back as "headers" to a possibly forged sender. The first non-header line ends them.
TEST(dsn, original_without_empty_line_returns_no_body) {
    auto b = bounce_of(
        "Subject: no separator\r\n"
        "\tfolded\r\n"
        "SECRET BODY LINE 1\r\n"
        "Received: SECRET BODY LINE 2\r\n");
    EXPECT_EQ(b.content.find("SECRET BODY"), std::string::npos);
    EXPECT_EQ(b.returned_headers, "Subject: no separator\r\n\tfolded\r\n");

    // A first line that is no header field: nothing is returned.
    b = bounce_of("SECRET BODY LINE 1\r\nSubject: later\r\n\r\nSECRET BODY LINE 2\r\n");
    EXPECT_EQ(b.content.find("SECRET BODY"), std::string::npos);
    EXPECT_EQ(b.returned_headers, "");
}

TEST(dsn, original_without_body_or_trailing_crlf) {
    EXPECT_EQ(bounce_of("Subject: no body").returned_headers, "Subject: no body\r\n");
    EXPECT_EQ(bounce_of("").returned_headers, "");
}

TEST(dsn, multi_line_reply_joined_and_controls_removed) {
    auto in = base_input();
    in.recipients.resize(1);
    in.recipients[0].diagnostic =
        "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
        "550-5.1.1 Please try\tdouble-checking\x07 the address\n"
        "550 5.1.1 https://support.example/?p=NoSuchUser x1\r\n";
    in.recipients[0].diagnostic += std::string("\0tail", 5);
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    expect_wire_clean(d->content);
    auto m = parse(d->content);
    ASSERT_EQ(m.parts.size(), 3u);
    auto groups = dsn_groups(m.parts[1].body);
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(field(groups[1], "Diagnostic-Code"),
              "smtp; 550-5.1.1 The email account that you tried to reach does not exist. "
              "550-5.1.1 Please try double-checking? the address "
              "550 5.1.1 https://support.example/?p=NoSuchUser x1 ?tail");
    // Folded (the field is longer than 78 octets), never a line of its own.
    EXPECT_NE(m.parts[1].body.find("\r\n "), std::string::npos);
    EXPECT_EQ(d->content.find('\x07'), std::string::npos);
    EXPECT_EQ(d->content.find('\0'), std::string::npos);
}

TEST(dsn, remote_text_cannot_inject_fields_or_boundaries) {
    auto in = base_input();
    in.recipients.resize(1);
    in.recipients[0].diagnostic = "550 no\r\nX-Injected: yes\r\n\r\n--fake-boundary\r\nContent-Type: text/html";
    in.recipients[0].remote_mta = "mx.dest.test\r\nX-Injected: yes";
    in.recipients[0].address = "bob@dest.test\r\nX-Injected: yes";
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    expect_wire_clean(d->content);
    EXPECT_EQ(d->content.find("\r\nX-Injected"), std::string::npos);
    EXPECT_EQ(d->content.find("\r\n--fake-boundary"), std::string::npos);
    auto m = parse(d->content);
    ASSERT_EQ(m.parts.size(), 3u);
    auto groups = dsn_groups(m.parts[1].body);
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(field(groups[1], "Final-Recipient"), "rfc822; bob@dest.test X-Injected: yes");
}

TEST(dsn, long_diagnostics_are_folded_within_998_octets) {
    auto in = base_input();
    in.recipients.resize(3);
    // Many short words: folded at spaces, lossless once unfolded.
    std::string words;
    for (int i = 0; i < 300; ++i) words += "word" + std::to_string(i) + " ";
    in.recipients[0].diagnostic = "550 " + words;
    // One run of 2500 octets with no space at all.
    in.recipients[1].diagnostic = "550 " + std::string(2500, 'x');
    in.recipients[1].diagnostic_is_smtp = true;
    // Longer than max_diagnostic_octets: cut.
    in.recipients[2].diagnostic = "550 " + std::string(3 * message::max_diagnostic_octets, 'y');
    in.recipients[2].address = "dave@dest.test";
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    expect_wire_clean(d->content);
    auto m = parse(d->content);
    ASSERT_EQ(m.parts.size(), 3u);
    auto groups = dsn_groups(m.parts[1].body);
    ASSERT_EQ(groups.size(), 4u);

    words.pop_back();
    EXPECT_EQ(field(groups[1], "Diagnostic-Code"), "smtp; 550 " + words);
    // Lines of the folded field stay near 78 octets when words allow.
    std::size_t longest = 0, pos = 0;
    const std::string& g = groups[1];
    while (pos < g.size()) {
        std::size_t e = g.find("\r\n", pos);
        longest = std::max(longest, e - pos);
        pos = e + 2;
    }
    EXPECT_LE(longest, 78u);

    std::string run = field(groups[2], "Diagnostic-Code");
    std::string letters = run;
    letters.erase(std::remove(letters.begin(), letters.end(), ' '), letters.end());
    EXPECT_EQ(letters, "smtp;550" + std::string(2500, 'x'));  // split, nothing lost

    std::string cut = field(groups[3], "Diagnostic-Code");
    EXPECT_LE(cut.size(), message::max_diagnostic_octets + 16);
    EXPECT_EQ(cut.substr(cut.size() - 4), " ...");
}

TEST(dsn, long_original_header_lines_are_cut) {
    auto in = base_input();
    std::string orig = "Subject: " + std::string(5000, 'z') + "\r\nX-Bad: a\x01" + "b\rc\r\n\r\nbody\r\n";
    in.original_content = orig;
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    expect_wire_clean(d->content);
    auto m = parse(d->content);
    ASSERT_EQ(m.parts.size(), 3u);
    EXPECT_EQ(m.parts[2].body, "Subject: " + std::string(998 - 9, 'z') + "\r\nX-Bad: a?b?c\r\n");
}

TEST(dsn, returned_headers_are_capped) {
    auto in = base_input();
    std::string orig;
    while (orig.size() < 2 * message::max_returned_header_octets) orig += "X-Filler: " + std::string(80, 'f') + "\r\n";
    orig += "\r\nbody\r\n";
    in.original_content = orig;
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    auto m = parse(d->content);
    ASSERT_EQ(m.parts.size(), 3u);
    EXPECT_LE(m.parts[2].body.size(), message::max_returned_header_octets);
    EXPECT_GT(m.parts[2].body.size(), message::max_returned_header_octets - 100);
    EXPECT_EQ(m.parts[2].body.substr(m.parts[2].body.size() - 2), "\r\n");  // whole lines only
}

TEST(dsn, boundary_collision_is_avoided) {
    auto in = base_input();
    auto first = message::make_dsn(in);
    ASSERT_TRUE(first);
    std::string b1 = parse(first->content).boundary;
    ASSERT_FALSE(b1.empty());

    // The original's headers contain the first-choice boundary, even at the start of a line
    // (as field names: a bare "--boundary" line is no header field and ends the section).
    std::string orig = "Subject: " + b1 + "\r\n--" + b1 + ": x\r\n--" + b1 + ".1--: y\r\n\r\nbody\r\n";
    in.original_content = orig;
    auto second = message::make_dsn(in);
    ASSERT_TRUE(second);
    expect_wire_clean(second->content);
    auto m = parse(second->content);
    EXPECT_NE(m.boundary, b1);
    EXPECT_EQ(m.boundary.find(b1 + ".1"), std::string::npos) << m.boundary;
    ASSERT_EQ(m.parts.size(), 3u);
    EXPECT_TRUE(m.closed);
    EXPECT_EQ(m.parts[2].body, orig.substr(0, orig.find("\r\n\r\n") + 2));
    EXPECT_EQ(count(second->content, m.boundary), 5u);

    // A diagnostic carrying the boundary is handled the same way.
    in.original_content = original;
    in.recipients[0].diagnostic = "550 --" + b1;
    auto third = message::make_dsn(in);
    ASSERT_TRUE(third);
    EXPECT_NE(parse(third->content).boundary, b1);
    EXPECT_EQ(parse(third->content).parts.size(), 3u);
}

TEST(dsn, delayed_only_is_a_warning) {
    auto in = base_input();
    in.now = in.arrival + 5 * 3600 + 60;
    for (auto& r : in.recipients) {
        r.action = "delayed";
        r.status = "4.4.1";
    }
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    expect_wire_clean(d->content);
    auto m = parse(d->content);
    EXPECT_EQ(field(m.headers, "Subject"), "Delayed Mail (still being retried)");
    ASSERT_EQ(m.parts.size(), 3u);
    EXPECT_NE(m.parts[0].body.find("THIS IS A WARNING ONLY"), std::string::npos);
    EXPECT_NE(m.parts[0].body.find("could not be delivered for 5 hour(s)"), std::string::npos);
    EXPECT_EQ(m.parts[0].body.find("I'm sorry"), std::string::npos);
    EXPECT_EQ(field(m.parts[2].headers, "Content-Description"), "Delayed Message Headers");
    auto groups = dsn_groups(m.parts[1].body);
    ASSERT_EQ(groups.size(), 3u);
    EXPECT_EQ(field(groups[1], "Action"), "delayed");
    EXPECT_EQ(field(groups[1], "Status"), "4.4.1");
    EXPECT_EQ(field(groups[2], "Action"), "delayed");
}

// Found by fuzz/dsn: "now - arrival" overflowed (UB) for an arrival time read from a damaged
// queue file; a clock before the arrival just says "yet".
TEST(dsn, warning_with_arrival_after_now_or_extreme_times) {
    auto in = base_input();
    for (auto& r : in.recipients) r.action = "delayed";
    for (auto [arrival, now] : {std::pair<std::int64_t, std::int64_t>{in.now + 7200, in.now},
                                {1, INT64_MIN}, {INT64_MAX, INT64_MIN}}) {
        in.arrival = arrival;
        in.now = now;
        auto d = message::make_dsn(in);
        ASSERT_TRUE(d);
        EXPECT_NE(d->content.find("could not be delivered yet"), std::string::npos);
    }
}

TEST(dsn, mixed_failed_and_delayed_is_a_bounce) {
    auto in = base_input();
    in.recipients[1].action = "delayed";
    in.recipients[1].status = "4.4.1";
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    auto m = parse(d->content);
    EXPECT_EQ(field(m.headers, "Subject"), "Undelivered Mail Returned to Sender");
    ASSERT_EQ(m.parts.size(), 3u);
    const std::string& text = m.parts[0].body;
    std::size_t failed = text.find("<bob@dest.test>");
    std::size_t retried = text.find("still being retried");
    std::size_t delayed = text.find("<carol@dest.test>");
    ASSERT_NE(failed, std::string::npos);
    ASSERT_NE(retried, std::string::npos);
    ASSERT_NE(delayed, std::string::npos);
    EXPECT_LT(failed, retried);
    EXPECT_LT(retried, delayed);
    auto groups = dsn_groups(m.parts[1].body);
    ASSERT_EQ(groups.size(), 3u);
    EXPECT_EQ(field(groups[1], "Action"), "failed");
    EXPECT_EQ(field(groups[2], "Action"), "delayed");
}

TEST(dsn, message_ids_differ_between_notifications) {
    auto in = base_input();
    auto a = message::make_dsn(in);
    in.recipients[0].action = in.recipients[1].action = "delayed";
    auto b = message::make_dsn(in);
    in.now += 3600;
    auto c = message::make_dsn(in);
    ASSERT_TRUE(a && b && c);
    std::string ia = field(parse(a->content).headers, "Message-ID");
    std::string ib = field(parse(b->content).headers, "Message-ID");
    std::string ic = field(parse(c->content).headers, "Message-ID");
    EXPECT_NE(ia, ib);
    EXPECT_NE(ib, ic);
}

TEST(dsn, malformed_status_and_unknown_action) {
    auto in = base_input();
    in.recipients.resize(1);
    in.recipients[0].status = "550";
    in.recipients[0].action = "bounced";
    in.recipients[0].diagnostic = "";
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    auto m = parse(d->content);
    ASSERT_EQ(m.parts.size(), 3u);
    auto groups = dsn_groups(m.parts[1].body);
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(field(groups[1], "Action"), "failed");
    EXPECT_EQ(field(groups[1], "Status"), "5.0.0");
    EXPECT_EQ(field(groups[1], "Diagnostic-Code"), "<absent>");
    EXPECT_NE(m.parts[0].body.find("<bob@dest.test>: delivery failed (status 5.0.0)"), std::string::npos);

    in.recipients[0].action = "Delayed";
    in.recipients[0].status = "2.0.0";  // not a failure class
    m = parse(message::make_dsn(in)->content);
    groups = dsn_groups(m.parts[1].body);
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(field(groups[1], "Action"), "delayed");
    EXPECT_EQ(field(groups[1], "Status"), "4.0.0");
}

TEST(dsn, eight_bit_in_an_ascii_original_is_replaced) {
    auto in = base_input();
    in.original_content = "Subject: Gr\xc3\xbc\xc3\x9f" "e \xff\r\n\r\nbody\r\n";
    in.recipients[0].diagnostic = "550 Benutzer unbekannt \xc3\xbc";
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->smtputf8);
    for (char c : d->content) ASSERT_LT(static_cast<unsigned char>(c), 0x80);
    auto m = parse(d->content);
    ASSERT_EQ(m.parts.size(), 3u);
    EXPECT_EQ(m.parts[2].body, "Subject: Gr??e ?\r\n");
}

TEST(dsn, smtputf8_uses_global_types) {
    auto in = base_input();
    in.smtputf8 = true;
    in.original_sender = "j\xc3\xbcrgen@origin.test";
    in.recipients.resize(1);
    in.recipients[0].address = "\xe7\x94\xa8\xe6\x88\xb7@dest.test";  // 用户
    in.recipients[0].diagnostic = "550 5.1.1 unknown \xc3\x9c\x07";
    in.original_content = "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\nX-Bad: \xff\r\n\r\nbody\r\n";
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->smtputf8);
    EXPECT_TRUE(d->eight_bit);
    EXPECT_EQ(d->recipient, in.original_sender);
    expect_wire_clean(d->content);
    auto m = parse(d->content);
    EXPECT_EQ(field(m.headers, "To"), in.original_sender);
    EXPECT_NE(field(m.headers, "Content-Type").find("report-type=global-delivery-status;"), std::string::npos);
    ASSERT_EQ(m.parts.size(), 3u);
    EXPECT_EQ(field(m.parts[0].headers, "Content-Type"), "text/plain; charset=utf-8");
    EXPECT_EQ(field(m.parts[1].headers, "Content-Type"), "message/global-delivery-status");
    EXPECT_EQ(field(m.parts[2].headers, "Content-Type"), "message/global-headers");
    EXPECT_EQ(field(m.parts[1].headers, "Content-Transfer-Encoding"), "8bit");
    auto groups = dsn_groups(m.parts[1].body);
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(field(groups[0], "X-Postern-Sender"), "utf-8; j\xc3\xbcrgen@origin.test");
    EXPECT_EQ(field(groups[1], "Final-Recipient"), "utf-8; \xe7\x94\xa8\xe6\x88\xb7@dest.test");
    EXPECT_EQ(field(groups[1], "Diagnostic-Code"), "smtp; 550 5.1.1 unknown \xc3\x9c?");
    EXPECT_EQ(m.parts[2].body, "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\nX-Bad: ?\r\n");  // ill-formed UTF-8 replaced
}

TEST(dsn, ascii_envelope_with_non_ascii_address_switches_to_global) {
    auto in = base_input();
    in.recipients.resize(1);
    in.recipients[0].address = "r\xc3\xa9mi@dest.test";
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->smtputf8);
    auto m = parse(d->content);
    ASSERT_EQ(m.parts.size(), 3u);
    EXPECT_EQ(field(m.parts[1].headers, "Content-Type"), "message/global-delivery-status");
    EXPECT_EQ(field(dsn_groups(m.parts[1].body)[1], "Final-Recipient"), "utf-8; r\xc3\xa9mi@dest.test");
}

// The To: field of a bounce to alice@bücher.test names the domain with A-labels: a U-label
// there would make the header section need SMTPUTF8, which the envelope (A-labels too) does
// not, and a sender's server without it could not take the report. A UTF-8 local part has no
// ASCII form and stays as it is (the envelope needs SMTPUTF8 then anyway).
TEST(dsn, to_field_names_an_idn_sender_domain_with_a_labels) {
    auto in = base_input();
    in.smtputf8 = true;
    in.original_sender = "alice@b\xc3\xbc" "cher.test";
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    auto m = parse(d->content);
    EXPECT_EQ(field(m.headers, "To"), "alice@xn--bcher-kva.test");
    EXPECT_EQ(d->recipient, in.original_sender);  // the envelope's form is the delivery's to choose
    const std::string_view hs(d->content.data(), d->content.find("\r\n\r\n"));
    EXPECT_TRUE(std::all_of(hs.begin(), hs.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
        << hs;

    in.original_sender = "j\xc3\xbcrgen@b\xc3\xbc" "cher.test";
    d = message::make_dsn(in);
    ASSERT_TRUE(d);
    EXPECT_EQ(field(parse(d->content).headers, "To"), in.original_sender);
}

TEST(dsn, smtputf8_flag_without_non_ascii_content_needs_no_smtputf8) {
    auto in = base_input();
    in.smtputf8 = true;
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->smtputf8);  // global types, but every octet is ASCII
    EXPECT_FALSE(d->eight_bit);
    EXPECT_NE(d->content.find("message/global-delivery-status"), std::string::npos);
}

TEST(dsn, odd_hostnames_and_queue_ids_stay_syntactic) {
    auto in = base_input();
    in.reporting_mta = "..mx..exa mple.test.\r\n";
    in.queue_id = "4F/2A <x>";
    auto d = message::make_dsn(in);
    ASSERT_TRUE(d);
    expect_wire_clean(d->content);
    auto m = parse(d->content);
    EXPECT_EQ(field(m.headers, "From"), "MAILER-DAEMON@mx.example.test (Mail Delivery System)");
    EXPECT_EQ(field(m.headers, "Message-ID").find(' '), std::string::npos);
    ASSERT_EQ(m.parts.size(), 3u);
    EXPECT_EQ(field(dsn_groups(m.parts[1].body)[0], "X-Postern-Queue-ID"), "4F2Ax");

    in.reporting_mta = "";
    in.queue_id = "";
    d = message::make_dsn(in);
    ASSERT_TRUE(d);
    m = parse(d->content);
    EXPECT_EQ(field(m.headers, "From"), "MAILER-DAEMON@localhost (Mail Delivery System)");
    ASSERT_EQ(m.parts.size(), 3u);
    EXPECT_EQ(field(dsn_groups(m.parts[1].body)[0], "X-Postern-Queue-ID"), "<absent>");
}
