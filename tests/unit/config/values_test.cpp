// tests/unit/config/values_test.cpp - tables for durations, sizes, host:port and domain names
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "config/values.hpp"

namespace postern::config {
namespace {

using namespace std::chrono_literals;

TEST(ParseDuration, AcceptsUnitsAndBareSeconds) {
    const struct {
        const char* text;
        seconds want;
    } cases[] = {
        {"0", 0s},       {"30", 30s},      {"30s", 30s},   {"5m", 300s},     {"1h", 3600s},
        {"2d", 172800s}, {"1w", 604800s},  {"007s", 7s},   {"90m", 5400s},   {"60d", 5184000s},
    };
    for (const auto& c : cases) {
        auto r = parse_duration(c.text);
        ASSERT_TRUE(r) << c.text << ": " << r.error_message();
        EXPECT_EQ(*r, c.want) << c.text;
    }
}

TEST(ParseDuration, RejectsMalformed) {
    const struct {
        const char* text;
        const char* want;
    } cases[] = {
        {"", "empty duration"},
        {"5x", "invalid duration '5x': unknown unit 'x' (use s, m, h, d or w)"},
        {"5M", "invalid duration '5M': unknown unit 'M' (use s, m, h, d or w)"},
        {"5 m", "invalid duration '5 m': unknown unit ' m' (use s, m, h, d or w)"},
        {"1h30m", "invalid duration '1h30m': unknown unit 'h30m' (use s, m, h, d or w)"},
        {"-1m", "invalid duration '-1m': expected a number followed by s, m, h, d or w"},
        {"+1m", "invalid duration '+1m': expected a number followed by s, m, h, d or w"},
        {"m", "invalid duration 'm': expected a number followed by s, m, h, d or w"},
        {" 5m", "invalid duration ' 5m': expected a number followed by s, m, h, d or w"},
        {"1.5h", "invalid duration '1.5h': unknown unit '.5h' (use s, m, h, d or w)"},
        {"99999999999999999999", "invalid duration '99999999999999999999': too large"},
        {"9223372036854775807", nullptr},  // INT64_MAX seconds fits
        {"9223372036854775808", "invalid duration '9223372036854775808': too large"},
        {"15250284452471w", nullptr},
        {"15250284452472w", "invalid duration '15250284452472w': too large"},
    };
    for (const auto& c : cases) {
        auto r = parse_duration(c.text);
        if (c.want == nullptr) {
            EXPECT_TRUE(r) << c.text;
            continue;
        }
        ASSERT_FALSE(r) << c.text;
        EXPECT_EQ(r.error_message(), c.want);
    }
}

TEST(ParseHostPort, Accepts) {
    const struct {
        const char* text;
        std::uint16_t default_port;
        const char* host;
        std::uint16_t port;
        const char* round_trip;
    } cases[] = {
        {"127.0.0.1:2525", 0, "127.0.0.1", 2525, "127.0.0.1:2525"},
        {"[::1]:2525", 0, "::1", 2525, "[::1]:2525"},
        {"[2001:db8::5]:25", 0, "2001:db8::5", 25, "[2001:db8::5]:25"},
        {"mx.example.test:25", 0, "mx.example.test", 25, "mx.example.test:25"},
        {"MX.Example.TEST:587", 0, "mx.example.test", 587, "mx.example.test:587"},
        {"10.0.0.5", 25, "10.0.0.5", 25, "10.0.0.5:25"},
        {"relay.test", 25, "relay.test", 25, "relay.test:25"},
        {"[::1]", 53, "::1", 53, "[::1]:53"},
        {"::1", 53, "::1", 53, "[::1]:53"},  // bare IPv6 only when no port is required
        {"1.2.3.4:65535", 0, "1.2.3.4", 65535, "1.2.3.4:65535"},
        {"1.2.3.4:1", 0, "1.2.3.4", 1, "1.2.3.4:1"},
        {"localhost:2525", 0, "localhost", 2525, "localhost:2525"},
    };
    for (const auto& c : cases) {
        auto r = parse_host_port(c.text, c.default_port);
        ASSERT_TRUE(r) << c.text << ": " << r.error_message();
        EXPECT_EQ(r->host, c.host) << c.text;
        EXPECT_EQ(r->port, c.port) << c.text;
        EXPECT_EQ(r->to_string(), c.round_trip) << c.text;
    }
}

TEST(ParseHostPort, Rejects) {
    const struct {
        const char* text;
        std::uint16_t default_port;
        const char* want;
    } cases[] = {
        {"", 0, "empty address"},
        {"127.0.0.1", 0, "invalid address '127.0.0.1': missing port"},
        {"127.0.0.1:", 0, "invalid address '127.0.0.1:': missing port after ':'"},
        {"127.0.0.1:0", 0, "invalid address '127.0.0.1:0': port must be between 1 and 65535"},
        {"127.0.0.1:65536", 0, "invalid address '127.0.0.1:65536': port must be between 1 and 65535"},
        {"127.0.0.1:99999999999999999999999", 0,
         "invalid address '127.0.0.1:99999999999999999999999': port must be between 1 and 65535"},
        {"127.0.0.1:2x", 0, "invalid address '127.0.0.1:2x': invalid port"},
        {"127.0.0.1:-1", 0, "invalid address '127.0.0.1:-1': invalid port"},
        {":25", 0, "invalid address ':25': missing host"},
        {"::1:25", 0, "invalid address '::1:25': write an IPv6 address in brackets, as in [::1]:25"},
        {"::1", 0, "invalid address '::1': write an IPv6 address in brackets, as in [::1]:25"},
        {"[::1", 0, "invalid address '[::1': missing ']'"},
        {"[::1]25", 0, "invalid address '[::1]25': expected ':' after ']'"},
        {"[127.0.0.1]:25", 0, "invalid address '[127.0.0.1]:25': only IPv6 addresses go in brackets"},
        {"[]:25", 0, "invalid address '[]:25': missing host"},
        {"bad_host:25", 0, "invalid address 'bad_host:25': 'bad_host' is neither an IP address nor a valid host name"},
        {"1.2.3.256:25", 0, "invalid address '1.2.3.256:25': '1.2.3.256' is neither an IP address nor a valid host name"},
        {"-a.test", 25, "invalid address '-a.test': '-a.test' is neither an IP address nor a valid host name"},
    };
    for (const auto& c : cases) {
        auto r = parse_host_port(c.text, c.default_port);
        ASSERT_FALSE(r) << c.text << " -> " << r->to_string();
        EXPECT_EQ(r.error_message(), c.want);
    }
}

TEST(ParseSize, AcceptsUnits) {
    const struct {
        const char* text;
        std::uint64_t want;
    } cases[] = {
        {"1024", 1024},         {"1024B", 1024},           {"1K", 1024},
        {"1k", 1024},           {"1KiB", 1024},            {"50M", 52428800},
        {"10MiB", 10485760},    {"10mib", 10485760},       {"1G", 1073741824},
        {"2GiB", 2147483648u},
    };
    for (const auto& c : cases) {
        auto r = detail::parse_size(c.text);
        ASSERT_TRUE(r) << c.text << ": " << r.error_message();
        EXPECT_EQ(*r, c.want) << c.text;
    }
}

TEST(ParseSize, Rejects) {
    const struct {
        const char* text;
        const char* want;
    } cases[] = {
        {"", "empty size"},
        {"M", "invalid size 'M': expected a number of bytes, optionally followed by K, M or G"},
        {"-1", "invalid size '-1': expected a number of bytes, optionally followed by K, M or G"},
        {"10MB", "invalid size '10MB': unknown unit 'MB' (use K, M, G, KiB, MiB or GiB)"},
        {"10T", "invalid size '10T': unknown unit 'T' (use K, M, G, KiB, MiB or GiB)"},
        {"17179869184G", "invalid size '17179869184G': too large"},
        {"99999999999999999999", "invalid size '99999999999999999999': too large"},
    };
    for (const auto& c : cases) {
        auto r = detail::parse_size(c.text);
        ASSERT_FALSE(r) << c.text;
        EXPECT_EQ(r.error_message(), c.want);
    }
}

TEST(DomainName, Validity) {
    EXPECT_TRUE(detail::is_valid_domain("localhost"));
    EXPECT_TRUE(detail::is_valid_domain("example.test"));
    EXPECT_TRUE(detail::is_valid_domain("xn--bcher-kva.example"));
    EXPECT_TRUE(detail::is_valid_domain("a-b.c0.test"));
    EXPECT_TRUE(detail::is_valid_domain("3com.com"));
    EXPECT_TRUE(detail::is_valid_domain(std::string(63, 'a') + ".test"));

    EXPECT_FALSE(detail::is_valid_domain(""));
    EXPECT_FALSE(detail::is_valid_domain("example.test."));
    EXPECT_FALSE(detail::is_valid_domain(".example.test"));
    EXPECT_FALSE(detail::is_valid_domain("a..test"));
    EXPECT_FALSE(detail::is_valid_domain("-a.test"));
    EXPECT_FALSE(detail::is_valid_domain("a-.test"));
    EXPECT_FALSE(detail::is_valid_domain("a_b.test"));
    EXPECT_FALSE(detail::is_valid_domain("a b.test"));
    EXPECT_FALSE(detail::is_valid_domain("b\xc3\xbc" "cher.example"));
    EXPECT_FALSE(detail::is_valid_domain("1.2.3.4"));
    EXPECT_FALSE(detail::is_valid_domain(std::string(64, 'a') + ".test"));
    std::string long_name;
    for (int i = 0; i < 64; ++i) long_name += "abc.";  // 256 characters
    long_name += "test";
    EXPECT_FALSE(detail::is_valid_domain(long_name));
}

// U-labels in the file are converted to A-labels (RFC 5890), wildcard kept; ASCII as written.
TEST(DomainName, ULabelsToALabels) {
    auto a = [](std::string_view s) {
        auto r = detail::to_a_labels(s);
        return r ? *r : "error: " + r.error_message();
    };
    EXPECT_EQ(a("b\u00fccher.test"), "xn--bcher-kva.test");
    EXPECT_EQ(a("B\u00dcCHER.Test"), "xn--bcher-kva.test");
    EXPECT_EQ(a("*.b\u00fccher.test"), "*.xn--bcher-kva.test");
    EXPECT_EQ(a("Example.TEST"), "Example.TEST");  // ASCII: judged (and lower-cased) by the caller
    EXPECT_EQ(a("*"), "*");
    EXPECT_EQ(a("10.0.0.0/8"), "10.0.0.0/8");
    EXPECT_FALSE(detail::to_a_labels("\u2603.test"));
    EXPECT_FALSE(detail::to_a_labels("*.\u2603.test"));
    EXPECT_FALSE(detail::to_a_labels("b\xc3.test"));  // not UTF-8
}

TEST(IpLiteral, Recognises) {
    EXPECT_TRUE(detail::is_ip_literal("127.0.0.1"));
    EXPECT_TRUE(detail::is_ip_literal("::1"));
    EXPECT_TRUE(detail::is_ip_literal("2001:db8::1"));
    EXPECT_FALSE(detail::is_ip_literal("localhost"));
    EXPECT_FALSE(detail::is_ip_literal("127.1"));
    EXPECT_FALSE(detail::is_ip_literal("[::1]"));
    EXPECT_FALSE(detail::is_ip_literal(""));
    // A NUL ends the C string inet_pton reads; the rest must not slip through (fuzz/config).
    using namespace std::string_view_literals;
    EXPECT_FALSE(detail::is_ip_literal("::1\0junk"sv));
    EXPECT_FALSE(detail::is_ip_literal("127.0.0.1\0x"sv));
    EXPECT_FALSE(parse_host_port("::0b\0ol]\0"sv, 25));
    EXPECT_FALSE(parse_host_port("127.0.0.1\0x:25"sv));
}

TEST(Format, DurationsAndSizes) {
    EXPECT_EQ(detail::format_duration(0s), "0s");
    EXPECT_EQ(detail::format_duration(45s), "45s");
    EXPECT_EQ(detail::format_duration(300s), "5m");
    EXPECT_EQ(detail::format_duration(3600s), "1h");
    EXPECT_EQ(detail::format_duration(5400s), "90m");
    EXPECT_EQ(detail::format_duration(7 * 86400s), "7d");
    EXPECT_EQ(detail::format_duration(-120s), "-2m");
    EXPECT_EQ(detail::format_size(1024), "1KiB");
    EXPECT_EQ(detail::format_size(52428800), "50MiB");
    EXPECT_EQ(detail::format_size(std::uint64_t{2} << 30), "2GiB");
    EXPECT_EQ(detail::format_size(1000), "1000 bytes");
}

TEST(FindDomain, IsCaseInsensitive) {
    config c;
    c.domains.push_back({.name = "example.test", .relay_to = {}, .maildir = "/m", .line = 3});
    c.domains.push_back({.name = "other.test", .relay_to = {{"10.0.0.1", 25}}, .maildir = "", .line = 7});
    ASSERT_NE(c.find_domain("EXAMPLE.Test"), nullptr);
    EXPECT_EQ(c.find_domain("EXAMPLE.Test")->line, 3);
    ASSERT_NE(c.find_domain("other.test"), nullptr);
    EXPECT_EQ(c.find_domain("other.test")->line, 7);
    EXPECT_EQ(c.find_domain("sub.example.test"), nullptr);
    EXPECT_EQ(c.find_domain("example.tes"), nullptr);
    EXPECT_EQ(c.find_domain(""), nullptr);
}

}  // namespace
}  // namespace postern::config
