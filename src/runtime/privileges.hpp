// runtime/privileges.hpp - run as an unprivileged user (issue 5: privilege drop).
// `postern serve` started as root binds its listeners and reads its TLS keys first, then calls
// drop_privileges(): the spool and the hosted maildirs (one not there yet is created first) are
// handed to server.user, and the process switches to that user and its group for good (no
// saved root uid, no supplementary groups). Without server.user, running as root is refused
// unless server.allow_root = true. Started as any other user, nothing changes (server.user is
// ignored, with a note).
#pragma once
#include <string>

#include "config/config.hpp"
#include "util/result.hpp"

namespace postern::runtime {

// Call before starting any thread (glibc changes the ids of every thread, but nothing of ours
// should run as root meanwhile). On success, a line for the log saying what was done.
result<std::string> drop_privileges(const config::config& cfg);

}  // namespace postern::runtime
