// fuzz/headers.cpp - the header-section helpers (src/message/headers.hpp: header_section,
// count_received, hop_count_exceeded) and the Received: header we prepend
// (src/message/received.hpp received_header).
// Input: a flags octet, then (modes 0, 1) a message, or (mode 2) Received: facts as
// length-prefixed strings followed by a message.
// Invariants, beyond no crash / UB:
// - header_section is the prefix of the content up to the first line (LF-terminated, CR part
//   of the line) that is neither a header field (printable US-ASCII name, no ':', [WSP] ":")
//   nor a continuation (SP or HTAB first, not the first line): the empty line, or the first
//   body line when there is none; computed again here line by line; count_received equals an
//   independent count of "Received" [WSP] ":" field lines in it; hop_count_exceeded(c, k) ==
//   count > k;
// - received_header: CRLF lines of at most 998 octets (RFC 5322 2.1.1), the first a
//   "Received:" field, the others folded continuations; no control characters, and 7-bit
//   unless the message is SMTPUTF8; the client's HELO and name one token each of letters,
//   digits, "-._:[]" and '?' (8-bit too with SMTPUTF8), so no forged clauses; prepended to a
//   message it adds exactly one to count_received and leaves the rest of the header section
//   intact (unless the message starts with SP or HTAB: that line continues our field).
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz.hpp"
#include "message/headers.hpp"
#include "message/received.hpp"

namespace postern::fuzz {
namespace {

using namespace postern::message;

// A header field line: what precedes its first ':', less trailing WSP, is a non-empty run of
// octets 33..126 (none is ':', being before the first one).
bool field_line(std::string_view l) {
    const std::size_t colon = l.find(':');
    if (colon == std::string_view::npos) return false;
    std::string_view name = l.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (name.empty()) return false;
    for (unsigned char ch : name)
        if (ch < 33 || ch > 126) return false;
    return true;
}

// Line starts are 0 and every octet after a '\n'; the section ends at the first line there
// that is neither a field line nor (after the first line) a continuation.
std::string_view reference_section(std::string_view c) {
    for (std::size_t p = 0; p < c.size();) {
        const std::size_t e = c.find('\n', p);
        const std::string_view l = c.substr(p, e == std::string_view::npos ? std::string_view::npos : e - p);
        if (!field_line(l) && !(p > 0 && (c[p] == ' ' || c[p] == '\t'))) return c.substr(0, p);
        if (e == std::string_view::npos) break;
        p = e + 1;
    }
    return c;
}

bool received_line(std::string_view l) {
    if (l.size() < 9) return false;
    for (std::size_t i = 0; i < 8; ++i)
        if (static_cast<char>(l[i] | 0x20) != "received"[i]) return false;
    const std::size_t k = l.find_first_not_of(" \t", 8);
    return k != std::string_view::npos && l[k] == ':';
}

std::size_t reference_count(std::string_view c) {
    const std::string_view hs = reference_section(c);
    std::size_t n = 0;
    for (std::size_t p = 0; p < hs.size();) {
        const std::size_t e = hs.find('\n', p);
        n += received_line(hs.substr(p, e == std::string_view::npos ? std::string_view::npos : e - p));
        if (e == std::string_view::npos) break;
        p = e + 1;
    }
    return n;
}

void check_content(std::string_view c, std::size_t limit) {
    const std::string_view hs = header_section(c);
    FUZZ_CHECK(hs.data() == c.data() && hs.size() == reference_section(c).size(),
               "header_section " + std::to_string(hs.size()) + ": " + show(c));
    const std::size_t n = count_received(c);
    FUZZ_CHECK(n == reference_count(c), "count_received " + std::to_string(n) + ": " + show(c));
    FUZZ_CHECK(hop_count_exceeded(c, limit) == (n > limit), "hop_count_exceeded");
}

void check_received(input& in, bool tls) {
    // What the server hands over: the EHLO argument (any octets but CR, LF and NUL, as long
    // as a command line allows); the rest is ours or the socket's.
    const std::string helo(in.string(2048));
    const std::string name(in.string(255)), ip(in.string(45)), by(in.string(255)), id(in.string(32)),
        rcpt(in.string(256));
    const std::uint8_t f = in.byte();
    postern::smtp::tls_facts facts{"TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256};
    received_facts rf;
    rf.helo = helo;
    rf.client_name = name;
    rf.client_ip = ip;
    rf.by = by;
    rf.id = id;
    rf.esmtp = f & 1;
    rf.smtputf8 = f & 2;
    rf.tls = tls ? &facts : nullptr;
    rf.for_rcpt = rcpt;
    rf.unix_time = static_cast<long long>(in.u64() & 0xFFFFFFFFF);
    // Our host name, the queue id and the IP are ASCII; the recipient passed parse_path
    // (8-bit only with SMTPUTF8). Anything else never comes from the server: out of scope.
    for (const std::string* s : {&ip, &by, &id, &rcpt})
        for (unsigned char ch : *s)
            if (ch < 0x20 || ch == 0x7f || (ch >= 0x80 && (s != &rcpt || !rf.smtputf8))) return;
    const std::string h = received_header(rf);
    FUZZ_CHECK(crlf_only(h, 998), "Received: line ends or a line over 998 octets: " + show(h));
    for (unsigned char ch : h)
        FUZZ_CHECK(ch == '\t' || ch == '\r' || ch == '\n' || (ch >= 0x20 && ch != 0x7f), "control octet: " + show(h));
    if (!rf.smtputf8)
        for (unsigned char ch : h) FUZZ_CHECK(ch < 0x80, "8-bit octet in a Received: of an ASCII message: " + show(h));
    FUZZ_CHECK(h.substr(0, 15) == "Received: from " && h.size() >= 2 && h.substr(h.size() - 2) == "\r\n",
               "Received: form " + show(h));
    // The client's names are one token each, of host-name characters (Postfix): the line
    // starts "Received: from HELO (NAME [", so no client text can add clauses of its own.
    const auto name_char = [&](unsigned char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               std::string_view("-._:[]?").find(static_cast<char>(ch)) != std::string_view::npos ||
               (ch >= 0x80 && rf.smtputf8);
    };
    const std::size_t helo_end = h.find(' ', 15), name_end = h.find(' ', helo_end + 2);
    FUZZ_CHECK(helo_end != std::string::npos && h.compare(helo_end, 2, " (") == 0 && name_end != std::string::npos &&
                   h.compare(name_end, 2, " [") == 0,
               "Received: from clause " + show(h));
    for (std::size_t i = 15; i < name_end; ++i)
        FUZZ_CHECK(i == helo_end || i == helo_end + 1 || name_char(static_cast<unsigned char>(h[i])),
                   "Received: client text not a name: " + show(h));
    for (std::size_t p = h.find("\r\n"); p + 2 < h.size(); p = h.find("\r\n", p + 2))
        FUZZ_CHECK(h[p + 2] == '\t' || h[p + 2] == ' ', "Received: continuation " + show(h));
    const std::string_view rest = in.rest();
    const std::string msg = h + std::string(rest);
    FUZZ_CHECK(header_section(msg).substr(0, h.size()) == h, "header section after prepending: " + show(msg));
    // A first line starting with SP or HTAB continues our Received: field (RFC 5322 2.2.3), as
    // it would at the next hop; it was no header of the message alone.
    if (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t')) return;
    FUZZ_CHECK(count_received(msg) == 1 + count_received(rest), "Received: count: " + show(msg));
    FUZZ_CHECK(header_section(msg) == h + std::string(header_section(rest)), "header section after prepending");
}

}  // namespace
}  // namespace postern::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace postern::fuzz;
    input in(data, size);
    const std::uint8_t flags = in.byte();
    if ((flags & 3) == 2) {
        check_received(in, flags & 4);
        return 0;
    }
    check_content(in.rest(), flags >> 2);
    return 0;
}
