// tests/unit/control/control_test.cpp - the queue control protocol without sockets: request
// lines, JSON and table views, handle() against a fake queue manager, snapshot() of a real spool.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>
#include <fstream>
#include <map>

#include "control/control.hpp"
#include "queue/spool.hpp"
#include "../test_util.hpp"

using namespace postern;
using control::message_view;
using control::recipient_view;
using control::verb;

namespace {

// --- a scripted queue manager ------------------------------------------------------------

class fake_queue final : public control::queue_control {
public:
    std::vector<message_view> msgs;
    std::vector<std::string> calls;  // "retry ID 0", "hold ID", ...
    std::string fail;                // when set, every mutating call and show() fail with it
    bool throw_on_list = false;

    std::vector<message_view> list() override {
        calls.push_back("list");
        if (throw_on_list) throw std::runtime_error("disk on fire");
        return msgs;
    }
    result<message_view> show(const std::string& id) override {
        calls.push_back("show " + id);
        if (!fail.empty()) return error{fail};
        for (const auto& m : msgs)
            if (m.id == id) return m;
        return error{id + ": no such message in the queue"};
    }
    result<unsigned> retry(const std::string& id, bool all) override {
        calls.push_back("retry " + id + (all ? " all" : ""));
        if (!fail.empty()) return error{fail};
        return all ? static_cast<unsigned>(msgs.size()) : 1u;
    }
    result<void> remove(const std::string& id) override { return mutate("delete", id); }
    result<void> hold(const std::string& id) override { return mutate("hold", id); }
    result<void> release(const std::string& id) override { return mutate("release", id); }

private:
    result<void> mutate(const std::string& what, const std::string& id) {
        calls.push_back(what + " " + id);
        if (!fail.empty()) return error{fail};
        return {};
    }
};

// 2026-11-28T14:21:10Z and five minutes later.
constexpr std::int64_t t_arrived = 1795875670;
constexpr std::int64_t t_next = 1795875970;

message_view sample() {
    message_view m;
    m.id = "0192F3A4B5C6D7E8F";
    m.sender = "alice@example.test";
    m.size = 5120;
    m.arrived = t_arrived;
    m.held = false;
    m.recipients = {
        {"bob@localhost", "sent", 1, 0, "250 2.0.0 delivered to maildir"},
        {"carol@partner.test", "deferred", 2, t_next, "451 4.3.0 \"busy\" try later"},
    };
    return m;
}

}  // namespace

// --- request lines -----------------------------------------------------------------------

TEST(control_request, parses_every_verb) {
    auto r = control::parse_request("list json\n");
    ASSERT_TRUE(r.ok()) << r.error_message();
    EXPECT_EQ(r->what, verb::list);
    EXPECT_TRUE(r->json);

    r = control::parse_request("list table");
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->json);

    r = control::parse_request("show 0192F3A4B5C6D7E8F json\r\n");
    ASSERT_TRUE(r.ok()) << r.error_message();
    EXPECT_EQ(r->what, verb::show);
    EXPECT_EQ(r->id, "0192F3A4B5C6D7E8F");
    EXPECT_TRUE(r->json);

    r = control::parse_request("retry --all\n");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->what, verb::retry);
    EXPECT_TRUE(r->all);
    EXPECT_EQ(r->id, "");

    r = control::parse_request("retry ABC\n");
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->all);
    EXPECT_EQ(r->id, "ABC");

    const std::pair<const char*, verb> ids[] = {{"delete", verb::del}, {"hold", verb::hold}, {"release", verb::release}};
    for (auto [word, v] : ids) {
        r = control::parse_request(std::string(word) + " 0A\n");
        ASSERT_TRUE(r.ok()) << word;
        EXPECT_EQ(r->what, v);
        EXPECT_EQ(r->id, "0A");
    }
}

TEST(control_request, normalises_lower_case_ids) {
    auto r = control::parse_request("hold 0192f3a4b5c6d7e8f\n");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->id, "0192F3A4B5C6D7E8F");
}

TEST(control_request, rejects_bad_lines) {
    const char* bad[] = {
        "",                        // empty
        "\n",                      //
        "list",                    // format missing
        "list xml",                // unknown format
        "list json extra",         // too many words
        "list  json",              // double space
        " list json",              // leading space
        "list json ",              // trailing space
        "show json",               // id missing
        "show ../../etc/passwd json",  // not an id: never reaches a path
        "show 0G json",            // not hex
        "retry",                   //
        "retry --ALL",             //
        "retry A B",               //
        "delete",                  //
        "delete *",                //
        "hold A\tB",               // control character
        "release A\x01",           //
        "frobnicate A",            // unknown verb
        "LIST json",               // verbs are lower case
    };
    for (const char* line : bad) EXPECT_FALSE(control::parse_request(line).ok()) << '"' << line << '"';
    EXPECT_FALSE(control::parse_request("delete " + std::string(65, 'A')).ok());
    EXPECT_TRUE(control::parse_request("delete " + std::string(64, 'A')).ok());
}

TEST(control_request, error_messages_name_the_problem) {
    EXPECT_EQ(control::parse_request("").error_message(), "empty request");
    EXPECT_EQ(control::parse_request("frob x").error_message(), "unknown request 'frob'");
    EXPECT_EQ(control::parse_request("show X json").error_message(), "invalid queue id 'X'");
    EXPECT_EQ(control::parse_request("delete").error_message(), "usage: delete ID");
    EXPECT_EQ(control::parse_request("list yaml").error_message(), "unknown output format 'yaml' (json or table)");
    // what a client sent is echoed only in printable form
    EXPECT_EQ(control::parse_request("show \x1b[2J json").error_message(), "control character in request");
}

TEST(control_request, format_round_trips) {
    control::request reqs[7];
    reqs[0] = {verb::list, "", false, true};
    reqs[1] = {verb::list, "", false, false};
    reqs[2] = {verb::show, "0A1B", false, true};
    reqs[3] = {verb::retry, "", true, false};
    reqs[4] = {verb::retry, "FF", false, false};
    reqs[5] = {verb::del, "01", false, false};
    reqs[6] = {verb::release, "02", false, false};
    for (const auto& q : reqs) {
        std::string line = control::format_request(q);
        ASSERT_EQ(line.back(), '\n');
        auto p = control::parse_request(line);
        ASSERT_TRUE(p.ok()) << line << ": " << p.error_message();
        EXPECT_EQ(p->what, q.what) << line;
        EXPECT_EQ(p->id, q.id) << line;
        EXPECT_EQ(p->all, q.all) << line;
        if (q.what == verb::list || q.what == verb::show) {
            EXPECT_EQ(p->json, q.json) << line;
        }
    }
    EXPECT_EQ(control::format_request({verb::list, "", false, true}), "list json\n");
    EXPECT_EQ(control::format_request({verb::show, "AB", false, false}), "show AB table\n");
    EXPECT_EQ(control::format_request({verb::retry, "", true, false}), "retry --all\n");
    EXPECT_EQ(control::format_request({verb::del, "AB", false, false}), "delete AB\n");
    EXPECT_EQ(control::format_request({verb::hold, "AB", false, false}), "hold AB\n");
}

// --- time and JSON -----------------------------------------------------------------------

TEST(control_json, times_are_iso8601_utc) {
    EXPECT_EQ(control::format_time(0), "1970-01-01T00:00:00Z");
    EXPECT_EQ(control::format_time(t_arrived), "2026-11-28T14:21:10Z");
    EXPECT_EQ(control::format_time(951868799), "2000-02-29T23:59:59Z");
    EXPECT_EQ(control::format_time(-1), "1969-12-31T23:59:59Z");
    EXPECT_EQ(control::format_time(253402300799), "9999-12-31T23:59:59Z");
}

TEST(control_json, escapes_strings) {
    EXPECT_EQ(control::json_string("plain"), "\"plain\"");
    EXPECT_EQ(control::json_string("a\"b\\c"), R"("a\"b\\c")");
    EXPECT_EQ(control::json_string("\n\r\t\b\f"), R"("\n\r\t\b\f")");
    EXPECT_EQ(control::json_string(std::string("\x00\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
    EXPECT_EQ(control::json_string("/"), "\"/\"");  // no needless escapes
    // UTF-8 kept as is: 2, 3 and 4-byte sequences
    EXPECT_EQ(control::json_string("j\xc3\xb6rg@b\xc3\xbc" "cher.test \xe2\x82\xac \xf0\x9f\x93\xa7"),
              "\"j\xc3\xb6rg@b\xc3\xbc" "cher.test \xe2\x82\xac \xf0\x9f\x93\xa7\"");
    // invalid UTF-8 (stray continuation, truncated sequence, overlong, surrogate, > U+10FFFF) -> U+FFFD
    EXPECT_EQ(control::json_string("a\x80z"), R"("a\ufffdz")");
    EXPECT_EQ(control::json_string("a\xe2\x82"), R"("a\ufffd\ufffd")");
    EXPECT_EQ(control::json_string("\xc0\xaf"), R"("\ufffd\ufffd")");
    EXPECT_EQ(control::json_string("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");
    EXPECT_EQ(control::json_string("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");
    // C1 controls, line separators and bidirectional formatting characters escaped (review:
    // a reply with U+202E showed its text reordered in whatever rendered the document)
    EXPECT_EQ(control::json_string("a\xc2\x9b" "b\xe2\x80\xa8" "c\xe2\x80\xae" "d\xe2\x81\xa6" "e\xef\xbb\xbf" "f\xd8\x9c"),
              R"("a\u009bb\u2028c\u202ed\u2066e\ufefff\u061c")");
    EXPECT_EQ(control::json_string("\xe2\x80\x8d"), "\"\xe2\x80\x8d\"");  // U+200D ZWJ joins emoji: kept
}

TEST(control_json, exact_document) {
    const std::string expected =
        R"([{"id":"0192F3A4B5C6D7E8F","sender":"alice@example.test","size":5120,)"
        R"("arrived":"2026-11-28T14:21:10Z","held":false,"recipients":[)"
        R"({"address":"bob@localhost","status":"sent","attempts":1,"next_attempt":"",)"
        R"("last_reply":"250 2.0.0 delivered to maildir"},)"
        R"({"address":"carol@partner.test","status":"deferred","attempts":2,)"
        R"("next_attempt":"2026-11-28T14:26:10Z","last_reply":"451 4.3.0 \"busy\" try later"}]}])";
    EXPECT_EQ(control::to_json(std::vector<message_view>{sample()}), expected);
    EXPECT_EQ("[" + control::to_json(sample()) + "]", expected);
    EXPECT_EQ(control::to_json(std::vector<message_view>{}), "[]");
}

TEST(control_json, escapes_every_field) {
    message_view m;
    m.id = "AB";
    m.sender = "";  // null sender
    m.size = 0;
    m.arrived = 0;
    m.held = true;
    m.recipients = {{"\"odd\\local\"@x.test", "queued", 0, 0, std::string("550 \x1b[31mred\x00", 13)}};
    EXPECT_EQ(control::to_json(m),
              R"({"id":"AB","sender":"","size":0,"arrived":"1970-01-01T00:00:00Z","held":true,"recipients":[)"
              R"({"address":"\"odd\\local\"@x.test","status":"queued","attempts":0,"next_attempt":"",)"
              R"("last_reply":"550 \u001b[31mred\u0000"}]})");
}

// --- table -------------------------------------------------------------------------------

TEST(control_table, lists_messages_like_postqueue) {
    auto held = sample();
    held.id = "0192F3A4B5C6D7E90";
    held.held = true;
    held.sender = "";
    held.recipients = {{"dave@localhost", "queued", 0, 0, ""}};
    const std::string expected =
        "ID                      SIZE  ARRIVED               SENDER\n"
        "0192F3A4B5C6D7E8F       5120  2026-11-28T14:21:10Z  alice@example.test\n"
        "    sent     attempts=1 next=- bob@localhost (250 2.0.0 delivered to maildir)\n"
        "    deferred attempts=2 next=2026-11-28T14:26:10Z carol@partner.test (451 4.3.0 \"busy\" try later)\n"
        "0192F3A4B5C6D7E90!      5120  2026-11-28T14:21:10Z  <>\n"
        "    queued   attempts=0 next=- dave@localhost\n"
        "-- 2 messages\n";
    EXPECT_EQ(control::to_table(std::vector<message_view>{sample(), held}), expected);
    EXPECT_EQ(control::to_table(std::vector<message_view>{}), "-- 0 messages\n");
    EXPECT_EQ(control::to_table(std::vector<message_view>{sample()}).substr(
                  control::to_table(std::vector<message_view>{sample()}).rfind("--")),
              "-- 1 message\n");
}

TEST(control_table, neutralises_terminal_control) {
    auto m = sample();
    m.recipients = {{"b\xc3\xb6@x.test", "deferred", 1, 0, "421 \x1b]0;owned\x07 \xc2\x9b" "31m \xff back\\slash"}};
    std::string t = control::to_table(m);
    EXPECT_EQ(t.find('\x1b'), std::string::npos) << t;
    EXPECT_EQ(t.find('\x07'), std::string::npos) << t;
    EXPECT_NE(t.find("b\xc3\xb6@x.test"), std::string::npos) << t;  // UTF-8 kept
    EXPECT_NE(t.find("(421 \\x1B]0;owned\\x07 \\xC2\\x9B31m \\xFF back\\\\slash)"), std::string::npos) << t;
    // Review: a bidirectional override in a reply reordered the rest of the line on a terminal
    // ("Trojan Source", CVE-2021-42574); U+2066..U+2069, U+200E/F, U+061C and U+FEFF likewise.
    m.recipients = {{"x\xe2\x80\xae" "moc.elgoog@a.test", "deferred", 1, 0,
                     "451 \xe2\x81\xa6" "x\xe2\x81\xa9 \xe2\x80\x8f \xef\xbb\xbf \xd8\x9c"}};
    t = control::to_table(m);
    EXPECT_NE(t.find("x\\xE2\\x80\\xAEmoc.elgoog@a.test (451 \\xE2\\x81\\xA6x\\xE2\\x81\\xA9 \\xE2\\x80\\x8F \\xEF\\xBB\\xBF \\xD8\\x9C)"),
              std::string::npos)
        << t;
}

// --- handle() ----------------------------------------------------------------------------

namespace {
// An OK response as the protocol frames it: the payload's length in bytes, then the payload.
std::string ok(const std::string& payload) { return "OK " + std::to_string(payload.size()) + "\n" + payload; }
}  // namespace

TEST(control_handle, list_json_and_table) {
    fake_queue q;
    q.msgs = {sample()};
    EXPECT_EQ(control::handle(q, "list json\n"), ok(control::to_json(q.msgs) + "\n"));
    EXPECT_EQ(control::handle(q, "list table\n"), ok(control::to_table(q.msgs)));
    q.msgs.clear();
    EXPECT_EQ(control::handle(q, "list json\n"), ok("[]\n"));
    EXPECT_EQ(q.calls, (std::vector<std::string>{"list", "list", "list"}));
}

TEST(control_handle, show) {
    fake_queue q;
    q.msgs = {sample()};
    EXPECT_EQ(control::handle(q, "show 0192F3A4B5C6D7E8F json\n"), ok(control::to_json(sample()) + "\n"));
    EXPECT_EQ(control::handle(q, "show 0192f3a4b5c6d7e8f table\n"), ok(control::to_table(sample())));
    EXPECT_EQ(control::handle(q, "show 0A json\n"), "ERR 0A: no such message in the queue\n");
}

TEST(control_handle, mutating_verbs) {
    fake_queue q;
    q.msgs = {sample(), sample(), sample()};
    EXPECT_EQ(control::handle(q, "retry 0A\n"), ok("0A: scheduled for immediate delivery\n"));
    EXPECT_EQ(control::handle(q, "retry --all\n"), ok("3 messages scheduled for immediate delivery\n"));
    q.msgs.resize(1);
    EXPECT_EQ(control::handle(q, "retry --all\n"), ok("1 message scheduled for immediate delivery\n"));
    EXPECT_EQ(control::handle(q, "delete 0B\n"), ok("0B: deleted\n"));
    EXPECT_EQ(control::handle(q, "hold 0C\n"), ok("0C: placed on hold\n"));
    EXPECT_EQ(control::handle(q, "release 0D\n"), ok("0D: released from hold\n"));
    EXPECT_EQ(q.calls, (std::vector<std::string>{"retry 0A", "retry  all", "retry  all", "delete 0B", "hold 0C",
                                                 "release 0D"}));
}

TEST(control_handle, errors_from_the_queue_manager) {
    fake_queue q;
    q.fail = "0A: no such message in the queue";
    for (const char* line : {"retry 0A\n", "retry --all\n", "delete 0A\n", "hold 0A\n", "release 0A\n", "show 0A json\n"})
        EXPECT_EQ(control::handle(q, line), "ERR 0A: no such message in the queue\n") << line;
    // an error message always stays on one line
    q.fail = "two\nlines\r";
    EXPECT_EQ(control::handle(q, "hold 0A\n"), "ERR two lines \n");
}

TEST(control_handle, bad_requests_never_reach_the_queue_manager) {
    fake_queue q;
    EXPECT_EQ(control::handle(q, "frobnicate\n"), "ERR unknown request 'frobnicate'\n");
    EXPECT_EQ(control::handle(q, "delete ../x\n"), "ERR invalid queue id '../x'\n");
    EXPECT_EQ(control::handle(q, "\n"), "ERR empty request\n");
    EXPECT_TRUE(q.calls.empty());
}

TEST(control_handle, an_exception_becomes_an_error_reply) {
    fake_queue q;
    q.throw_on_list = true;
    EXPECT_EQ(control::handle(q, "list json\n"), "ERR internal error: disk on fire\n");
}

// --- response framing (the client's side) ------------------------------------------------

TEST(control_response, whole_answers) {
    auto r = control::parse_response(ok("[]\n"));
    ASSERT_TRUE(r.ok()) << r.error_message();
    EXPECT_TRUE(r->ok);
    EXPECT_EQ(r->text, "[]\n");
    r = control::parse_response("OK 0\n");  // an empty payload is whole too
    ASSERT_TRUE(r.ok()) << r.error_message();
    EXPECT_TRUE(r->ok);
    EXPECT_EQ(r->text, "");
    r = control::parse_response("ERR 0A: no such message in the queue\n");
    ASSERT_TRUE(r.ok()) << r.error_message();
    EXPECT_FALSE(r->ok);
    EXPECT_EQ(r->text, "0A: no such message in the queue");
    // what the server frames, the client reads back
    EXPECT_EQ(control::ok_response("a\nb\n"), ok("a\nb\n"));
    EXPECT_EQ(control::parse_response(control::ok_response("a\nb\n"))->text, "a\nb\n");
    EXPECT_EQ(control::err_response("two\nlines"), "ERR two lines\n");
}

TEST(control_response, an_answer_cut_anywhere_is_refused) {
    // Wherever the server stopped writing (shut down, write time-out, crash), the client must not
    // take the part it got for the whole: every proper prefix of every response is an error.
    fake_queue q;
    q.msgs = {sample(), sample()};
    std::vector<std::string> answers = {control::handle(q, "list json\n"), control::handle(q, "list table\n"),
                                        control::handle(q, "hold 0A\n")};
    q.fail = "0A: no such message in the queue";
    answers.push_back(control::handle(q, "show 0A json\n"));
    for (const std::string& whole : answers) {
        ASSERT_TRUE(control::parse_response(whole).ok()) << whole;
        for (std::size_t n = 0; n < whole.size(); ++n) {
            auto r = control::parse_response(std::string_view(whole).substr(0, n));
            EXPECT_FALSE(r.ok()) << n << " bytes of " << whole;
        }
    }
    const std::string json = answers[0];
    const std::size_t header = json.find('\n') + 1;
    auto r = control::parse_response(std::string_view(json).substr(0, header + 10));
    EXPECT_EQ(r.error_message(), "the server's answer was cut short (10 of " + std::to_string(json.size() - header) +
                                     " bytes; it may have stopped)");
    EXPECT_EQ(control::parse_response("").error_message(), "the server closed the connection without answering");
}

TEST(control_response, not_a_response) {
    for (const char* bad : {"OK 2\n[]\nmore", "OK x\n", "OK -1\n", "OK \n", "HELLO\n", "ERR a\nb\n",
                            "OK 99999999999999999999999\n"}) {
        auto r = control::parse_response(bad);
        ASSERT_FALSE(r.ok()) << bad;
        EXPECT_TRUE(r.error_message().starts_with("unexpected answer from the server: ")) << r.error_message();
    }
    // the unframed "OK\n" of a server from before the framing (an upgrade not yet restarted)
    EXPECT_EQ(control::parse_response("OK\n[]\n").error_message(),
              "the server answers in an older form: it is another version of postern (restart it after an upgrade)");
    // a terminal never gets control characters from it
    EXPECT_EQ(control::parse_response("\x1b]0;x\x07\n").error_message(),
              "unexpected answer from the server: \\x1B]0;x\\x07");
}

// --- snapshot() of a real spool ----------------------------------------------------------

namespace {

queue::envelope envelope_for(const std::string& id, std::vector<std::string> rcpts, std::uint64_t size) {
    queue::envelope e;
    e.id = id;
    e.arrived = t_arrived;
    e.sender = "alice@example.test";
    e.recipients = std::move(rcpts);
    e.client_ip = "127.0.0.1";
    e.helo = "client.test";
    e.size = size;
    return e;
}

}  // namespace

TEST(control_snapshot, reads_queue_hold_and_state) {
    test::temp_dir tmp;
    auto sp = queue::spool::open(tmp.path);
    ASSERT_TRUE(sp.ok()) << sp.error_message();
    queue::spool& s = **sp;

    // Committed out of id order, to see the sort.
    const std::string body = "Subject: hi\r\n\r\nhello\r\n";
    auto e2 = envelope_for("00000000000020000", {"dave@localhost"}, body.size());
    ASSERT_FALSE(s.commit(e2, {body}, queue::area::active));
    auto e1 = envelope_for("00000000000010000", {"bob@localhost", "carol@partner.test"}, body.size());
    ASSERT_FALSE(s.commit(e1, {body}, queue::area::active));
    auto e3 = envelope_for("00000000000030000", {"erin@localhost"}, body.size());
    e3.sender = "";
    ASSERT_FALSE(s.commit(e3, {body}, queue::area::active));
    ASSERT_TRUE(s.move(e3.id, queue::area::active, queue::area::hold).moved);

    std::vector<queue::rcpt_state> st(2);
    st[0] = {queue::rcpt_status::sent, 1, 0, "250 2.0.0 delivered to maildir"};
    st[1] = {queue::rcpt_status::deferred, 2, t_next, "451 4.3.0 try later"};
    ASSERT_FALSE(s.write_state(e1.id, st));

    auto v = control::snapshot(s);
    ASSERT_EQ(v.size(), 3u);
    EXPECT_EQ(v[0].id, e1.id);
    EXPECT_EQ(v[1].id, e2.id);
    EXPECT_EQ(v[2].id, e3.id);

    EXPECT_EQ(v[0].sender, "alice@example.test");
    EXPECT_EQ(v[0].size, body.size());
    EXPECT_EQ(v[0].arrived, t_arrived);
    EXPECT_FALSE(v[0].held);
    ASSERT_EQ(v[0].recipients.size(), 2u);
    EXPECT_EQ(v[0].recipients[0].address, "bob@localhost");
    EXPECT_EQ(v[0].recipients[0].status, "sent");
    EXPECT_EQ(v[0].recipients[0].attempts, 1u);
    EXPECT_EQ(v[0].recipients[0].next_attempt, 0);
    EXPECT_EQ(v[0].recipients[0].last_reply, "250 2.0.0 delivered to maildir");
    EXPECT_EQ(v[0].recipients[1].address, "carol@partner.test");
    EXPECT_EQ(v[0].recipients[1].status, "deferred");
    EXPECT_EQ(v[0].recipients[1].attempts, 2u);
    EXPECT_EQ(v[0].recipients[1].next_attempt, t_next);
    EXPECT_EQ(v[0].recipients[1].last_reply, "451 4.3.0 try later");

    // no state file: every recipient queued
    ASSERT_EQ(v[1].recipients.size(), 1u);
    EXPECT_EQ(v[1].recipients[0].status, "queued");
    EXPECT_EQ(v[1].recipients[0].attempts, 0u);
    EXPECT_EQ(v[1].recipients[0].last_reply, "");

    EXPECT_TRUE(v[2].held);
    EXPECT_EQ(v[2].sender, "");

    // The JSON of the snapshot is what `queue list --json` prints.
    EXPECT_NE(control::to_json(v).find(R"({"address":"carol@partner.test","status":"deferred","attempts":2,)"
                                       R"("next_attempt":"2026-11-28T14:26:10Z","last_reply":"451 4.3.0 try later"})"),
              std::string::npos);

    auto one = control::snapshot_one(s, e3.id);
    ASSERT_TRUE(one.ok()) << one.error_message();
    EXPECT_TRUE(one->held);
    EXPECT_EQ(one->recipients[0].address, "erin@localhost");
    one = control::snapshot_one(s, e1.id);
    ASSERT_TRUE(one.ok());
    EXPECT_EQ(one->recipients[1].status, "deferred");

    auto missing = control::snapshot_one(s, "0000000000009999F");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error_message(), "0000000000009999F: no such message in the queue");
    EXPECT_FALSE(control::snapshot_one(s, "../queue/x").ok());
}

TEST(control_snapshot, reads_only_the_header_of_large_messages) {
    test::temp_dir tmp;
    auto sp = queue::spool::open(tmp.path);
    ASSERT_TRUE(sp.ok());
    const std::string big(3u << 20, 'x');
    auto e = envelope_for("00000000000040000", {"bob@localhost"}, big.size());
    ASSERT_FALSE((*sp)->commit(e, {big}, queue::area::active));
    auto v = control::snapshot(**sp);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].size, big.size());
}

TEST(control_snapshot, damaged_files) {
    test::temp_dir tmp;
    auto sp = queue::spool::open(tmp.path);
    ASSERT_TRUE(sp.ok());
    queue::spool& s = **sp;
    const std::string body = "x\r\n";
    auto e = envelope_for("00000000000050000", {"bob@localhost"}, body.size());
    ASSERT_FALSE(s.commit(e, {body}, queue::area::active));
    // A damaged state record does not hide the message.
    std::ofstream(tmp.path + "/state/" + e.id) << "garbage\n";
    auto v = control::snapshot(s);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].recipients[0].status, "queued");
    // A damaged queue file is left out of the list, and `show` names the problem.
    std::ofstream(tmp.path + "/queue/00000000000060000") << "not a queue file\n\n";
    EXPECT_EQ(control::snapshot(s).size(), 1u);
    auto one = control::snapshot_one(s, "00000000000060000");
    ASSERT_FALSE(one.ok());
    EXPECT_NE(one.error_message().find("bad magic"), std::string::npos) << one.error_message();
}

TEST(control_snapshot, a_file_naming_another_message_is_damaged) {
    // queue/A holding message B's bytes (an unlink undone by a power cut, its blocks reused):
    // the queue runner refuses it, so list and show must not present B's envelope as message A.
    test::temp_dir tmp;
    auto sp = queue::spool::open(tmp.path);
    ASSERT_TRUE(sp.ok());
    queue::spool& s = **sp;
    const std::string body = "x\r\n";
    auto b = envelope_for("00000000000070000", {"bob@localhost"}, body.size());
    ASSERT_FALSE(s.commit(b, {body}, queue::area::active));
    const std::string a = "00000000000080000";
    for (auto where : {queue::area::active, queue::area::hold}) {
        std::filesystem::copy_file(s.path(b.id, queue::area::active), s.path(a, where));
        auto v = control::snapshot(s);
        ASSERT_EQ(v.size(), 1u) << "queue/B listed again as A";
        EXPECT_EQ(v[0].id, b.id);
        auto one = control::snapshot_one(s, a);
        ASSERT_FALSE(one.ok()) << "shown as message A: " << one->sender;
        EXPECT_EQ(one.error_message(), a + ": " + s.path(a, where) + ": the file is message " + b.id + ", not " + a);
        std::filesystem::remove(s.path(a, where));
    }
}

// A FIFO or a symbolic link under a queue id's name: `queue list` does not wait for a writer
// (before, the listing thread hung in open(2) for ever), nor show the file a link points to.
TEST(control_snapshot, only_regular_files_are_read) {
    test::temp_dir tmp;
    auto sp = queue::spool::open(tmp.path);
    ASSERT_TRUE(sp.ok());
    queue::spool& s = **sp;
    const std::string body = "x\r\n";
    auto b = envelope_for("00000000000090000", {"bob@localhost"}, body.size());
    ASSERT_FALSE(s.commit(b, {body}, queue::area::active));
    const std::string link = "000000000000A0000", fifo = "000000000000B0000";
    std::filesystem::create_symlink(s.path(b.id, queue::area::active), s.path(link, queue::area::hold));
    ASSERT_EQ(::mkfifo(s.path(fifo, queue::area::active).c_str(), 0600), 0) << std::strerror(errno);
    std::promise<std::vector<message_view>> listed;
    auto answer = listed.get_future();
    std::thread t([&] { listed.set_value(control::snapshot(s)); });
    const bool answered = answer.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    if (!answered) {  // the old code waits in open(2): a writer lets it go, so the test can end
        const int w = ::open(s.path(fifo, queue::area::active).c_str(), O_WRONLY | O_NONBLOCK);
        if (w >= 0) ::close(w);
    }
    t.join();
    ASSERT_TRUE(answered) << "queue list waited on a FIFO";
    const auto v = answer.get();
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].id, b.id);
    auto shown = control::snapshot_one(s, link);
    ASSERT_FALSE(shown.ok()) << "followed the link and showed " << b.id;
    EXPECT_NE(shown.error_message().find("symbolic link"), std::string::npos) << shown.error_message();
    auto f = control::snapshot_one(s, fifo);
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.error_message().find("not a regular file"), std::string::npos) << f.error_message();
}

TEST(control_snapshot, empty_spool) {
    test::temp_dir tmp;
    auto sp = queue::spool::open(tmp.path);
    ASSERT_TRUE(sp.ok());
    EXPECT_TRUE(control::snapshot(**sp).empty());
    EXPECT_EQ(control::to_json(control::snapshot(**sp)), "[]");
}

// --- gather(): every name first, then the files ------------------------------------------

namespace {

// A spool in memory where one message moves to the other area after the `at`-th step (a
// listing or a load), as a `queue release` or `hold` finishing while `queue list` runs.
struct moving_spool {
    std::map<std::string, bool> held;  // id -> in hold/
    std::string mover;
    std::size_t at = 0;
    std::size_t steps = 0;

    void step() {
        if (steps++ == at) held[mover] = !held[mover];
    }
    std::vector<std::string> list(bool in_hold) {
        std::vector<std::string> ids;
        for (const auto& [id, h] : held)
            if (h == in_hold) ids.push_back(id);
        step();
        return ids;
    }
    std::optional<message_view> load(const std::string& id, bool in_hold) {
        std::optional<message_view> v;
        if (auto it = held.find(id); it != held.end() && it->second == in_hold) {
            v.emplace();
            v->id = id;
            v->held = in_hold;
        }
        step();
        return v;
    }
};

}  // namespace

TEST(control_gather, a_message_moved_at_any_step_is_listed_once) {
    // Whether the move comes after the first listing, between two, or while the files are
    // read, the message is listed exactly once, held as where it was read. Listing queue/ and
    // reading it all before listing hold/, a release just after queue/ was listed was missed.
    for (const bool released : {true, false}) {
        for (std::size_t at = 0; at < 16; ++at) {
            moving_spool sp;
            sp.held = {{"0A", false}, {"0B", released}, {"0C", true}};
            sp.mover = "0B";
            sp.at = at;
            const auto v = control::gather([&](bool h) { return sp.list(h); },
                                           [&](const std::string& id, bool h) { return sp.load(id, h); });
            std::vector<std::string> ids;
            for (const auto& m : v) ids.push_back(m.id);
            ASSERT_EQ(ids, (std::vector<std::string>{"0A", "0B", "0C"}))
                << (released ? "release" : "hold") << " after step " << at;
            EXPECT_FALSE(v[0].held);
            EXPECT_TRUE(v[2].held);
        }
    }
}
