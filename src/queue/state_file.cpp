// queue/state_file.cpp - a state file names its message and counts its lines (state_file.hpp).
#include "queue/state_file.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace postern::queue {
namespace {

constexpr std::string_view v1_magic = "POSTERN-STATE 1\n";
constexpr std::string_view v2_magic = "POSTERN-STATE 2 ";  // then the id and LF

// Lines in `lines` (whole lines, each ending in LF): every one, tlsfail lines included, so
// that a torn tlsfail line shows as well as a torn recipient line.
std::size_t line_count(std::string_view lines) {
    return static_cast<std::size_t>(std::count(lines.begin(), lines.end(), '\n'));
}

}  // namespace

bool is_unsealed_state(std::string_view file) { return file.substr(0, v1_magic.size()) == v1_magic; }

std::string seal_state(std::string_view id, std::string_view records) {
    if (records.substr(0, v1_magic.size()) == v1_magic) records.remove_prefix(v1_magic.size());
    return fmt::format("{}{}\n{}end {}\n", v2_magic, id, records, line_count(records));
}

result<std::string> unseal_state(std::string_view file, std::string_view id) {
    // The previous version's files were all sealed by spool::open() at start-up: one seen now
    // is the bytes of a file freed before that (a stale block after a crash), never this
    // message's state.
    if (is_unsealed_state(file))
        return error{"state file in the previous format (POSTERN-STATE 1) after the start-up conversion "
                     "(a stale block after a crash?)"};
    if (file.substr(0, v2_magic.size()) != v2_magic) return error{"bad state magic"};
    const std::size_t eol = file.find('\n');
    if (eol == std::string_view::npos) return error{"truncated state header"};
    if (file.substr(v2_magic.size(), eol - v2_magic.size()) != id)
        return error{"state file of another message (a stale block after a crash?)"};
    // The trailer: the last line, after the header.
    const std::size_t last = file.back() == '\n' ? file.rfind('\n', file.size() - 2) : std::string_view::npos;
    if (last == std::string_view::npos) return error{"state file without its trailer"};
    const std::string_view trailer = file.substr(last + 1, file.size() - last - 2);
    const std::string_view body = file.substr(eol + 1, last - eol);
    // A last line shorter than "end " (an empty line, a stale block's bytes) is no trailer.
    if (!trailer.starts_with("end ")) return error{"state file without its trailer"};
    std::size_t count = 0;
    const auto n = trailer.substr(4);
    const auto r = std::from_chars(n.data(), n.data() + n.size(), count);
    if (n.empty() || r.ec != std::errc() || r.ptr != n.data() + n.size())
        return error{"state file without its trailer"};
    if (count != line_count(body))
        return error{fmt::format("state file trailer counts {} lines, the file has {}", count, line_count(body))};
    std::string out(v1_magic);
    out += body;
    return out;
}

}  // namespace postern::queue
