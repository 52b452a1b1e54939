// tests/unit/queue/spool_ids_test.cpp - a queue id is never reused over a message that has it
// (a clock stepped back across a restart can repeat one), and a file whose presence cannot be
// read (access(2) fails with another error than ENOENT) counts as there.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

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
using spool_ids = test::spool_fixture;

TEST_F(spool_ids, commit_never_replaces_a_message_that_has_its_id) {
    const std::string id = test::commit_one(*sp, queue::area::active);  // content "x"
    auto again = test::sample(id);
    again.size = 5;
    for (auto where : {queue::area::active, queue::area::hold}) {
        const auto f = sp->commit(again, {"later"}, where);
        ASSERT_TRUE(f) << "a second message committed under an id in use";
        EXPECT_EQ(f->errnum, EEXIST);  // not ENOSPC: answered 451 4.3.0, the client sends again
        EXPECT_NE(f->message.find(id), std::string::npos) << f->message;
    }
    auto m = sp->load(id, queue::area::active);
    ASSERT_TRUE(m.ok()) << m.error_message();
    EXPECT_EQ(m->content(), "x") << "the acknowledged message was replaced";
    EXPECT_FALSE(sp->exists(id, queue::area::hold));
    EXPECT_TRUE(fs::is_empty(d.path + "/tmp"));

    // The same the other way round: an id held already is not committed to queue/.
    const std::string held = test::commit_one(*sp, queue::area::hold);
    auto h = test::sample(held);
    h.size = 5;
    ASSERT_TRUE(sp->commit(h, {"later"}, queue::area::active));
    EXPECT_FALSE(sp->exists(held, queue::area::active));
}

TEST_F(spool_ids, only_a_missing_file_is_not_there) {
    // A symbolic link to itself: access(2) fails with ELOOP (as EIO would on a bad disk; the
    // tests run as root, so EACCES is not available).
    const std::string id = "0123456789ABCDEF0";
    fs::create_symlink(id, d.path + "/queue/" + id);
    EXPECT_TRUE(sp->exists(id, queue::area::active)) << "an unreadable entry taken for a missing one";
    EXPECT_FALSE(sp->exists(id, queue::area::hold));
}

TEST_F(spool_ids, commit_reports_the_error_of_an_id_it_cannot_look_up) {
    // hold/ID cannot be looked up (ELOOP, as EIO would): the commit fails with that error, not
    // with "already in the spool (clock stepped back?)", and leaves nothing behind.
    const std::string id = "0123456789ABCDEF0";
    fs::create_symlink(id, d.path + "/hold/" + id);
    EXPECT_EQ(sp->probe(id, queue::area::hold).is, queue::presence::kind::unknown);
    EXPECT_EQ(sp->probe(id, queue::area::hold).errnum, ELOOP);
    auto e = test::sample(id);
    e.size = 1;
    const auto f = sp->commit(e, {"x"}, queue::area::active);
    ASSERT_TRUE(f) << "committed under an id that may be held";
    EXPECT_EQ(f->errnum, ELOOP);
    EXPECT_EQ(f->message.find("clock stepped back"), std::string::npos) << f->message;
    EXPECT_NE(f->message.find(std::strerror(ELOOP)), std::string::npos) << f->message;
    EXPECT_FALSE(fs::exists(d.path + "/queue/" + id));
    EXPECT_TRUE(fs::is_empty(d.path + "/tmp"));
}

TEST(spool_start_up, keeps_the_state_of_a_message_it_cannot_see) {
    // The orphan cleanup removes state/ID only when neither queue/ID nor hold/ID is there; an
    // access(2) error is not "gone" (the message's sent recipients would be delivered again).
    test::temp_dir d;
    const std::string id = "0123456789ABCDEF0";
    { ASSERT_TRUE(queue::spool::open(d.path).ok()); }
    fs::create_symlink(id, d.path + "/queue/" + id);
    std::ofstream(d.path + "/state/" + id) << "POSTERN-STATE 1\n0 sent 1 0 250 ok\n";
    ASSERT_TRUE(queue::spool::open(d.path).ok());
    EXPECT_TRUE(fs::exists(d.path + "/state/" + id)) << "the state of a message that may be there was deleted";
}
