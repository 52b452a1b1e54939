// smtp/data_decoder.cpp - decode a DATA body: end-of-data detection, dot-unstuffing, limits.
// RFC 5321 4.1.1.4, 4.5.2, 4.5.3.1.6, 4.5.3.1.7. See data_decoder.hpp for the smuggling
// defence: only CR LF "." CR LF ends the data; bare CR and bare LF become CR LF content.
// Content runs between line ends are appended in bulk; no per-byte allocation.
#include "smtp/data_decoder.hpp"

namespace postern::smtp {

void data_decoder::append(std::string_view run, std::string& body) {
    line_len_ += run.size();
    size_ += run.size();
    if (line_len_ > max_line) line_too_long_ = true;  // RFC 5321 4.5.3.1.6
    if (size_ > max_size_) too_big_ = true;           // RFC 1870 / 5321 4.5.3.1.7
    // Once the message is refused its content is useless: memory stays bounded.
    if (!too_big_ && !line_too_long_) body.append(run);
}

void data_decoder::append_eol(std::string& body) {
    line_len_ = 0;
    size_ += 2;
    if (size_ > max_size_) too_big_ = true;
    if (!too_big_ && !line_too_long_) body.append("\r\n", 2);
}

std::size_t data_decoder::consume(std::string_view in, std::string& body) {
    const char* const data = in.data();
    const std::size_t n = in.size();
    std::size_t i = 0;
    while (i < n && !done_) {
        const char c = data[i];
        switch (pending_) {
            case pending::cr:  // a CR was seen; only CR LF is a line end
                pending_ = pending::none;
                append_eol(body);
                if (c == '\n') {
                    ++i;
                    line_start_ = true;
                } else {
                    line_start_ = false;  // bare CR: content line break, not a line start
                }
                continue;
            case pending::dot:  // "." at the start of a line
                if (c == '\r') {
                    pending_ = pending::dot_cr;
                    ++i;
                } else if (c == '\n') {  // ".\n": bare LF, so a "." content line
                    pending_ = pending::none;
                    append(".", body);
                    append_eol(body);
                    line_start_ = false;
                    ++i;
                } else {  // RFC 5321 4.5.2: a leading "." before other text is removed
                    pending_ = pending::none;
                    line_start_ = false;
                }
                continue;
            case pending::dot_cr:  // CR LF "." CR seen
                pending_ = pending::none;
                if (c == '\n') {  // RFC 5321 4.1.1.4: CR LF "." CR LF ends the data
                    done_ = true;
                    ++i;
                } else {  // ".\r" + other: bare CR, so a "." content line
                    append(".", body);
                    append_eol(body);
                    line_start_ = false;
                }
                continue;
            case pending::none:
                break;
        }
        if (line_start_ && c == '.') {
            pending_ = pending::dot;
            ++i;
            continue;
        }
        // The run of content up to the next CR or LF.
        std::size_t j = i;
        while (j < n && data[j] != '\r' && data[j] != '\n') ++j;
        if (j > i) {
            append(std::string_view(data + i, j - i), body);
            line_start_ = false;
            i = j;
        }
        if (i == n) break;
        if (data[i] == '\r') {
            pending_ = pending::cr;
        } else {  // bare LF: normalised to CR LF, not a line start
            append_eol(body);
            line_start_ = false;
        }
        ++i;
    }
    return i;
}

std::size_t normalized_size(std::string_view body) {
    std::size_t n = body.size();
    for (std::size_t i = 0; i < body.size(); ++i) {
        const char c = body[i];
        if (c == '\r' && i + 1 < body.size() && body[i + 1] == '\n') ++i;
        else if (c == '\r' || c == '\n') ++n;
    }
    return n;
}

normalize_result normalize_line_endings(std::string& body, std::uint64_t max_size) {
    bool bare = false;
    std::size_t line = 0;
    for (std::size_t i = 0; i < body.size(); ++i) {
        const char c = body[i];
        if (c == '\r' && i + 1 < body.size() && body[i + 1] == '\n') {
            ++i;
            line = 0;
        } else if (c == '\r' || c == '\n') {
            bare = true;
            line = 0;
        } else if (++line > data_decoder::max_line) {
            return normalize_result::line_too_long;
        }
    }
    if (bare) {
        std::string out;
        out.reserve(body.size() + body.size() / 64);
        for (std::size_t i = 0; i < body.size(); ++i) {
            const char c = body[i];
            if (c == '\r' && i + 1 < body.size() && body[i + 1] == '\n') {
                out += "\r\n";
                ++i;
            } else if (c == '\r' || c == '\n') {
                out += "\r\n";
            } else {
                out += c;
            }
        }
        body.swap(out);
    }
    return body.size() > max_size ? normalize_result::too_big : normalize_result::ok;
}

}  // namespace postern::smtp

