// queue/state_file.hpp - the frame around a state file's records: which message it belongs
// to, and whether it is whole. State files are not fsynced (spool.hpp), and on ext4 without a
// journal a new file's inode can reach the disk before its data: after a power cut state/ID
// may hold the bytes of another, older state file (a freed block), whose "sent" lines would
// mark recipients of this message done that never were (the message removed: lost).
//
//   POSTERN-STATE 2 ID      the records' first line, naming the message
//   tlsfail ... / INDEX ... the records of format_state() (spool.hpp), after its first line
//   end N                   N = how many lines (recipient and tlsfail) come between the two
//
// A file whose header names another id, or whose trailer is missing or counts otherwise, is
// damaged (read_state: every recipient queued: repeated deliveries, never a loss). Files of
// the previous version ("POSTERN-STATE 1", no id, no trailer) cannot be checked: spool::open()
// seals every one it finds at start-up (fsynced), and from then on a file in that format is
// damaged too (the bytes of a file freed before the upgrade, not this message's state).
#pragma once
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace postern::queue {

// The previous version's format ("POSTERN-STATE 1", unsealed): what spool::open() converts.
bool is_unsealed_state(std::string_view file);
// `records`: format_state()'s text ("POSTERN-STATE 1" and its lines) -> the file for `id`.
std::string seal_state(std::string_view id, std::string_view records);
// The file -> format_state()'s form for parse_state()/parse_tls_failed(). The file must name
// `id` and end with its trailer; an unsealed (version-1) file is an error.
result<std::string> unseal_state(std::string_view file, std::string_view id);

}  // namespace postern::queue
