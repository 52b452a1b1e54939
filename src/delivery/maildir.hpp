// delivery/maildir.hpp - local delivery into a Maildir (SPEC §3.3: <maildir>/<local-part>/new/).
// Blocking file I/O; run on the disk pool. Delivery is tmp/ -> fsync -> link into new/ -> fsync
// new/ (the maildir protocol, https://cr.yp.to/proto/maildir.html): a reader never sees a
// partial file and a crash never loses an acknowledged copy. The mailbox's directories are made
// durable too (their parents fsynced) by the first delivery to it in this process, and by any
// delivery that creates one. A symbolic link at the mailbox or its tmp/, new/ or cur/ is never
// followed (the delivery is deferred, 4.3.0): the file is written relative to directories opened
// with O_NOFOLLOW. The file has LF line ends (CRLF written as LF), like Postfix's local delivery.
#pragma once
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace postern::delivery {

// The folder name for `local_part` ("John.Doe" -> "john.doe", "\"a b\"" -> "a b"), or nullopt
// when it cannot be a safe directory name ("/", "..", leading ".", control characters,
// malformed UTF-8 such as an overlong '.').
std::optional<std::string> maildir_folder(std::string_view local_part);

struct outcome {
    // A default outcome is a deferral: code that forgets to record what happened retries the
    // recipient; it never drops a message as sent.
    enum class kind { sent, transient, permanent } result = kind::transient;
    std::string dsn = "4.3.0";  // "2.0.0", "4.3.1", ...
    std::string reason = "no outcome recorded (internal error)";  // human text, or the final path on success
    // `reason` is the remote MTA's own reply (delivery::from_reply): only then does a DSN name
    // a Remote-MTA and type the diagnostic "smtp" (RFC 3464 2.3.5, 2.3.6). Postern's own
    // reasons - local refusals before MAIL FROM (5.3.4, 5.6.3, 5.6.7), connection failures,
    // timeouts, TLS policy, DNS - get "X-Postern" and no Remote-MTA.
    bool remote_reply = false;
};

// Deliver `content` (prefixed by `prefix`, e.g. Return-Path/Delivered-To) for `local_part`
// into `root`/<folder>/new/. Creates the Maildir (tmp, new, cur) when missing. The file has LF
// line ends, like Postfix's local delivery: every CRLF of prefix and content is written as LF
// (a bare CR or LF stays as it is).
outcome deliver_maildir(const std::string& root, std::string_view local_part, std::string_view prefix,
                        std::string_view content, std::string_view hostname);

// The file is converted into a buffer of this many octets, written each time it fills
// (exposed for the tests of a CRLF split across two of them).
inline constexpr std::size_t maildir_write_chunk = 64 * 1024;

// Tests: called with the path before every fsync of a file or directory; a non-zero return is
// used as the errno of a failed fsync (nullptr: none). Not thread-safe to change while
// deliveries run.
void set_maildir_fsync_hook(std::function<int(const std::string&)> hook);

}  // namespace postern::delivery
