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

// The chunk-size alone (the first word of the argument), for a BDAT line parse_bdat() refuses:
// its chunk follows all the same and must be read, not executed as commands. `none`: the word is
// not 1*DIGIT (nothing recognisable follows); `too_big`: all digits, past 2^64-1 (the chunk
// cannot be skipped).
struct bdat_size {
    enum class kind { known, none, too_big } what = kind::none;
    std::uint64_t size = 0;
};
bdat_size parse_bdat_size(std::string_view arg);

}  // namespace postern::smtp
