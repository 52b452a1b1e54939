// smtp/reply.cpp - build SMTP replies and render them in wire form.
// RFC 5321 4.2 (reply lines, multi-line continuation), RFC 2034 / 3463 (enhanced status codes).
#include "smtp/reply.hpp"

#include <cassert>

namespace postern::smtp {
namespace {

// Reply text set directly in `lines` must not break the framing either: CR and LF are dropped.
void append_text(std::string& out, const std::string& text) {
    if (text.find_first_of("\r\n") == std::string::npos) {
        out += text;
        return;
    }
    for (char c : text)
        if (c != '\r' && c != '\n') out += c;
}

}  // namespace

std::string reply::wire() const {
    assert(code >= 200 && code <= 599);
    const std::string code_text = std::to_string(code);
    std::string out;
    std::size_t need = 0;
    for (const auto& l : lines) need += l.size() + enhanced.size() + 8;
    out.reserve(need + 8);
    // An empty `lines` still produces one (text-less) reply line: a reply is never empty.
    const std::size_t n = lines.empty() ? 1 : lines.size();
    for (std::size_t i = 0; i < n; ++i) {
        out += code_text;
        out += (i + 1 < n) ? '-' : ' ';  // RFC 5321 4.2.1: "250-" continues, "250 " ends
        if (!enhanced.empty()) {
            out += enhanced;  // RFC 2034 4: the enhanced code prefixes the text of every line
            if (!lines.empty() && !lines[i].empty()) out += ' ';
        }
        if (!lines.empty()) append_text(out, lines[i]);
        out += "\r\n";
    }
    return out;
}

reply make_reply(int code, std::string enhanced, std::string text) {
    reply r;
    r.code = code;
    r.enhanced = std::move(enhanced);
    // Text never carries raw CR/LF onto the wire (reply injection): a '\n' starts a new
    // reply line, a '\r' is dropped.
    std::string line;
    for (char c : text) {
        if (c == '\n') {
            r.lines.push_back(std::move(line));
            line.clear();
        } else if (c != '\r') {
            line += c;
        }
    }
    r.lines.push_back(std::move(line));
    return r;
}

}  // namespace postern::smtp
