// queue/spool.hpp - the durable message store under spool.dir (SPEC §3.1). Blocking file I/O:
// callers run it on the disk thread pool, never on the event loop.
//
// Layout (all 0700, files 0600):
//   lock       flock(2)ed while a spool object lives: one server per spool (holds its pid)
//   tmp/ID     being written; never acknowledged; removed at start-up
//   queue/ID   committed, waiting for delivery      (format: queue/envelope.hpp)
//   hold/ID    committed, on hold (queue.hold, `postern queue hold`): not delivered until released
//   state/ID   per-recipient delivery state of queue/ID (absent = every recipient still queued;
//              it names its message and counts its lines: queue/state_file.hpp)
// commit() = write tmp/ID, make it durable, rename to queue/ID or hold/ID (never over an
// existing file, nor while the other area has the id: a repeated id fails the commit),
// fsync(directory).
// Only after commit() returns success may the server reply 250 (SPEC §2). "Durable" is either
//   durability::filesystem (spool.sync = "filesystem", the default): one syncfs(2) of the
//     spool's file system covers every commit written before it started (group commit,
//     queue/group_sync.hpp): a burst of N messages costs a few flushes, not N. It also writes
//     any other dirty data on that file system: give the spool its own file system, or use
//   durability::file (spool.sync = "file"): fsync(2) of each file, as Postfix does.
// Concurrent commits share the directory fsync the same way: each waits for one that started
// after its own rename. A crash before the rename leaves only tmp/ID (discarded, the client
// was never told 250); after the directory fsync the message survives power loss. A file in
// queue/ or hold/ is always complete. The spool may be on ext4 without a journal, where a
// rename is not atomic across a power cut: only what a directory fsync covered is sure to be
// there. So move() never renames from one area to the other: it links, fsyncs, unlinks.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "queue/envelope.hpp"
#include "queue/group_sync.hpp"
#include "util/result.hpp"

namespace postern::queue {

enum class area { active, hold };

struct spool_failure {
    int errnum = 0;       // errno of the failed call (ENOSPC -> 452 4.3.1)
    std::string message;  // "fsync queue/ID: No space left on device"
};

// Per-recipient state, index = position in envelope::recipients.
enum class rcpt_status { queued, deferred, sent, bounced };
const char* to_string(rcpt_status s);
struct rcpt_state {
    rcpt_status status = rcpt_status::queued;
    unsigned attempts = 0;
    std::int64_t next_attempt = 0;  // unix time; 0 = as soon as possible
    std::string last_reply;
};
// `tls_failed`: hosts whose TLS handshake failed for this message, and when it first did
// (SPEC §1.1: the second failure for the same message and host delivers without TLS, once
// tls.handshake_retry_delay has passed since the first), as "tlsfail NAME:PORT UNIXTIME" lines.
// Each entry is the text after "tlsfail " (tls_failure_entries() makes them); format_state()
// writes only well-formed ones: NAME:PORT without spaces, then optionally one decimal time.
std::string format_state(const std::vector<rcpt_state>& st, const std::set<std::string>& tls_failed = {});
result<std::vector<rcpt_state>> parse_state(std::string_view text, std::size_t recipients);
std::set<std::string> parse_tls_failed(std::string_view text);
// "NAME:PORT" -> unix time (s) of the host's first failed handshake for this message. An entry
// without a time (written before times were, kept by the start-up sealing of such files) reads
// as 0, long ago: the fallback is due, as it was when that line was written. An entry whose
// time does not read (damaged) reads as `now`: a failure just seen, the fallback waits the
// full delay. Several entries for one host: the earliest time.
using tls_failures = std::map<std::string, std::int64_t>;
tls_failures tls_failure_times(const std::set<std::string>& entries, std::int64_t now);
// Adds a failure of `host` at `t`, keeping the earliest time (the first failure) it has.
void note_tls_failure(tls_failures& times, const std::string& host, std::int64_t t);
std::set<std::string> tls_failure_entries(const tls_failures& times);

// What is wrong with the queue file `path`, named `id`, whose header names message `header_id`;
// "" when the two agree. Another message's bytes under this name (on ext4 without a journal, an
// unlink undone by a power cut whose blocks were reused) are not this message: spool::load and
// `postern queue list/show` (control/snapshot.cpp) refuse such a file.
std::string misnamed_file(const std::string& path, const std::string& header_id, const std::string& id);

// open(2) of a spool file for reading (O_CLOEXEC), refusing anything but a regular file: a
// symbolic link is not followed (ELOOP; it could make another file's bytes a message) and
// anything else is closed again (EINVAL; a FIFO, opened without waiting for a writer, would
// otherwise hang the reading thread for ever). -1 with errno set, else the descriptor.
int open_regular_file(const std::string& path);

// What an errno from reading a spool file means, for messages: "not a regular file" (EINVAL),
// "a symbolic link (not followed)" (ELOOP), else strerror.
std::string read_error(int e);

// One message of commit_batch(): what to write, and (after the call) whether it failed.
struct commit_item {
    const envelope* env = nullptr;
    std::vector<std::string_view> parts;   // the content: their concatenation
    area where = area::active;
    std::optional<spool_failure> failure;  // nullopt = committed
};

struct move_result {
    bool moved = false;
    std::optional<spool_failure> failure;  // the directory fsync after the rename failed
};

struct remove_result {
    bool removed = false;
    std::optional<spool_failure> failure;  // removed, but the fsync of its folder failed
};

struct presence {
    enum class kind { present, gone, unknown } is = kind::gone;
    int errnum = 0;  // unknown: access(2)'s errno
};

struct loaded_message {
    envelope env;
    std::string data;          // the whole file
    std::size_t content_offset = 0;
    std::string_view content() const { return std::string_view(data).substr(content_offset); }
};

class spool {
public:
    // Creates the directories if needed, fsyncs the folder above the spool and the spool folder
    // (their names durable at every start: a failure fails the open),
    // takes the spool's lock (fails, touching nothing, when another process holds it: a running
    // server's tmp/ files are commits in flight), then removes leftovers in tmp/, unfinished
    // state writes and state files whose message is gone, and seals the previous version's
    // state files (queue/state_file.hpp).
    enum class durability { filesystem, file };
    static result<std::unique_ptr<spool>> open(const std::string& dir, durability how = durability::filesystem);
    ~spool();
    spool(const spool&) = delete;
    spool& operator=(const spool&) = delete;

    const std::string& dir() const { return dir_; }
    // Unique, time-ordered queue id: 13 hex digits of microseconds + 4 of a counter.
    std::string new_id();

    // Durable commit (see above). The content is the concatenation of `parts`.
    // Returns nullopt on success.
    std::optional<spool_failure> commit(const envelope& env, std::initializer_list<std::string_view> parts,
                                        area where);
    // commit() for several messages at once (queue/committer.hpp): every tmp/ID written, one
    // content sync for all of them (shared with concurrent commits), the renames, one directory
    // fsync per area. Each item gets its own outcome in `failure`; a failed item leaves nothing
    // behind. With durability::file each file is fsynced in turn (use commit() from several
    // threads instead).
    void commit_batch(std::span<commit_item> items);

    std::vector<std::string> list(area where) const;
    // The whole queue/ID or hold/ID. An error when it cannot be read, its header does not
    // parse, its content is not the header's size, or the header names another id than ID.
    result<loaded_message> load(const std::string& id, area where) const;
    // Removes the queue file, then its state file. `state_written` = false: the caller knows
    // no state file was ever written for it (a message delivered in its first pass), so there
    // is none to unlink. No directory fsync: at the end of a delivery pass, a message that a
    // power cut brings back is delivered again (at least once), and a sync there would cost
    // relay throughput.
    bool remove(const std::string& id, area where, bool state_written = true);
    // remove(), then an fsync of the folder the file left (shared with commits), before the
    // operator is told (`postern queue delete`): a deleted message must not come back after a
    // power cut and be delivered. Removed with `failure`: that fsync failed (it may come back).
    remove_result remove_durably(const std::string& id, area where);
    // From one area to the other: link(2) into `to`, fsync `to`, unlink(2) from `from`, fsync
    // `from` (the directory fsyncs shared with commits). A crash leaves the file in `from`, in
    // both (open() then keeps hold/ID and removes queue/ID: a hold wins), or in `to`; never in
    // neither. `moved`: the file is now in `to` only. Not moved with `failure`: the fsync of
    // `to` failed (the new name taken back, `to` fsynced again: logged if that fails too) or
    // another file has the id in `to`; not moved without: no such file in `from`, or a
    // delivery pass removed it meanwhile (every recipient done). Moved with `failure`: the
    // fsync of `from` failed (a power cut may bring the old name back: for a release, the
    // message is then held again).
    move_result move(const std::string& id, area from, area to);
    // What access(2) says of queue/ID or hold/ID: there, gone (ENOENT or ENOTDIR only), or
    // unknown (any other error: EIO, ELOOP...; its errno in `errnum`). Not logged.
    presence probe(const std::string& id, area where) const;
    // queue/ID or hold/ID is there: probe() with unknown logged and taken as there, since
    // "gone" deletes a message's state.
    bool exists(const std::string& id, area where) const;
    // The size of queue/ID or hold/ID in bytes (what load() reads into memory): 0 when stat(2)
    // fails (load() then says why). One system call, no read: the queue runner sizes a message
    // before it decides to load it.
    std::uint64_t file_size(const std::string& id, area where) const;
    void remove_state(const std::string& id);               // state/ID only (if any)

    // The recipients' state (all queued when there is no state file: ENOENT) and, into
    // `tls_failed` when given, the hosts recorded there: one read of state/ID for both.
    // Any other failure to open or read it (EMFILE, EIO, EACCES...) is an error: it says
    // nothing about the recipients, and taking it for "all queued" would deliver again what
    // was sent and bounce twice. A file that reads but does not parse, names another message
    // or lacks its trailer (torn by a crash, or another file's freed block: state writes are
    // not fsynced) gives every recipient queued (and no tlsfail hosts), with the problem in
    // `*damaged` when given: repeating deliveries is the safe side, a message stuck for good
    // or a recipient taken for delivered is not.
    result<std::vector<rcpt_state>> read_state(const std::string& id, std::size_t recipients,
                                               std::set<std::string>* tls_failed = nullptr,
                                               std::string* damaged = nullptr) const;
    // Replaces state/ID atomically (write .ID.tmp, rename; no fsync), sealed for ID
    // (queue/state_file.hpp). One writer per id at a time (the queue runner sees to it: a
    // second would share .ID.tmp). On failure (a full disk)
    // the previous state file stays and nothing else is left behind.
    std::optional<spool_failure> write_state(const std::string& id, const std::vector<rcpt_state>& st,
                                             const std::set<std::string>& tls_failed = {});

    std::string path(const std::string& id, area where) const;

    // Test hook: called before every fsync with the file's path (before every syncfs with the
    // spool directory); a non-zero return is used as the errno of a failed call (fault
    // injection for "never acknowledge what was not synced").
    static void set_fsync_fault(std::function<int(const std::string&)> hook);

    // Directory fsyncs run so far for commits (group commit: fewer than commits under load).
    std::uint64_t directory_syncs() const;
    // syncfs calls run so far for commits (durability::filesystem; 0 with durability::file).
    std::uint64_t content_syncs() const;

    // In the spool directory once its state files of the previous format have been sealed.
    static constexpr std::string_view state_sealed_marker = "state-sealed";

private:
    spool(std::string dir, durability how);
    std::optional<spool_failure> write_tmp(const std::string& tmp, const envelope& env,
                                           const std::vector<std::string_view>& parts);
    // state/ID := `text`: write .ID.tmp (fsync it when `sync`), rename over state/ID.
    std::optional<spool_failure> replace_state(const std::string& id, std::string_view text, bool sync);
    // open(), once per spool (until the file `state_sealed_marker` exists in the spool
    // directory): every state file of `ids` still in the previous format sealed for its id
    // (replace_state with fsync), one fsync of state/, then the marker made (fsynced, and the
    // spool directory). After that, a file in the previous format is read as damaged.
    void seal_old_state_files(const std::vector<std::string>& ids);
    group_sync& sync_of(area where) { return where == area::hold ? *hold_sync_ : *active_sync_; }
    // "fsync DIR/queue: ERROR": what a failed fsync of a folder (sync_of) answers.
    spool_failure folder_failure(area where, int err) const;
    std::string dir_;
    durability durability_;
    int lock_fd_ = -1;  // spool.dir/lock, flock(LOCK_EX) while this object lives
    int fs_fd_ = -1;  // the spool directory, for syncfs (durability::filesystem)
    int area_fd_[2] = {-1, -1};  // queue/ and hold/, open for the directory fsyncs of commits
    std::unique_ptr<group_sync> content_sync_;  // syncfs, shared by commits in flight
    std::unique_ptr<group_sync> active_sync_, hold_sync_;
};

}  // namespace postern::queue
