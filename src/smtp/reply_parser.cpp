// smtp/reply_parser.cpp - incremental, bounded parser of SMTP replies (the client's input).
// RFC 5321 4.2 (reply lines, "250-" continuation, "250 " last line), 4.5.3.1.5 (reply line
// length), RFC 2034 / 3463 (enhanced status codes).
//
// Security notes:
// - Memory is bounded: a line is refused as soon as max_line octets have arrived without its
//   LF, and a reply as soon as it has more than max_lines lines. Errors are sticky: once
//   the framing is lost, nothing later in the stream is trusted.
// - A bare LF ends a line too (the CR before it is optional); other control characters in
//   reply text are replaced by '?', like Postfix's printable(), so a reply can be logged
//   and quoted in a bounce without carrying terminal escapes or stray CRs.
#include <cstring>
#include <utility>

#include "smtp/client_session.hpp"

namespace postern::smtp {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// RFC 3463 2: status-code = class "." subject "." detail; class is 2, 4 or 5, subject and
// detail 1 to 3 digits. Returns the length of the code at the start of `text` when it is
// followed by a space or the end of the line and its class matches `reply_class`, else 0.
std::size_t enhanced_length(std::string_view text, int reply_class) {
    if (text.size() < 5 || text[0] != static_cast<char>('0' + reply_class) || text[1] != '.')
        return 0;
    if (reply_class != 2 && reply_class != 4 && reply_class != 5) return 0;
    std::size_t i = 2;
    for (int part = 0; part < 2; ++part) {
        const std::size_t start = i;
        while (i < text.size() && is_digit(text[i]) && i - start < 4) ++i;
        if (i == start || i - start > 3) return 0;
        if (part == 0) {
            if (i >= text.size() || text[i] != '.') return 0;
            ++i;
        }
    }
    if (i < text.size() && text[i] != ' ') return 0;
    return i;
}

// RFC 2034 4: the enhanced code prefixes the text of each line. It is taken from the first
// line that carries one, and stripped from every line that starts with that same code.
void split_enhanced(reply& r) {
    const int reply_class = r.code / 100;
    for (const auto& l : r.lines) {
        if (std::size_t n = enhanced_length(l, reply_class)) {
            r.enhanced = l.substr(0, n);
            break;
        }
    }
    if (r.enhanced.empty()) return;
    for (auto& l : r.lines) {
        if (l.compare(0, r.enhanced.size(), r.enhanced) != 0) continue;
        if (l.size() == r.enhanced.size()) {
            l.clear();
        } else if (l[r.enhanced.size()] == ' ') {
            l.erase(0, r.enhanced.size() + 1);
        }
    }
}

std::string printable(std::string_view text) {
    std::string s(text);
    for (char& c : s) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && u != '\t') || u == 0x7f) c = '?';
    }
    return s;
}

}  // namespace

reply_parser::reply_parser(std::size_t max_line, std::size_t max_lines)
    : max_line_(max_line < 6 ? 6 : max_line), max_lines_(max_lines < 1 ? 1 : max_lines) {}

void reply_parser::feed(std::string_view bytes) {
    if (error_) return;  // nothing after a framing error is read
    // Give consumed space back before appending, so the buffer holds at most one unparsed
    // tail plus what the driver read last.
    if (pos_ == buf_.size()) {
        buf_.clear();
        pos_ = scan_ = 0;
    } else if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
        buf_.erase(0, pos_);
        scan_ -= pos_;
        pos_ = 0;
    }
    buf_.append(bytes);
}

std::optional<result<reply>> reply_parser::next() {
    if (error_) return result<reply>(error{*error_});
    auto fail = [this](std::string why) -> std::optional<result<reply>> {
        error_ = why;
        lines_.clear();
        return result<reply>(error{std::move(why)});
    };
    for (;;) {
        const char* base = buf_.data();
        const void* lf = scan_ < buf_.size()
                             ? std::memchr(base + scan_, '\n', buf_.size() - scan_)
                             : nullptr;
        if (!lf) {
            scan_ = buf_.size();
            // No LF yet and already max_line octets: with its LF the line would be longer
            // than the limit (RFC 5321 4.5.3.1.5). Refuse now rather than buffer more.
            if (buf_.size() - pos_ >= max_line_) return fail("reply line too long");
            return std::nullopt;
        }
        const std::size_t nl = static_cast<std::size_t>(static_cast<const char*>(lf) - base);
        const std::size_t start = pos_;
        pos_ = scan_ = nl + 1;
        if (nl + 1 - start > max_line_) return fail("reply line too long");
        std::string_view line(base + start, nl - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // bare LF accepted

        // RFC 5321 4.2: Reply-code [ SP textstring ] CRLF, or Reply-code "-" for all but the
        // last line; the first digit is 2 to 5. A bare "250" (no text) is a last line.
        if (line.size() < 3 || line[0] < '2' || line[0] > '5' || !is_digit(line[1]) ||
            !is_digit(line[2]))
            return fail("malformed reply line");
        const bool last = line.size() == 3 || line[3] == ' ';
        if (!last && line[3] != '-') return fail("malformed reply line");
        const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (lines_.empty()) {
            code_ = code;
        } else if (code != code_) {  // RFC 5321 4.2.1: every line carries the same code
            return fail("reply lines with different codes");
        }
        if (lines_.size() >= max_lines_) return fail("reply has too many lines");
        lines_.push_back(printable(line.size() > 4 ? line.substr(4) : std::string_view()));
        if (!last) continue;

        reply r;
        r.code = code_;
        r.lines = std::move(lines_);
        lines_.clear();
        split_enhanced(r);
        return result<reply>(std::move(r));
    }
}

void reply_parser::clear() {
    buf_.clear();
    pos_ = scan_ = 0;
    lines_.clear();
    code_ = 0;
    error_.reset();
}

std::size_t reply_parser::buffered() const {
    // Bytes of an unfinished reply count as buffered, whether or not their lines are complete.
    std::size_t n = buf_.size() - pos_;
    for (const auto& l : lines_) n += l.size() + 6;
    return n;
}

}  // namespace postern::smtp
