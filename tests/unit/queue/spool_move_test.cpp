// tests/unit/queue/spool_move_test.cpp - spool::move between queue/ and hold/ (link, fsync the
// new folder, unlink, fsync the old one) and the start-up that finds a move cut short.
// The spool may be on ext4 without a journal: a rename's removal from queue/ can reach the disk
// before its entry in hold/, and a power cut then leaves the message in neither folder. What a
// unit test cannot show is the order in which a real disk writes directory blocks; what it
// shows, through the spool's fsync hook (called just before each fsync, with its path), is
// the order of the operations: each folder is fsynced while the file still has its other
// name, so whatever part of the move reached the disk, one durable name is left.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "queue/spool.hpp"
#include "../test_util.hpp"
#include "spool_test_util.hpp"

using namespace postern;
namespace fs = std::filesystem;

namespace {

using spool_move = test::spool_fixture;

struct seen_sync {
    std::string dir;
    bool in_queue, in_hold;
};

}  // namespace

TEST_F(spool_move, each_folder_is_fsynced_while_the_file_keeps_its_other_name) {
    const std::string id = test::commit_one(*sp, queue::area::active);
    const std::string q = sp->path(id, queue::area::active), h = sp->path(id, queue::area::hold);
    std::vector<seen_sync> syncs;
    {
        test::fsync_hook hook([&](const std::string& p) {
            syncs.push_back({p, fs::exists(q), fs::exists(h)});
            return 0;
        });
        const auto m = sp->move(id, queue::area::active, queue::area::hold);
        EXPECT_TRUE(m.moved);
        EXPECT_FALSE(m.failure);
    }
    ASSERT_EQ(syncs.size(), 2u) << "expected an fsync of hold/, then one of queue/";
    EXPECT_EQ(syncs[0].dir, d.path + "/hold");
    EXPECT_TRUE(syncs[0].in_queue) << "queue/ID was gone before hold/ was fsynced: a power cut could lose both";
    EXPECT_TRUE(syncs[0].in_hold);
    EXPECT_EQ(syncs[1].dir, d.path + "/queue");
    EXPECT_FALSE(syncs[1].in_queue);
    EXPECT_TRUE(syncs[1].in_hold);
    EXPECT_FALSE(fs::exists(q));
    EXPECT_TRUE(fs::exists(h));
    auto m = sp->load(id, queue::area::hold);
    ASSERT_TRUE(m.ok()) << m.error_message();
    EXPECT_EQ(m->content(), "x");
}

TEST_F(spool_move, failed_fsync_of_the_new_folder_leaves_the_message_where_it_was) {
    const std::string id = test::commit_one(*sp, queue::area::active);
    {
        test::fsync_hook hook([](const std::string& p) { return p.ends_with("/hold") ? EIO : 0; });
        const auto m = sp->move(id, queue::area::active, queue::area::hold);
        EXPECT_FALSE(m.moved) << "held although hold/ID may not survive a power cut";
        ASSERT_TRUE(m.failure);
        EXPECT_EQ(m.failure->errnum, EIO);
    }
    EXPECT_TRUE(sp->exists(id, queue::area::active));
    EXPECT_FALSE(sp->exists(id, queue::area::hold));
}

TEST_F(spool_move, taking_back_the_new_name_is_synced_too) {
    // After a failed fsync of hold/ the new name is unlinked again; unsynced, a power cut
    // could bring hold/ID back, and open() keeps the held name: held although the operator
    // was told it was not.
    const std::string id = test::commit_one(*sp, queue::area::active);
    const std::string h = sp->path(id, queue::area::hold);
    std::vector<bool> hold_there;  // at each fsync of hold/
    {
        test::fsync_hook hook([&](const std::string& p) {
            if (!p.ends_with("/hold")) return 0;
            hold_there.push_back(fs::exists(h));
            return hold_there.size() == 1 ? EIO : 0;
        });
        const auto m = sp->move(id, queue::area::active, queue::area::hold);
        EXPECT_FALSE(m.moved);
        ASSERT_TRUE(m.failure);
    }
    ASSERT_EQ(hold_there.size(), 2u) << "hold/ not fsynced after hold/ID was taken back";
    EXPECT_TRUE(hold_there[0]);
    EXPECT_FALSE(hold_there[1]);
    EXPECT_FALSE(fs::exists(h));
}

TEST_F(spool_move, failed_fsync_of_the_old_folder_is_a_move_not_durable_yet) {
    const std::string id = test::commit_one(*sp, queue::area::hold);
    {
        test::fsync_hook hook([](const std::string& p) { return p.ends_with("/hold") ? EIO : 0; });
        const auto m = sp->move(id, queue::area::hold, queue::area::active);
        EXPECT_TRUE(m.moved);
        ASSERT_TRUE(m.failure) << "the removal from hold/ may not be durable: not said";
        EXPECT_EQ(m.failure->errnum, EIO);
    }
    EXPECT_TRUE(sp->exists(id, queue::area::active));
    EXPECT_FALSE(sp->exists(id, queue::area::hold));
}

TEST_F(spool_move, message_removed_by_its_delivery_pass_during_a_hold_is_not_held) {
    // A pass delivered every recipient and unlinked queue/ID (spool::remove) between the
    // link into hold/ and the unlink: the held name would deliver it all again on release.
    const std::string id = test::commit_one(*sp, queue::area::active);
    {
        test::fsync_hook hook([&](const std::string& p) {
            if (p.ends_with("/hold") && sp->exists(id, queue::area::active)) {
                EXPECT_TRUE(sp->remove(id, queue::area::active));
            }
            return 0;
        });
        const auto m = sp->move(id, queue::area::active, queue::area::hold);
        EXPECT_FALSE(m.moved);
        EXPECT_FALSE(m.failure);
    }
    EXPECT_FALSE(sp->exists(id, queue::area::hold)) << "a delivered message was left on hold";
    EXPECT_FALSE(sp->exists(id, queue::area::active));
}

TEST(spool_start_up, keeps_the_held_name_of_a_move_cut_short) {
    // A crash between the link and the unlink (of a hold, or of a release): the same file in
    // both folders. The hold wins: queue/ID goes, hold/ID and the state stay.
    test::temp_dir d;
    std::string id;
    {
        auto sp = queue::spool::open(d.path);
        ASSERT_TRUE(sp.ok());
        id = test::commit_one(**sp, queue::area::hold);
        ASSERT_FALSE((*sp)->write_state(id, std::vector<queue::rcpt_state>(2)));
    }
    const std::string q = d.path + "/queue/" + id, h = d.path + "/hold/" + id;
    ASSERT_EQ(::link(h.c_str(), q.c_str()), 0);
    auto sp = queue::spool::open(d.path);
    ASSERT_TRUE(sp.ok()) << sp.error_message();
    EXPECT_FALSE(fs::exists(q)) << "a held message is also in queue/: it would be delivered";
    EXPECT_TRUE(fs::exists(h));
    EXPECT_TRUE(fs::exists(d.path + "/state/" + id));
    EXPECT_EQ((*sp)->list(queue::area::active), std::vector<std::string>{});
}

TEST(spool_start_up, two_different_files_under_one_id_are_left_alone) {
    // Not a move's leftover (commits refuse an id present in either folder): nothing is
    // removed by name alone.
    test::temp_dir d;
    { ASSERT_TRUE(queue::spool::open(d.path).ok()); }
    std::ofstream(d.path + "/queue/0123456789ABCDEF0") << "one";
    std::ofstream(d.path + "/hold/0123456789ABCDEF0") << "another";
    ASSERT_TRUE(queue::spool::open(d.path).ok());
    EXPECT_TRUE(fs::exists(d.path + "/queue/0123456789ABCDEF0"));
    EXPECT_TRUE(fs::exists(d.path + "/hold/0123456789ABCDEF0"));
}

TEST_F(spool_move, move_onto_another_file_with_the_id_is_refused) {
    const std::string id = test::commit_one(*sp, queue::area::active);
    std::ofstream(d.path + "/hold/" + id) << "another";
    const auto m = sp->move(id, queue::area::active, queue::area::hold);
    EXPECT_FALSE(m.moved);
    ASSERT_TRUE(m.failure);
    EXPECT_EQ(m.failure->errnum, EEXIST);
    EXPECT_TRUE(sp->exists(id, queue::area::active));
    std::ifstream in(d.path + "/hold/" + id);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "another");
}
