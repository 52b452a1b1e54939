// delivery/maildir.hpp - local delivery into a Maildir (SPEC §3.3: <maildir>/<local-part>/new/).
// Blocking file I/O; run on the disk pool. Delivery is tmp/ -> fsync -> link into new/ -> fsync
// new/ (the maildir protocol, https://cr.yp.to/proto/maildir.html): a reader never sees a
// partial file and a crash never loses an acknowledged copy.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace postern::delivery {

// The folder name for `local_part` ("John.Doe" -> "john.doe", "\"a b\"" -> "a b"), or nullopt
// when it cannot be a safe directory name ("/", "..", leading ".", control characters).
std::optional<std::string> maildir_folder(std::string_view local_part);

struct outcome {
    enum class kind { sent, transient, permanent } result = kind::sent;
    std::string dsn;     // "2.0.0", "4.3.1", ...
    std::string reason;  // human text, or the final path on success
    // Decided by Postern before MAIL FROM (client_session's local_check: 5.3.4, 5.6.3, 5.6.7),
    // not a reply of the remote MTA: the DSN then has no Remote-MTA and an "X-Postern"
    // diagnostic (RFC 3464 2.3.5, 2.3.6).
    bool local = false;
};

// Deliver `content` (prefixed by `prefix`, e.g. Return-Path/Delivered-To) for `local_part`
// into `root`/<folder>/new/. Creates the Maildir (tmp, new, cur) when missing.
outcome deliver_maildir(const std::string& root, std::string_view local_part, std::string_view prefix,
                        std::string_view content, std::string_view hostname);

}  // namespace postern::delivery
