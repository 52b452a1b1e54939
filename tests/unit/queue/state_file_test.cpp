// tests/unit/queue/state_file_test.cpp - a state file names its message and counts its lines
// (queue/state_file.hpp): bytes of another message's state file, or a file cut short, are
// damaged (every recipient queued), never taken for this message's state.
// What these tests cannot show is a real power cut leaving a freed block under a new inode;
// they put such bytes in place by hand, as that would.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "queue/spool.hpp"
#include "queue/state_file.hpp"
#include "../test_util.hpp"
#include "spool_test_util.hpp"

using namespace postern;
namespace fs = std::filesystem;
using state_file = test::spool_fixture;

namespace {

std::string read_all(const std::string& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_F(state_file, another_messages_state_is_damaged_not_taken) {
    const std::string a = test::commit_one(*sp, queue::area::active);
    const std::string b = test::commit_one(*sp, queue::area::active);
    ASSERT_FALSE(sp->write_state(a, test::bob_sent_carol_deferred(), {"mx.partner.test:25"}));
    // b's state file with a's bytes (a freed block under b's new inode after a power cut)
    std::ofstream(d.path + "/state/" + b) << read_all(d.path + "/state/" + a);
    std::string damaged;
    std::set<std::string> hosts{"stale"};
    auto st = sp->read_state(b, 2, &hosts, &damaged);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ((*st)[0].status, queue::rcpt_status::queued) << "b's bob taken as sent from a's state file";
    EXPECT_EQ((*st)[1].status, queue::rcpt_status::queued);
    EXPECT_NE(damaged.find("another message"), std::string::npos) << damaged;
    EXPECT_TRUE(hosts.empty());
    // a's own file reads as written
    auto own = sp->read_state(a, 2, &hosts, &damaged);
    ASSERT_TRUE(own.ok());
    EXPECT_EQ((*own)[0].status, queue::rcpt_status::sent);
    EXPECT_EQ(hosts, std::set<std::string>{"mx.partner.test:25"});
}

TEST_F(state_file, state_ending_in_a_short_line_reads_as_damaged) {
    // What the runner and `queue list` read: all recipients queued and a reason, not an
    // exception (which failed every pass of the message and the whole `queue list`).
    const std::string id = test::commit_one(*sp, queue::area::active);
    std::ofstream(d.path + "/state/" + id) << "POSTERN-STATE 2 " << id << "\n\n";
    std::string damaged;
    auto st = sp->read_state(id, 2, nullptr, &damaged);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ((*st)[0].status, queue::rcpt_status::queued);
    EXPECT_EQ((*st)[1].status, queue::rcpt_status::queued);
    EXPECT_NE(damaged.find("trailer"), std::string::npos) << damaged;
}

TEST(state_text, written_file_names_its_message_and_counts_its_lines) {
    const std::string text = queue::seal_state("0123456789ABCDEF0", queue::format_state(test::bob_sent_carol_deferred(),
                                                                                        {"mx.partner.test:25"}));
    EXPECT_EQ(text.substr(0, text.find('\n')), "POSTERN-STATE 2 0123456789ABCDEF0");
    EXPECT_TRUE(text.ends_with("\nend 3\n")) << text;  // the tlsfail line counts too
    auto back = queue::unseal_state(text, "0123456789ABCDEF0");
    ASSERT_TRUE(back.ok()) << back.error_message();
    EXPECT_EQ(*back, queue::format_state(test::bob_sent_carol_deferred(), {"mx.partner.test:25"}));
}

TEST(state_text, trailer_counts_the_tlsfail_lines_too) {
    // A tlsfail line lost (a torn or shorter block) is damage as much as a recipient line.
    const std::string id = "0123456789ABCDEF0";
    const std::string text = queue::seal_state(
        id, queue::format_state(test::bob_sent_carol_deferred(), {"mx1.partner.test:25 100", "mx2.partner.test:25 200"}));
    EXPECT_TRUE(text.ends_with("\nend 4\n")) << text;
    const std::string line = "tlsfail mx2.partner.test:25 200\n";
    const std::size_t at = text.find(line);
    ASSERT_NE(at, std::string::npos) << text;
    const std::string without = text.substr(0, at) + text.substr(at + line.size());
    EXPECT_FALSE(queue::unseal_state(without, id).ok()) << "a state file missing a tlsfail line taken as whole";
}

TEST(state_text, file_cut_short_or_miscounted_is_damaged) {
    const std::string id = "0123456789ABCDEF0";
    const std::string text = queue::seal_state(id, queue::format_state(test::bob_sent_carol_deferred()));
    const std::size_t trailer = text.rfind("end ");
    // cut at every line boundary before the trailer (a shorter file's length over longer bytes)
    for (std::size_t nl = text.find('\n'); nl < trailer; nl = text.find('\n', nl + 1))
        EXPECT_FALSE(queue::unseal_state(text.substr(0, nl + 1), id).ok()) << text.substr(0, nl + 1);
    EXPECT_FALSE(queue::unseal_state(text.substr(0, text.size() - 1), id).ok());
    EXPECT_FALSE(queue::unseal_state(text.substr(0, trailer) + "end 3\n", id).ok());
    EXPECT_FALSE(queue::unseal_state(text.substr(0, trailer) + "end 2x\n", id).ok());
    EXPECT_FALSE(queue::unseal_state(text + std::string(8, '\0'), id).ok());  // zeros past the end
    EXPECT_FALSE(queue::unseal_state(text, "0123456789ABCDEF1").ok());
    EXPECT_TRUE(queue::unseal_state("POSTERN-STATE 2 " + id + "\nend 0\n", id).ok());  // nothing attempted yet
}

TEST(state_text, last_line_shorter_than_the_trailer_word_is_damaged_not_thrown) {
    // A stale block can end in an empty or short line: damage ("every recipient queued"),
    // never an exception, which made every pass of the message fail and `queue list` with it.
    const std::string id = "0123456789ABCDEF0";
    const std::string header = "POSTERN-STATE 2 " + id + "\n";
    for (const std::string tail : {"\n", "a\n", "ab\n", "end\n", "rcpt 0 sent\n\n", "rcpt 0 sent\nen\n"}) {
        result<std::string> r = error{"not run"};
        EXPECT_NO_THROW(r = queue::unseal_state(header + tail, id)) << tail;
        EXPECT_FALSE(r.ok()) << tail;
    }
}

TEST(state_file_start_up, seals_the_previous_versions_files_keeping_their_content) {
    // Written before the upgrade: no id, no trailer. spool::open() seals it for its message,
    // fsynced (the file, then state/), and it reads back as it was.
    test::temp_dir d;
    std::string id;
    {
        auto sp = queue::spool::open(d.path);
        ASSERT_TRUE(sp.ok());
        id = test::commit_one(**sp, queue::area::active);
    }
    // A spool of the previous version: no marker yet (this open() made one).
    ASSERT_EQ(::unlink((d.path + "/state-sealed").c_str()), 0);
    std::ofstream(d.path + "/state/" + id) << "POSTERN-STATE 1\ntlsfail mx.partner.test:25\n0 sent 1 0 250 ok\n";
    std::vector<std::string> synced;
    std::unique_ptr<queue::spool> sp;
    {
        test::fsync_hook hook([&](const std::string& p) {
            synced.push_back(p);
            return 0;
        });
        auto opened = queue::spool::open(d.path);
        ASSERT_TRUE(opened.ok()) << opened.error_message();
        sp = std::move(*opened);
    }
    const std::string text = read_all(d.path + "/state/" + id);
    EXPECT_EQ(text, "POSTERN-STATE 2 " + id + "\ntlsfail mx.partner.test:25\n0 sent 1 0 250 ok\nend 2\n");
    // (the folder above and the spool folder first: open() fsyncs them at every start)
    EXPECT_EQ(synced, (std::vector<std::string>{std::filesystem::path(d.path).parent_path().string(), d.path,
                                                d.path + "/state/." + id + ".tmp", d.path + "/state",
                                                d.path + "/state-sealed", d.path}));
    std::string damaged;
    std::set<std::string> hosts;
    auto st = sp->read_state(id, 2, &hosts, &damaged);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(damaged.empty()) << damaged;
    EXPECT_EQ((*st)[0].status, queue::rcpt_status::sent);
    EXPECT_EQ((*st)[1].status, queue::rcpt_status::queued);
    EXPECT_EQ(hosts, std::set<std::string>{"mx.partner.test:25"});
    // its tlsfail line without a time keeps its meaning: a failure long ago (fallback due)
    EXPECT_EQ(queue::tls_failure_times(hosts, 1764460000), (queue::tls_failures{{"mx.partner.test:25", 0}}));
}

TEST(state_file_start_up, seals_only_once_a_later_previous_format_file_is_a_stale_block) {
    // The spool was sealed at an earlier start-up (the marker). A power cut later leaves a block
    // of the previous format under state/ID (another message's, freed before the upgrade):
    // the next start-up must not seal it as this message's, whose bob it says was sent.
    test::temp_dir d;
    std::string id;
    {
        auto sp = queue::spool::open(d.path);
        ASSERT_TRUE(sp.ok());
        id = test::commit_one(**sp, queue::area::active);
    }
    ASSERT_EQ(::access((d.path + "/state-sealed").c_str(), F_OK), 0) << "open() marks the spool sealed";
    std::ofstream(d.path + "/state/" + id) << "POSTERN-STATE 1\n0 sent 1 0 250 ok\n";
    auto sp = queue::spool::open(d.path);
    ASSERT_TRUE(sp.ok()) << sp.error_message();
    EXPECT_EQ(read_all(d.path + "/state/" + id), "POSTERN-STATE 1\n0 sent 1 0 250 ok\n") << "sealed again";
    std::string damaged;
    auto st = (*sp)->read_state(id, 2, nullptr, &damaged);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ((*st)[0].status, queue::rcpt_status::queued) << "a stale block taken as this message's state";
    EXPECT_FALSE(damaged.empty());
}

TEST_F(state_file, previous_versions_file_after_start_up_is_damaged) {
    // After open() sealed every file of the previous version, such bytes under state/ID are a
    // block freed before the upgrade (a power cut), not this message's state.
    const std::string id = test::commit_one(*sp, queue::area::active);
    std::ofstream(d.path + "/state/" + id) << "POSTERN-STATE 1\ntlsfail mx.partner.test:25\n0 sent 1 0 250 ok\n";
    std::string damaged;
    std::set<std::string> hosts{"stale"};
    auto st = sp->read_state(id, 2, &hosts, &damaged);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ((*st)[0].status, queue::rcpt_status::queued) << "an unchecked old-format file taken as this message's";
    EXPECT_NE(damaged.find("previous format"), std::string::npos) << damaged;
    EXPECT_TRUE(hosts.empty());
}
