// smtp/command.hpp - split one SMTP command line into verb and arguments (internal to src/smtp).
// RFC 5321 4.1.1 (command syntax), 4.1.2 (MAIL/RCPT argument syntax), RFC 3030 2 (BDAT).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace postern::smtp {

// "mail FROM:<a@b>" -> verb "MAIL", arg "FROM:<a@b>". The line has no CRLF.
struct command_line {
    std::string verb;      // ASCII upper-case
    std::string_view arg;  // after the separating space(s), trailing spaces removed
};
command_line split_command(std::string_view line);

// "FROM:<a@b> SIZE=10" with keyword "FROM:" -> path "<a@b>", params "SIZE=10".
struct path_args {
    bool keyword_ok = false;  // "FROM:" / "TO:" present (case-insensitive)
    bool path_ok = false;     // a bracketed path followed by end of line or a space
    std::string_view path;
    std::string_view params;
};
path_args split_path_args(std::string_view arg, std::string_view keyword);

// RFC 3030 2: "BDAT" SP chunk-size [ SP end-marker ], chunk-size = 1*DIGIT, end-marker = "LAST".
struct bdat_args {
    std::uint64_t size = 0;
    bool last = false;
};
std::optional<bdat_args> parse_bdat(std::string_view arg);

}  // namespace postern::smtp
