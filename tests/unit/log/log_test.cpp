// tests/unit/log/log_test.cpp - text and JSON log line formats (SPEC §6).
#include <gtest/gtest.h>

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
