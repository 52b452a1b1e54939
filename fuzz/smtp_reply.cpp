// fuzz/smtp_reply.cpp - the client's reply parser (smtp::reply_parser, src/smtp/reply_parser.cpp)
// fed arbitrary server output.
// Input: two octets choosing max_line and max_lines, two octets of split offset, then the bytes.
// Invariants, beyond no crash / UB:
// - every reply has a code 200..599 and 1..max_lines lines of text without CR, LF or other
//   controls (a TAB may stay); an enhanced code, when split off, is "class.subject.detail" of
//   the reply's class (RFC 3463 2);
// - an error is sticky: the parser never yields a reply after one;
// - memory stays bounded: what is buffered after a "need more" is below max_line octets of
//   unfinished line plus the lines of one unfinished reply;
// - round trip: parsing reply::wire() of a parsed reply gives the same reply;
// - the bytes fed in one piece or split at a fuzz-chosen offset give the same replies.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz.hpp"
#include "smtp/client_session.hpp"

namespace postern::fuzz {
namespace {

using namespace postern::smtp;

std::string render(const reply& r) {
    std::string s = std::to_string(r.code) + "|" + r.enhanced;
    for (const auto& l : r.lines) s += "|" + l;
    return s;
}

bool valid_enhanced(std::string_view e, int code) {
    if (e.empty()) return true;
    const int cls = code / 100;
    return (cls == 2 || cls == 4 || cls == 5) && valid_status_code(e, std::string(1, static_cast<char>('0' + cls)));
}

void check_reply(const reply& r, std::size_t max_lines) {
    FUZZ_CHECK(r.code >= 200 && r.code <= 599, "code " + std::to_string(r.code));
    FUZZ_CHECK(!r.lines.empty() && r.lines.size() <= max_lines, "line count " + std::to_string(r.lines.size()));
    for (const auto& l : r.lines)
        for (unsigned char c : l) FUZZ_CHECK((c >= 0x20 || c == '\t') && c != 0x7f, "control in text: " + show(l));
    FUZZ_CHECK(valid_enhanced(r.enhanced, r.code), "enhanced code " + show(r.enhanced));

    // Round trip through the wire form, with limits that fit it.
    const std::string wire = r.wire();
    reply_parser again(wire.size() + 8, r.lines.size() + 1);
    again.feed(wire);
    auto r2 = again.next();
    FUZZ_CHECK(r2 && r2->ok(), "wire form does not parse: " + show(wire));
    FUZZ_CHECK(render(r2->value()) == render(r), "round trip: " + show(render(r)) + " -> " + show(render(r2->value())));
    FUZZ_CHECK(!again.next() && again.buffered() == 0, "round trip leaves input: " + show(wire));
}

std::vector<std::string> parse(std::string_view stream, std::size_t cut, std::size_t max_line, std::size_t max_lines) {
    reply_parser p(max_line, max_lines);
    std::vector<std::string> out;
    bool failed = false;
    for (const std::string_view piece : {stream.substr(0, cut), stream.substr(cut)}) {
        p.feed(piece);
        for (;;) {
            auto r = p.next();
            if (!r) {
                FUZZ_CHECK(!failed, "nothing after an error");
                FUZZ_CHECK(p.buffered() <= (std::max<std::size_t>(max_line, 6) + 8) * (max_lines + 1),
                           "buffered " + std::to_string(p.buffered()));
                break;
            }
            if (!r->ok()) {
                FUZZ_CHECK(!r->error_message().empty(), "error without a message");
                if (!failed) out.push_back("error: " + r->error_message());
                failed = true;
                break;  // sticky: asking again gives the error again
            }
            FUZZ_CHECK(!failed, "a reply after an error");
            check_reply(r->value(), std::max<std::size_t>(max_lines, 1));
            out.push_back(render(r->value()));
        }
    }
    if (failed) {
        auto r = p.next();
        FUZZ_CHECK(r && !r->ok(), "error not sticky");
    }
    return out;
}

}  // namespace
}  // namespace postern::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace postern::fuzz;
    input in(data, size);
    static const std::size_t line_limits[] = {6, 16, 512, 2048};
    static const std::size_t count_limits[] = {1, 3, 20, 200};
    const std::uint8_t limits = in.byte();
    const std::size_t max_line = line_limits[limits & 3];
    const std::size_t max_lines = count_limits[(limits >> 2) & 3];
    const std::size_t split = in.u16();
    const std::string_view stream = in.rest();
    const auto whole = parse(stream, stream.size(), max_line, max_lines);
    const auto two = parse(stream, split % (stream.size() + 1), max_line, max_lines);
    FUZZ_CHECK(whole == two, "split at " + std::to_string(split % (stream.size() + 1)) + " differs: " + show(stream));
    return 0;
}
