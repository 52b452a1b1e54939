// tests/unit/log/log_test.cpp - text and JSON log line formats (SPEC §6).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>

#include "log/log.hpp"

using namespace postern;

TEST(log, text_quotes_values_with_spaces) {
    auto l = log::format_line(log::format::text, log::level::info, "delivery",
                              {{"id", "ABC"}, {"reason", "no route"}, {"empty", ""}});
    EXPECT_NE(l.find(" info delivery id=ABC reason=\"no route\" empty=\"\"\n"), std::string::npos) << l;
}

TEST(log, json_is_one_escaped_object_per_line) {
    auto l = log::format_line(log::format::json, log::level::warning, "tls_failed",
                              {{"reason", "bad \"x\"\nline"}});
    EXPECT_EQ(l.back(), '\n');
    EXPECT_EQ(l.find('\n'), l.size() - 1);
    EXPECT_NE(l.find("\"level\":\"warning\",\"event\":\"tls_failed\",\"reason\":\"bad \\\"x\\\"\\nline\"}"),
              std::string::npos)
        << l;
    EXPECT_EQ(l.rfind("{\"ts\":\"", 0), 0u);
}

// Found by review: a next hop's reply with octets that are not UTF-8 went into the JSON log as
// they came, so the line was no valid JSON (RFC 8259 8.1); and U+0085, U+2028 or U+00A0 in an
// address passed unquoted into the text log, where a reader splits lines or fields on them.
TEST(log, values_with_any_octets_stay_one_valid_line_and_one_field) {
    const std::string reply = "550 5.1.1 bad\xff\xfe end \xc3\xa9 \xc2\x85 \xe2\x80\xa8 \xe2\x80\xa9 \xc2\xa0 \x7f";
    auto j = log::format_line(log::format::json, log::level::info, "delivery", {{"reason", reply}});
    EXPECT_NE(j.find("\"reason\":\"550 5.1.1 bad\\ufffd\\ufffd end \xc3\xa9 \\u0085 \\u2028 \\u2029 \xc2\xa0 \\u007f\"}"),
              std::string::npos)
        << j;
    auto t = log::format_line(log::format::text, log::level::info, "delivery",
                              {{"from", "x\xe2\x80\xa8" "FAKE"}, {"to", "a\xc2\xa0result=sent\xc2\x85" "dsn=2.0.0@localhost"},
                               {"x", "\xc3\xa9"}});
    EXPECT_NE(t.find(" from=\"x\\u2028FAKE\" to=\"a\xc2\xa0result=sent\\u0085dsn=2.0.0@localhost\" x=\"\xc3\xa9\"\n"),
              std::string::npos)
        << t;
}

// Review: a bidirectional override (U+202E) in an address reordered the rest of the log line
// on a terminal; the isolates, marks and U+FEFF likewise. Escaped in both formats.
TEST(log, bidirectional_formatting_characters_are_escaped) {
    const std::string from = "a\xe2\x80\xae" "txt.exe\xe2\x81\xa6" "b\xe2\x81\xa9\xe2\x80\x8e\xef\xbb\xbf\xd8\x9c@x.test";
    auto j = log::format_line(log::format::json, log::level::info, "delivery", {{"from", from}});
    EXPECT_NE(j.find("\"from\":\"a\\u202etxt.exe\\u2066b\\u2069\\u200e\\ufeff\\u061c@x.test\""), std::string::npos) << j;
    auto t = log::format_line(log::format::text, log::level::info, "delivery", {{"from", from}});
    EXPECT_NE(t.find(" from=\"a\\u202etxt.exe\\u2066b\\u2069\\u200e\\ufeff\\u061c@x.test\""), std::string::npos) << t;
}

// Counts and times are JSON numbers (a log pipeline sums them without converting); the same
// fields in text are plain key=value.
TEST(log, json_numbers_are_numbers) {
    auto l = log::format_line(log::format::json, log::level::info, "delivery",
                              {{"id", "0123"}, {"delay", "0.004", true}, {"attempt", "2", true}});
    EXPECT_NE(l.find("\"id\":\"0123\",\"delay\":0.004,\"attempt\":2}"), std::string::npos) << l;
    auto t = log::format_line(log::format::text, log::level::info, "delivery", {{"attempt", "2", true}});
    EXPECT_NE(t.find(" delivery attempt=2\n"), std::string::npos) << t;
}

namespace {
// What `fn` writes to stderr (the log's only output).
template <class F>
std::string captured_stderr(F fn) {
    char path[] = "/tmp/postern-logtest-XXXXXX";
    const int fd = ::mkstemp(path);
    const int saved = ::dup(2);
    ::dup2(fd, 2);
    fn();
    ::dup2(saved, 2);
    ::close(saved);
    std::string out;
    char buf[4096];
    ::lseek(fd, 0, SEEK_SET);
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    ::unlink(path);
    return out;
}
}  // namespace

// Issue 4: the profile and the TLS verdict on every connection line, right after the client.
TEST(log, session_lines_carry_profile_and_tls_verdict) {
    const log::session_tags t{"1A", "127.0.0.5:4321", "partner", "verified"};
    const log::session_tags none{"1B", "127.0.0.6:1", "", "none"};
    const std::string prefix = " session=1A client=127.0.0.5:4321 profile=partner tls=verified ";
    const std::string out = captured_stderr([&] {
        log::connection_opened(t, "2525", "client.partner.test", "ca_name");
        log::tls_established(t, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256);
        log::tls_failed(t, "alert");
        log::tls_policy_checked(t, "ca_name", true, "");
        log::message_queued(t, "ABC", "a@partner.test", 1, 10, "TLSv1.3", "TLS_AES_256_GCM_SHA384", false);
        log::message_rejected(t, "RCPT TO:<x@y>: 554 5.7.1 Relay access denied");
        log::connection_closed(t, "quit", 1, 0);
        log::connection_closed(none, "quit", 0, 0);
    });
    for (const char* event : {"connect", "tls", "tls_failed", "tls_policy", "queued", "reject"})
        EXPECT_NE(out.find(std::string(" ") + event + prefix), std::string::npos) << event << "\n" << out;
    EXPECT_NE(out.find(" disconnect" + prefix + "reason=quit"), std::string::npos) << out;
    EXPECT_NE(out.find(" disconnect session=1B client=127.0.0.6:1 profile=- tls=none reason=quit"), std::string::npos)
        << out;
    EXPECT_NE(out.find("client_name=client.partner.test tls_policy=ca_name"), std::string::npos) << out;
    EXPECT_NE(out.find("proto=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 held=no"), std::string::npos) << out;
}
