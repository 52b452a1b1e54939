// message/seven_bit.cpp - 8-bit MIME content made 7-bit (see the header).
#include "message/seven_bit.hpp"

#include <algorithm>
#include <cstddef>

#include "message/headers.hpp"
#include "smtp/address.hpp"
#include "smtp/text.hpp"

namespace postern::message {
namespace {

using sv = std::string_view;
using smtp::iequals;
using smtp::is_ascii;

bool wsp(char c) { return c == ' ' || c == '\t'; }

// RFC 3629: well-formed UTF-8 (smtp::utf8_sequence: no overlong forms, surrogates or code
// points past U+10FFFF).
bool valid_utf8(sv s) {
    for (std::size_t i = 0; i < s.size();) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        const std::size_t n = smtp::utf8_sequence(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(sv s) {
    std::string out(s);
    for (char& c : out) c = lower(c);
    return out;
}

sv trim(sv s) {
    while (!s.empty() && (wsp(s.front()) || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
    while (!s.empty() && (wsp(s.back()) || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
    return s;
}

// The next line of `s` at `pos`, with its LF (none on a last line without one); advances pos.
sv next_line(sv s, std::size_t& pos) {
    const std::size_t lf = s.find('\n', pos);
    const std::size_t end = lf == sv::npos ? s.size() : lf + 1;
    const sv line = s.substr(pos, end - pos);
    pos = end;
    return line;
}

// A line without its ending (LF, CRLF). A CR without LF after it is data (a last line).
sv text_of(sv line) {
    if (line.empty() || line.back() != '\n') return line;
    line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

// The field name of a header line ("Content-Type" of "Content-Type : x"), or empty for a
// continuation line or one without a colon.
sv field_name(sv line) {
    if (line.empty() || wsp(line.front())) return {};
    const std::size_t colon = line.find(':');
    if (colon == sv::npos) return {};
    sv name = line.substr(0, colon);
    while (!name.empty() && wsp(name.back())) name.remove_suffix(1);
    return name;
}

// The unfolded value of the first field called `name` in header section `h`.
std::optional<std::string> field(sv h, sv name) {
    std::optional<std::string> value;
    for (std::size_t pos = 0; pos < h.size();) {
        const sv line = next_line(h, pos);
        if (!line.empty() && wsp(line.front())) {
            if (value) *value += text_of(line);
            continue;
        }
        if (value) return value;
        if (iequals(field_name(line), name)) value = std::string(text_of(line).substr(line.find(':') + 1));
    }
    return value;
}

// Header section `h` without the fields called `name` (and their continuation lines).
std::string without_field(sv h, sv name) {
    std::string out;
    out.reserve(h.size());
    bool dropping = false;
    for (std::size_t pos = 0; pos < h.size();) {
        const sv line = next_line(h, pos);
        if (!line.empty() && wsp(line.front())) {
            if (!dropping) out += line;
            continue;
        }
        dropping = iequals(field_name(line), name);
        if (!dropping) out += line;
    }
    if (!out.empty() && out.back() != '\n') out += "\r\n";
    return out;
}

struct content_type {
    std::string type;      // "text/plain", lower case; empty when absent or unreadable
    std::string boundary;  // its boundary parameter, unquoted
};

// RFC 2045 5.1: type "/" subtype *(";" parameter); parameter values are tokens or quoted
// strings (a ";" inside quotes is no separator); a parameter without "=" is skipped; the first
// boundary counts (as MIME readers take it). Comments and RFC 2231 continuations are not read:
// such a boundary is not found, and the message is refused, never misread.
content_type parse_content_type(sv v) {
    content_type ct;
    bool have_boundary = false;
    std::size_t i = 0;
    for (bool first = true; i <= v.size(); first = false) {
        // One segment: up to the next ";" outside quotes.
        std::string name, value;
        bool in_value = false, quoted = false;
        for (; i < v.size() && (quoted || v[i] != ';'); ++i) {
            const char c = v[i];
            if (!in_value && c == '=' && !first) {
                in_value = true;
                continue;
            }
            if (in_value && c == '"') {
                quoted = !quoted;
                continue;
            }
            if (quoted && c == '\\' && i + 1 < v.size()) {
                value += v[++i];
                continue;
            }
            (in_value ? value : name) += c;
        }
        ++i;  // past the ";"
        if (first) {
            const std::string type = lowered(trim(name));
            if (type.find('/') != std::string::npos) ct.type = type;
        } else if (in_value && !have_boundary && lowered(trim(name)) == "boundary") {
            ct.boundary = std::string(trim(value));
            have_boundary = true;
        }
    }
    return ct;
}

// The transfer encoding's token, lower case ("8bit" of " 8BIT (comment)"); "7bit" when absent.
std::string transfer_encoding(sv header) {
    const auto v = field(header, "content-transfer-encoding");
    if (!v) return "7bit";
    sv t = trim(*v);
    t = t.substr(0, t.find_first_of(" \t(;"));
    return lowered(t);
}

struct entity {
    sv header;  // the header section (header_section)
    sv sep;     // the empty line after it ("" when the body follows without one)
    sv body;
};

entity split(sv c) {
    entity e;
    e.header = header_section(c);
    sv rest = c.substr(e.header.size());
    const std::size_t sep = rest.starts_with("\r\n") ? 2 : rest.starts_with("\n") ? 1 : 0;
    e.sep = rest.substr(0, sep);
    e.body = rest.substr(sep);
    return e;
}

std::string relabelled(sv header, sv encoding) {
    std::string h = without_field(header, "content-transfer-encoding");
    h += "Content-Transfer-Encoding: ";
    h += encoding;
    h += "\r\n";
    return h;
}

constexpr int max_depth = 100;  // Postfix's mime_nesting_limit

// RFC 6532 3.7 and RFC 6533 6: the message/ types made for UTF-8 content.
bool global_type(sv type) {
    return type == "message/global" || type == "message/global-headers" ||
           type == "message/global-delivery-status" || type == "message/global-disposition-notification";
}

struct converter {
    sv by;
    sv id;
    std::string& out;

    // One entity: `top` when it is a message (needs MIME-Version for its labels), `default_type`
    // its type when it has no Content-Type (RFC 2046 5.1.5: message/rfc822 in a digest).
    std::optional<std::string> entity_(sv c, bool top, sv default_type, int depth) {
        if (depth > max_depth) return "MIME parts nested too deeply";
        const entity e = split(c);
        if (!is_ascii(e.header)) return "8-bit octets in a header section";
        if (is_ascii(e.body)) {
            out += c;
            return std::nullopt;
        }
        content_type ct;
        const auto type_field = field(e.header, "content-type");
        if (type_field) ct = parse_content_type(*type_field);
        // RFC 2045 5.2: an invalid type is text/plain; an absent one the default (RFC 2046 5.1.5).
        if (ct.type.empty()) ct.type = type_field ? "text/plain" : std::string(default_type);
        const std::string cte = transfer_encoding(e.header);
        // "binary" too: the queue holds its lines CRLF already (the server normalised them).
        const bool unencoded = cte == "7bit" || cte == "8bit" || cte == "binary";
        const auto header = [&] {
            if (cte == "8bit" || cte == "binary") out += relabelled(e.header, "7bit");
            else out += e.header;
            out += e.sep;
        };
        if (ct.type.starts_with("multipart/")) {
            if (!unencoded) return "8-bit octets in a multipart labelled " + cte;
            if (ct.boundary.empty()) return "8-bit octets in a multipart without a boundary";
            header();
            return multipart(e.body, ct.boundary, ct.type == "multipart/digest" ? "message/rfc822" : "text/plain",
                             depth);
        }
        if (ct.type == "message/rfc822") {
            if (!unencoded) return "8-bit octets in a message/rfc822 labelled " + cte;
            header();
            return entity_(e.body, true, "text/plain", depth + 1);
        }
        // RFC 2046 5.2.4: other message/* types are 7bit, 8bit or binary only, so their 8-bit
        // content has no 7-bit form. The global types may be quoted-printable or base64 on a
        // 7-bit path (RFC 6532 3.7; RFC 6533 6: a global bounce's report and returned headers),
        // so they are converted as a text body is.
        if (ct.type.starts_with("message/") && !global_type(ct.type))
            return "8-bit octets in a " + ct.type + " part";
        if (!unencoded) return "8-bit octets in a body labelled " + cte;
        std::string h = without_field(e.header, "content-transfer-encoding");
        if (top && !field(h, "mime-version")) h += "MIME-Version: 1.0\r\n";
        // Without a Content-Type the text would now read as US-ASCII: its charset is said
        // instead, UTF-8 when it is valid UTF-8, else RFC 1428's "unknown-8bit".
        if (!type_field)
            h += valid_utf8(e.body) ? "Content-Type: text/plain; charset=utf-8\r\n"
                                    : "Content-Type: text/plain; charset=unknown-8bit\r\n";
        h += "Content-Transfer-Encoding: quoted-printable\r\n";
        if (!by.empty()) {
            h += "X-MIME-Autoconverted: from 8bit to quoted-printable by ";
            h += by;
            if (!id.empty()) {  // folded (RFC 5322 2.2.3): the field would pass 78 characters
                h += "\r\n\tid ";
                h += id;
            }
            h += "\r\n";
        }
        out += h;
        out += e.sep.empty() ? sv("\r\n") : e.sep;
        quoted_printable(e.body, out);
        return std::nullopt;
    }

    // RFC 2046 5.1.1: a multipart body, its parts between "--boundary" lines, up to the
    // "--boundary--" line; the lines before the first and after the last go as they came.
    std::optional<std::string> multipart(sv body, const std::string& boundary, sv part_type, int depth) {
        const std::string dash = "--" + boundary;
        bool in_part = false;  // false: the preamble
        std::size_t start = 0;
        for (std::size_t pos = 0; pos < body.size();) {
            const std::size_t at = pos;
            const sv line = next_line(body, pos);
            sv t = text_of(line);
            if (!t.starts_with(dash)) continue;
            t.remove_prefix(dash.size());
            const bool close = t.starts_with("--");
            if (close) t.remove_prefix(2);
            if (!std::all_of(t.begin(), t.end(), wsp)) continue;  // a longer boundary
            const sv segment = body.substr(start, at - start);
            if (in_part) {
                if (auto why = entity_(segment, false, part_type, depth + 1)) return why;
            } else {
                if (!is_ascii(segment)) return "8-bit octets in a multipart preamble";
                out += segment;
            }
            out += line;
            if (close) {
                const sv epilogue = body.substr(pos);
                if (!is_ascii(epilogue)) return "8-bit octets in a multipart epilogue";
                out += epilogue;
                return std::nullopt;
            }
            in_part = true;
            start = pos;
        }
        if (!in_part) return "8-bit octets in a multipart without its boundary";
        // No closing delimiter (the message was cut short): the last part runs to the end.
        return entity_(body.substr(start), false, part_type, depth + 1);
    }
};

}  // namespace

void quoted_printable(sv body, std::string& out) {
    static constexpr char hex[] = "0123456789ABCDEF";
    out.reserve(out.size() + body.size() + body.size() / 8);
    for (std::size_t pos = 0; pos < body.size();) {
        const sv t = text_of(next_line(body, pos));
        std::size_t width = 0;  // of the output line so far
        for (std::size_t i = 0; i < t.size(); ++i) {
            const auto c = static_cast<unsigned char>(t[i]);
            const bool last = i + 1 == t.size();
            bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
            std::size_t n = literal ? 1 : 3;
            // At most 76 characters a line: 75 and the "=" of a soft break, or 76 at its end.
            if (width + n > (last ? 76u : 75u)) {
                out += "=\r\n";
                width = 0;
            }
            // A line that a soft break starts with "-" could read as a multipart boundary
            // ("--b" in the middle of a long line): its "-" is written =2D.
            if (width == 0 && i > 0 && c == '-') {
                literal = false;
                n = 3;
            }
            if (literal) {
                out += static_cast<char>(c);
            } else {
                out += '=';
                out += hex[c >> 4];
                out += hex[c & 15];
            }
            width += n;
        }
        out += "\r\n";
    }
}

seven_bit to_seven_bit(sv content, sv by, sv id) {
    seven_bit r;
    std::string out;
    out.reserve(content.size() + content.size() / 4);
    converter cv{by, id, out};
    if (auto why = cv.entity_(content, true, "text/plain", 0)) {
        r.why = std::move(*why);
        return r;
    }
    r.content = std::move(out);
    return r;
}

}  // namespace postern::message
