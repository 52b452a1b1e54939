// tests/unit/delivery/maildir_test.cpp - mailbox naming safety (strict UTF-8: no overlong
// '.', '/' or NUL), Maildir delivery, the durability of the directories it creates, no
// delivery through a symbolic link at the mailbox or its tmp/, new/ or cur/, and the file's LF
// line ends (CRLF written as LF, bare CR and LF kept, also across the write buffer's chunks).
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include "delivery/maildir.hpp"
#include "../test_util.hpp"

using namespace postern;
namespace fs = std::filesystem;

TEST(maildir_folder, names) {
    EXPECT_EQ(delivery::maildir_folder("John.Doe"), "john.doe");
    EXPECT_EQ(delivery::maildir_folder("\"john doe\""), "john doe");
    EXPECT_EQ(delivery::maildir_folder("\"a\\\"b\""), "a\"b");
    EXPECT_EQ(delivery::maildir_folder("δοκιμή"), "δοκιμή");
}

TEST(maildir_folder, refuses_unsafe_names) {
    EXPECT_FALSE(delivery::maildir_folder(""));
    EXPECT_FALSE(delivery::maildir_folder(".."));
    EXPECT_FALSE(delivery::maildir_folder(".hidden"));
    EXPECT_FALSE(delivery::maildir_folder("\"../etc\""));
    EXPECT_FALSE(delivery::maildir_folder("\"a/b\""));
    EXPECT_FALSE(delivery::maildir_folder("\"a\x01\""));
    EXPECT_FALSE(delivery::maildir_folder("\"\""));
    // Found by review: the C1 controls and the Unicode line separators were taken.
    EXPECT_FALSE(delivery::maildir_folder("a\xc2\x85" "b"));   // U+0085 NEL
    EXPECT_FALSE(delivery::maildir_folder("a\xc2\x9b" "31m"));  // U+009B CSI
    EXPECT_FALSE(delivery::maildir_folder("a\xe2\x80\xa8" "b"));  // U+2028
    EXPECT_FALSE(delivery::maildir_folder("a\xe2\x80\xa9" "b"));  // U+2029
    // Review: bidirectional formatting characters showed a folder's name reordered in a listing.
    EXPECT_FALSE(delivery::maildir_folder("a\xe2\x80\xae" "b"));  // U+202E RLO
    EXPECT_FALSE(delivery::maildir_folder("a\xe2\x81\xa6" "b"));  // U+2066 LRI
    EXPECT_FALSE(delivery::maildir_folder("a\xe2\x80\x8f" "b"));  // U+200F RLM
    EXPECT_FALSE(delivery::maildir_folder("\xef\xbb\xbf" "b"));   // U+FEFF
    EXPECT_FALSE(delivery::maildir_folder("a\xd8\x9c" "b"));       // U+061C ALM
    EXPECT_FALSE(delivery::maildir_folder("a\xe2\x80"));           // truncated
    EXPECT_EQ(delivery::maildir_folder("a\xe2\x80\x8d" "b"), "a\xe2\x80\x8d" "b");  // U+200D ZWJ is no control
    EXPECT_EQ(delivery::maildir_folder("a\xc2\xa0" "b"), "a\xc2\xa0" "b");  // U+00A0 is no control
    EXPECT_EQ(delivery::maildir_folder("\xc3\xa9" "mile"), "\xc3\xa9" "mile");
}

// NAME_MAX applies to the folder, i.e. the lower-cased name: 120 x U+023A is 240 octets, its
// lower case (U+2C65) 360. Refused at RCPT (550 5.1.3), not deferred at every delivery.
TEST(maildir_folder, name_limit_applies_to_the_lower_cased_name) {
    std::string upper;
    for (int i = 0; i < 120; ++i) upper += "\xC8\xBA";  // U+023A
    EXPECT_FALSE(delivery::maildir_folder(upper));
    EXPECT_TRUE(delivery::maildir_folder(std::string(255, 'a')));
    EXPECT_FALSE(delivery::maildir_folder(std::string(256, 'a')));
}

TEST(maildir, delivers_into_new_with_prefix) {
    test::temp_dir d;
    auto o = delivery::deliver_maildir(d.path + "/mail", "Bob", "Return-Path: <a@b>\r\n", "Subject: x\r\n\r\nhi\r\n",
                                       "mx.test");
    ASSERT_EQ(o.result, delivery::outcome::kind::sent) << o.reason;
    EXPECT_EQ(o.dsn, "2.0.0");
    int files = 0;
    for (auto& e : fs::directory_iterator(d.path + "/mail/bob/new")) {
        ++files;
        std::ifstream in(e.path());
        std::stringstream ss;
        ss << in.rdbuf();
        EXPECT_EQ(ss.str(), "Return-Path: <a@b>\nSubject: x\n\nhi\n");  // LF line ends
    }
    EXPECT_EQ(files, 1);
    EXPECT_TRUE(fs::is_empty(d.path + "/mail/bob/tmp"));
    EXPECT_TRUE(fs::is_directory(d.path + "/mail/bob/cur"));
}

// Found by review: the first delivery to a mailbox created <root>/<box> and its tmp, new and
// cur, but fsynced only new/: a power cut could take the new directories, and the copy counted
// delivered with them. The parent of every directory created is fsynced; later deliveries to
// the same mailbox fsync only the file and new/.
TEST(maildir, directories_created_are_made_durable) {
    test::temp_dir d;
    fs::create_directories(d.path + "/mail");
    std::vector<std::string> synced;
    delivery::set_maildir_fsync_hook([&](const std::string& p) {
        const auto file = p.find("/bob/tmp/");  // the message file: recorded as its directory
        synced.push_back(file == std::string::npos ? p : p.substr(0, file + 8));
        return 0;
    });
    auto o = delivery::deliver_maildir(d.path + "/mail", "bob", "", "x\r\n", "mx.test");
    auto again = delivery::deliver_maildir(d.path + "/mail", "bob", "", "y\r\n", "mx.test");
    delivery::set_maildir_fsync_hook(nullptr);
    ASSERT_EQ(o.result, delivery::outcome::kind::sent) << o.reason;
    ASSERT_EQ(again.result, delivery::outcome::kind::sent) << again.reason;
    const std::string m = d.path + "/mail";
    EXPECT_EQ(synced, (std::vector<std::string>{d.path, m, m + "/bob", m + "/bob/tmp", m + "/bob/new",  // first
                                                m + "/bob/tmp", m + "/bob/new"}));                      // second
}

// Found by review: a delivery that found the directories already there (made by a delivery whose
// parent fsync failed, or by one still in flight) did not fsync them. Until a delivery has made
// the mailbox durable, each one does.
TEST(maildir, a_failed_directory_fsync_is_done_again_by_the_next_delivery) {
    test::temp_dir d;
    const std::string m = d.path + "/mail";
    delivery::set_maildir_fsync_hook([&](const std::string& p) { return p == m ? EIO : 0; });
    auto failed = delivery::deliver_maildir(m, "carol", "", "x\r\n", "mx.test");
    ASSERT_EQ(failed.result, delivery::outcome::kind::transient);
    std::vector<std::string> synced;
    delivery::set_maildir_fsync_hook([&](const std::string& p) {
        if (p.find("/carol/tmp/") == std::string::npos) synced.push_back(p);
        return 0;
    });
    auto retry = delivery::deliver_maildir(m, "carol", "", "x\r\n", "mx.test");
    delivery::set_maildir_fsync_hook(nullptr);
    ASSERT_EQ(retry.result, delivery::outcome::kind::sent) << retry.reason;
    EXPECT_EQ(synced, (std::vector<std::string>{d.path, m, m + "/carol", m + "/carol/new"}));
}

// An fsync of a directory created on the way that fails is a transient failure (retried).
TEST(maildir, failed_fsync_of_a_created_directory_is_transient) {
    test::temp_dir d;
    delivery::set_maildir_fsync_hook([&](const std::string& p) { return p == d.path + "/mail" ? EIO : 0; });
    auto o = delivery::deliver_maildir(d.path + "/mail", "bob", "", "x\r\n", "mx.test");
    delivery::set_maildir_fsync_hook(nullptr);
    EXPECT_EQ(o.result, delivery::outcome::kind::transient);
    EXPECT_EQ(o.dsn, "4.3.0");
    EXPECT_NE(o.reason.find("maildir fsync " + d.path + "/mail: "), std::string::npos) << o.reason;
}

TEST(maildir, two_deliveries_get_distinct_names) {
    test::temp_dir d;
    for (int i = 0; i < 3; ++i)
        ASSERT_EQ(delivery::deliver_maildir(d.path, "u", "", "x", "h").result, delivery::outcome::kind::sent);
    int n = 0;
    for ([[maybe_unused]] auto& e : fs::directory_iterator(d.path + "/u/new")) ++n;
    EXPECT_EQ(n, 3);
}

TEST(maildir, unsafe_local_part_is_permanent) {
    test::temp_dir d;
    auto o = delivery::deliver_maildir(d.path, "\"../x\"", "", "x", "h");
    EXPECT_EQ(o.result, delivery::outcome::kind::permanent);
    EXPECT_EQ(o.dsn, "5.1.3");
}

TEST(maildir, unwritable_root_is_transient) {
    test::temp_dir d;
    std::ofstream(d.path + "/file") << "x";  // a file where a directory should be
    auto o = delivery::deliver_maildir(d.path + "/file/sub", "u", "", "x", "h");
    EXPECT_EQ(o.result, delivery::outcome::kind::transient);
    EXPECT_EQ(o.dsn.substr(0, 2), "4.");
}

TEST(maildir_folder, unicode_lower_case_and_bad_utf8) {
    EXPECT_EQ(delivery::maildir_folder("Émile"), "émile");
    EXPECT_EQ(delivery::maildir_folder("ΔΟΚΙΜΉ"), "δοκιμή");
    EXPECT_FALSE(delivery::maildir_folder("\xC3"));      // truncated sequence
    EXPECT_FALSE(delivery::maildir_folder("a\xFF" "b"));  // not UTF-8
}

// Found by review: the checks for '/', a leading '.' and control characters ran on the raw
// octets, and the lower-casing then decoded overlong forms: C0 AE is '.', C0 AF '/', C0 80 NUL,
// so "\xC0\xAE\xC0\xAE" became the folder "..". Only well-formed UTF-8 (RFC 3629) names a
// folder: no overlong form, surrogate or code point past U+10FFFF.
TEST(maildir_folder, refuses_overlong_and_other_malformed_utf8) {
    EXPECT_FALSE(delivery::maildir_folder("\xC0\xAE\xC0\xAE"));        // ".."
    EXPECT_FALSE(delivery::maildir_folder("\xC0\xAEhidden"));           // ".hidden"
    EXPECT_FALSE(delivery::maildir_folder("a\xC0\xAF" "b"));              // "a/b"
    EXPECT_FALSE(delivery::maildir_folder("\"\xC0\xAE\xC0\xAE\xC0\xAF" "etc\""));  // "../etc"
    EXPECT_FALSE(delivery::maildir_folder("a\xC0\x80" "b"));              // NUL
    EXPECT_FALSE(delivery::maildir_folder("a\xE0\x80\xAF" "b"));          // '/' in three octets
    EXPECT_FALSE(delivery::maildir_folder("a\xED\xA0\x80"));             // a surrogate
    EXPECT_FALSE(delivery::maildir_folder("a\xF4\x90\x80\x80"));         // past U+10FFFF
    EXPECT_EQ(delivery::maildir_folder("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");  // U+1F600 is fine
}

// Found by review: a mailbox made durable once was remembered for the life of the process; one
// removed since was created again by the next delivery without fsyncing the root and the
// mailbox, so a power cut could take the new directories and the copy reported delivered.
// Whenever a directory is created, its parent is fsynced, whatever this process remembers.
TEST(maildir, a_mailbox_created_again_is_made_durable_again) {
    test::temp_dir d;
    const std::string m = d.path + "/mail";
    fs::create_directories(m);
    ASSERT_EQ(delivery::deliver_maildir(m, "dave", "", "x\r\n", "mx.test").result, delivery::outcome::kind::sent);
    fs::remove_all(m + "/dave");
    std::vector<std::string> synced;
    delivery::set_maildir_fsync_hook([&](const std::string& p) {
        if (p.find("/dave/tmp/") == std::string::npos) synced.push_back(p);  // not the message file
        return 0;
    });
    auto again = delivery::deliver_maildir(m, "dave", "", "y\r\n", "mx.test");
    delivery::set_maildir_fsync_hook(nullptr);
    ASSERT_EQ(again.result, delivery::outcome::kind::sent) << again.reason;
    EXPECT_EQ(synced, (std::vector<std::string>{m, m + "/dave", m + "/dave/new"}));
}

// Found by review: a symbolic link at the mailbox or at its tmp/, new/ or cur/ was followed
// (mkdir took EEXIST, open and link followed it): root/alice/new -> elsewhere sent the mail
// elsewhere. Such a mailbox is refused with a temporary failure (4.3.0, the reason says why),
// and nothing is written through the link.
TEST(maildir, a_symbolic_link_in_the_mailbox_is_refused) {
    for (const std::string at : {"", "/tmp", "/new", "/cur"}) {
        test::temp_dir d;
        const std::string m = d.path + "/mail", box = m + "/alice", target = d.path + "/elsewhere";
        fs::create_directories(target);
        if (at.empty()) {
            fs::create_directories(m);
            for (const char* sub : {"/tmp", "/new", "/cur"}) fs::create_directories(target + sub);
        } else {
            for (const char* sub : {"/tmp", "/new", "/cur"})
                if (at != sub) fs::create_directories(box + sub);
        }
        fs::create_directory_symlink(target, box + at);
        auto o = delivery::deliver_maildir(m, "alice", "", "x\r\n", "mx.test");
        EXPECT_EQ(o.result, delivery::outcome::kind::transient) << at;
        EXPECT_EQ(o.dsn, "4.3.0") << at;
        EXPECT_NE(o.reason.find("symbolic link"), std::string::npos) << at << ": " << o.reason;
        std::size_t files = 0;
        for (auto& e : fs::recursive_directory_iterator(target))
            if (!e.is_directory()) ++files;
        EXPECT_EQ(files, 0u) << at << ": written through the link";
        EXPECT_TRUE(fs::is_symlink(box + at)) << at;
    }
}

namespace {

// The one message in `box`/new/ ("" and a test failure when there is not exactly one).
std::string only_message(const std::string& box) {
    std::vector<fs::path> files;
    for (auto& e : fs::directory_iterator(box + "/new")) files.push_back(e.path());
    EXPECT_EQ(files.size(), 1u) << box;
    if (files.size() != 1) return "";
    std::ifstream in(files[0], std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// "" when `got` is `want`, else where they first differ and the octets there (the files are too
// large to print whole).
std::string first_difference(const std::string& got, const std::string& want) {
    if (got == want) return "";
    const auto at = static_cast<std::size_t>(std::mismatch(got.begin(), got.end(), want.begin(), want.end()).first -
                                             got.begin());
    auto around = [at](const std::string& s) { return ::testing::PrintToString(s.substr(at < 8 ? 0 : at - 8, 24)); };
    return "sizes " + std::to_string(got.size()) + " and " + std::to_string(want.size()) + ", first difference at " +
           std::to_string(at) + ": got " + around(got) + ", want " + around(want);
}

// `s` with every CRLF as LF, octet by octet: what a maildir file holds.
std::string crlf_to_lf(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n')) out += s[i];
    return out;
}

}  // namespace

// A maildir file has LF line ends, like Postfix's local(8), Dovecot's LDA and qmail (mail
// tools grep, formail and procmail it): every CRLF of the prefix and the content is written
// as LF. A bare CR (also one before a CRLF, or at the very end) and a bare LF stay as they are.
TEST(maildir, the_file_has_lf_line_ends) {
    test::temp_dir d;
    auto o = delivery::deliver_maildir(d.path, "bob", "Return-Path: <a@b>\r\nDelivered-To: bob@x.test\r\n",
                                       "Subject: x\r\nX-Cr: a\rb\r\nX-Lf: c\nd\r\n\r\nbody\r\r\nlast\r", "mx.test");
    ASSERT_EQ(o.result, delivery::outcome::kind::sent) << o.reason;
    EXPECT_EQ(only_message(d.path + "/bob"), "Return-Path: <a@b>\nDelivered-To: bob@x.test\n"
                                             "Subject: x\nX-Cr: a\rb\nX-Lf: c\nd\n\nbody\r\nlast\r");
}

// A CR ending the prefix and an LF starting the content are one CRLF; a CR ending the prefix
// before anything else stays.
TEST(maildir, a_crlf_split_between_prefix_and_content_is_one_line_end) {
    test::temp_dir d;
    ASSERT_EQ(delivery::deliver_maildir(d.path, "a", "P: 1\r", "\nbody\r\n", "h").result, delivery::outcome::kind::sent);
    ASSERT_EQ(delivery::deliver_maildir(d.path, "b", "P: 1\r", "body\r\n", "h").result, delivery::outcome::kind::sent);
    ASSERT_EQ(delivery::deliver_maildir(d.path, "c", "P: 1\r", "", "h").result, delivery::outcome::kind::sent);
    EXPECT_EQ(only_message(d.path + "/a"), "P: 1\nbody\n");
    EXPECT_EQ(only_message(d.path + "/b"), "P: 1\rbody\n");
    EXPECT_EQ(only_message(d.path + "/c"), "P: 1\r");
}

// The file is converted into a buffer of maildir_write_chunk octets, written whenever it
// fills: a CRLF (or a bare CR) whose octets fall on either side of a chunk's end, in the
// input or in the output, is converted like any other.
TEST(maildir, a_crlf_at_a_write_chunk_boundary) {
    constexpr std::size_t chunk = delivery::maildir_write_chunk;
    test::temp_dir d;
    int n = 0;
    for (std::size_t at = chunk - 3; at <= chunk + 2; ++at)
        for (const std::string end : {"\r\n", "\r", "\r\r\n"}) {
            // The CR at octet `at` of the content (and, with an empty prefix, of the file);
            // then 200 CRLFs more, so the content's second chunk ends somewhere else in the file.
            std::string content = std::string(at, 'x') + end + "y";
            for (int i = 0; i < 200; ++i) content += "\r\n" + std::string(500, 'z');
            const std::string box = "u" + std::to_string(n++);
            auto o = delivery::deliver_maildir(d.path, box, "", content, "h");
            ASSERT_EQ(o.result, delivery::outcome::kind::sent) << o.reason;
            EXPECT_EQ(first_difference(only_message(d.path + "/" + box), crlf_to_lf(content)), "") << "CR at " << at;
        }
}

// A large message (8 MiB, more than a hundred chunks) of CRLFs, bare CRs, bare LFs and runs
// of CRs comes out exactly as the content with CRLF -> LF, nothing else changed.
TEST(maildir, a_large_message_round_trips_with_crlf_as_lf) {
    std::mt19937 rng(20240611);
    std::string content(8u << 20, 'a');
    for (char& c : content) {
        const unsigned r = rng() % 64;
        c = r < 4 ? '\r' : r < 7 ? '\n' : static_cast<char>(r < 8 ? 0 : 'a' + r % 26);
    }
    for (std::size_t i = 0; i + 2 < content.size(); i += 1 + rng() % 150) content.replace(i, 2, "\r\n");
    const std::string prefix = "Return-Path: <a@b>\r\nDelivered-To: big@x.test\r\n";
    test::temp_dir d;
    auto o = delivery::deliver_maildir(d.path, "big", prefix, content, "h");
    ASSERT_EQ(o.result, delivery::outcome::kind::sent) << o.reason;
    const std::string want = crlf_to_lf(prefix + content);
    EXPECT_EQ(first_difference(only_message(d.path + "/big"), want), "");
    EXPECT_LT(want.size(), prefix.size() + content.size() - 8 * 1024 * 8);  // many CRLFs were converted
}

// A write that fails after some chunks were written (here the file size limit, EFBIG) is a
// transient failure, and the partial file is removed from tmp/: nothing reaches new/.
TEST(maildir, a_failed_write_is_transient_and_leaves_no_file) {
    test::temp_dir d;
    rlimit old{};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
    rlimit small = old;
    small.rlim_cur = 3 * delivery::maildir_write_chunk + 100;
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    std::string content;
    while (content.size() < 8 * delivery::maildir_write_chunk) content += std::string(70, 'x') + "\r\n";
    auto o = delivery::deliver_maildir(d.path, "bob", "P: 1\r\n", content, "h");
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    EXPECT_EQ(o.result, delivery::outcome::kind::transient);
    EXPECT_EQ(o.dsn, "4.3.1");  // a file-size limit, like a full disk or a quota
    EXPECT_NE(o.reason.find("maildir write " + d.path + "/bob/tmp/"), std::string::npos) << o.reason;
    EXPECT_TRUE(fs::is_empty(d.path + "/bob/tmp"));
    EXPECT_TRUE(fs::is_empty(d.path + "/bob/new"));
}
