// tests/unit/net/dns_rdata_test.cpp - MX, A and AAAA RDATA decoding, including hostile input.
#include <gtest/gtest.h>

#include <string>

#include "dns/rdata.hpp"

using namespace postern;
using namespace std::string_literals;

namespace {

// "\x00\x0a" + wire name
std::string mx(std::uint16_t pref, const std::string& wire_name) {
    std::string s;
    s += static_cast<char>(pref >> 8);
    s += static_cast<char>(pref & 0xff);
    return s + wire_name;
}

}  // namespace

TEST(dns_rdata, mx_records) {
    auto r = dns::parse_mx_rdata(mx(10, "\x03mx1\x07partner\x04test\x00"s));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->preference, 10);
    EXPECT_EQ(r->host, "mx1.partner.test");

    r = dns::parse_mx_rdata(mx(65535, "\x02MX\x07" "Example\x03ORG\x00"s));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->preference, 65535);
    EXPECT_EQ(r->host, "mx.example.org");  // lower-cased

    r = dns::parse_mx_rdata(mx(0, "\x00"s));  // null MX (RFC 7505): the root
    ASSERT_TRUE(r);
    EXPECT_EQ(r->preference, 0);
    EXPECT_EQ(r->host, "");

    r = dns::parse_mx_rdata(mx(5, "\x04mx-1\x01_\x00"s));  // hyphen, underscore: taken as they are
    ASSERT_TRUE(r);
    EXPECT_EQ(r->host, "mx-1._");
}

TEST(dns_rdata, mx_refuses_malformed) {
    EXPECT_FALSE(dns::parse_mx_rdata(""));
    EXPECT_FALSE(dns::parse_mx_rdata("\x00\x0a"s));                      // no name
    EXPECT_FALSE(dns::parse_mx_rdata(mx(10, "\x03mx1\x04te"s)));         // truncated label
    EXPECT_FALSE(dns::parse_mx_rdata(mx(10, "\x03mx1"s)));               // no root label
    EXPECT_FALSE(dns::parse_mx_rdata(mx(10, "\xc0\x0c"s)));              // compression pointer
    EXPECT_FALSE(dns::parse_mx_rdata(mx(10, "\x03mx1\xc0\x0c"s)));       // pointer after a label
    EXPECT_FALSE(dns::parse_mx_rdata(mx(10, "\x41xx\x00"s)));            // extended label type 01
    EXPECT_FALSE(dns::parse_mx_rdata(mx(10, "\x03m.x\x00"s)));           // dot inside a label
    EXPECT_FALSE(dns::parse_mx_rdata(mx(10, "\x03m x\x00"s)));           // space
    EXPECT_FALSE(dns::parse_mx_rdata(mx(10, "\x03m\\x\x00"s)));          // backslash
    EXPECT_FALSE(dns::parse_mx_rdata(mx(10, "\x03m\nx\x00"s)));          // control octet
    EXPECT_FALSE(dns::parse_mx_rdata(mx(10, "\x03m\xc3\xa9\x00"s)));     // 8-bit
    EXPECT_FALSE(dns::parse_mx_rdata(mx(10, "\x02mx\x00junk"s)));        // trailing octets
    // 255 octets is the limit (RFC 1035 2.3.4): 4 labels of 63 = 256 octets with lengths.
    std::string long_name;
    for (int i = 0; i < 4; ++i) long_name += static_cast<char>(63) + std::string(63, 'a');
    EXPECT_FALSE(dns::parse_mx_rdata(mx(10, long_name + "\x00"s)));
    std::string max_name;  // 3 x 63 + 61, with lengths = 254 octets, + root = 255
    for (int i = 0; i < 3; ++i) max_name += static_cast<char>(63) + std::string(63, 'a');
    max_name += static_cast<char>(61) + std::string(61, 'b');
    EXPECT_TRUE(dns::parse_mx_rdata(mx(10, max_name + "\x00"s)));
}

TEST(dns_rdata, every_truncation_of_a_good_record_is_refused) {
    const std::string good = mx(10, "\x03mx1\x07partner\x04test\x00"s);
    for (std::size_t n = 0; n < good.size(); ++n) EXPECT_FALSE(dns::parse_mx_rdata(good.substr(0, n))) << n;
    EXPECT_TRUE(dns::parse_mx_rdata(good));
}

TEST(dns_rdata, read_wire_name_advances) {
    const std::string wire = "\x01" "a\x00\x01" "b\x00"s;
    std::size_t pos = 0;
    EXPECT_EQ(dns::read_wire_name(wire, pos), "a");
    EXPECT_EQ(pos, 3u);
    EXPECT_EQ(dns::read_wire_name(wire, pos), "b");
    EXPECT_EQ(pos, 6u);
    EXPECT_FALSE(dns::read_wire_name(wire, pos));
    EXPECT_EQ(pos, 6u);  // unchanged on failure
}

TEST(dns_rdata, addresses) {
    EXPECT_EQ(dns::parse_address_rdata("\x7f\x00\x00\x02"s, 4), "127.0.0.2");
    EXPECT_EQ(dns::parse_address_rdata("\xc0\x00\x02\xff"s, 4), "192.0.2.255");
    const std::string v6 = "\x20\x01\x0d\xb8" + std::string(11, '\0') + "\x01"s;
    EXPECT_EQ(dns::parse_address_rdata(v6, 16), "2001:db8::1");
    EXPECT_EQ(dns::parse_address_rdata(std::string(15, '\0') + "\x01"s, 16), "::1");
    EXPECT_FALSE(dns::parse_address_rdata("\x7f\x00\x00"s, 4));
    EXPECT_FALSE(dns::parse_address_rdata("\x7f\x00\x00\x01\x00"s, 4));
    EXPECT_FALSE(dns::parse_address_rdata(v6, 4));
    EXPECT_FALSE(dns::parse_address_rdata("\x7f\x00\x00\x01"s, 16));
    EXPECT_FALSE(dns::parse_address_rdata("\x7f\x00\x00\x01"s, 5));
}

TEST(dns_rdata, reverse_names) {
    EXPECT_EQ(dns::reverse_name("192.0.2.7"), "7.2.0.192.in-addr.arpa");
    EXPECT_EQ(dns::reverse_name("127.0.0.5"), "5.0.0.127.in-addr.arpa");
    EXPECT_EQ(dns::reverse_name("::ffff:192.0.2.7"), "7.2.0.192.in-addr.arpa");  // IPv4-mapped: the IPv4 name
    EXPECT_EQ(dns::reverse_name("2001:db8::567:89ab"),
              "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");  // RFC 3596 2.5
    EXPECT_EQ(dns::reverse_name("::1"), "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
    EXPECT_FALSE(dns::reverse_name("mx.partner.test"));
    EXPECT_FALSE(dns::reverse_name("192.0.2.300"));
    EXPECT_FALSE(dns::reverse_name(""));
}

TEST(dns_rdata, same_address) {
    EXPECT_TRUE(dns::same_address("127.0.0.5", "127.0.0.5"));
    EXPECT_TRUE(dns::same_address("::ffff:127.0.0.5", "127.0.0.5"));
    EXPECT_TRUE(dns::same_address("2001:DB8:0::1", "2001:db8::1"));
    EXPECT_FALSE(dns::same_address("127.0.0.5", "127.0.0.6"));
    EXPECT_FALSE(dns::same_address("::1", "127.0.0.1"));
    EXPECT_FALSE(dns::same_address("host", "host"));
}
