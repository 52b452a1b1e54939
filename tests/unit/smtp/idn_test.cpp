// tests/unit/smtp/idn_test.cpp - U-label domains to their A-label form (smtp::domain_to_ascii,
// mailbox::domain_lower; RFC 5890, RFC 6531 3.2, UTS #46 non-transitional).
#include <gtest/gtest.h>

#include <string>

#include "smtp/address.hpp"

namespace postern::smtp {
namespace {

std::string ascii(std::string_view d) {
    auto a = domain_to_ascii(d);
    return a ? *a : "error: " + a.error_message();
}

TEST(SmtpIdn, ULabelsBecomeALabels) {
    EXPECT_EQ(ascii("bücher.test"), "xn--bcher-kva.test");
    EXPECT_EQ(ascii("例.example.test"), "xn--fsq.example.test");
    EXPECT_EQ(ascii("παράδειγμα.δοκιμή"), "xn--hxajbheg2az3al.xn--jxalpdlp");
    EXPECT_EQ(ascii("faß.de"), "xn--fa-hia.de");  // non-transitional: ß stays ß (not "ss")
    EXPECT_EQ(ascii("bu\u0308cher.test"), "xn--bcher-kva.test");  // NFC input: u + U+0308
}

TEST(SmtpIdn, CaseDoesNotMatter) {
    EXPECT_EQ(ascii("BÜCHER.TEST"), "xn--bcher-kva.test");
    EXPECT_EQ(ascii("Bücher.Example.TEST"), "xn--bcher-kva.example.test");
    EXPECT_EQ(ascii("bÜcher.test"), ascii("Bücher.test"));
}

TEST(SmtpIdn, AsciiOnlyLowerCased) {
    EXPECT_EQ(ascii("example.test"), "example.test");
    EXPECT_EQ(ascii("Example.TEST"), "example.test");
    EXPECT_EQ(ascii("XN--BCHER-KVA.test"), "xn--bcher-kva.test");
    EXPECT_EQ(ascii("[IPv6:2001:DB8::1]"), "[ipv6:2001:db8::1]");
    EXPECT_EQ(ascii(""), "");
}

TEST(SmtpIdn, DomainsWithoutALabelRefused) {
    EXPECT_FALSE(domain_to_ascii("\u2603.test"));          // snowman: IDNA2008 disallowed
    EXPECT_FALSE(domain_to_ascii("a\u0634\u0628\u0643\u0629.test"));  // LTR + RTL in one label (bidi)
    EXPECT_FALSE(domain_to_ascii("\u200da.test"));         // ZERO WIDTH JOINER out of context
    EXPECT_FALSE(domain_to_ascii("b\u00fc--cher.test"));   // "--" in positions 3-4
    EXPECT_FALSE(domain_to_ascii("aa\uff0fb.test"));       // maps to "aa/b": not a host name
    EXPECT_FALSE(domain_to_ascii("b\u00fccher.xn--zz.test"));  // a broken A-label beside it
    EXPECT_FALSE(domain_to_ascii(std::string(30, 'a') + "\u00fc" + std::string(30, 'b') + ".test"));  // > 63 once converted
    EXPECT_FALSE(domain_to_ascii(std::string("b\u00fccher.test\0evil", 17)));  // NUL: never a prefix
    EXPECT_FALSE(domain_to_ascii("b\xc3.test"));           // not UTF-8
    auto e = domain_to_ascii("\u2603.test");
    ASSERT_FALSE(e);
    EXPECT_NE(e.error_message().find("disallowed"), std::string::npos) << e.error_message();
}

TEST(SmtpIdn, ParsePathStoresTheALabelOnce) {
    auto p = parse_path("<Anna@B\u00fccher.TEST>", false, true, true);
    ASSERT_TRUE(p) << p.error_message();
    EXPECT_EQ(p->box.domain, "B\u00fccher.TEST");  // the address as written
    EXPECT_EQ(p->box.str(), "Anna@B\u00fccher.TEST");
    EXPECT_EQ(p->box.ascii_domain, "xn--bcher-kva.test");
    EXPECT_EQ(p->box.domain_lower(), "xn--bcher-kva.test");
    EXPECT_TRUE(p->idna_error.empty());
    auto a = parse_path("<a@Example.TEST>", true, false, false);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->box.ascii_domain, "example.test");
    auto pm = parse_path("<Postmaster>", false, false, true);
    ASSERT_TRUE(pm);
    EXPECT_EQ(pm->box.ascii_domain, "");
    EXPECT_EQ(pm->box.domain_lower(), "");
}

TEST(SmtpIdn, ParsePathKeepsASyntacticallyValidPathWithoutALabel) {
    auto p = parse_path("<a@\u2603.test>", true, true, false);
    ASSERT_TRUE(p) << p.error_message();  // the session refuses it with 553, not 501
    EXPECT_FALSE(p->idna_error.empty());
    EXPECT_EQ(p->box.ascii_domain, "");
    EXPECT_EQ(p->box.domain_lower(), "\u2603.test");  // matches nothing configured
}

TEST(SmtpIdn, HandBuiltMailboxConvertsOnDemand) {
    mailbox b;  // as policy::complete_postmaster builds one
    b.local = "postmaster";
    b.domain = "B\u00fccher.test";
    EXPECT_EQ(b.domain_lower(), "xn--bcher-kva.test");
    b.domain = "Example.TEST";
    EXPECT_EQ(b.domain_lower(), "example.test");
}

// RFC 6531 3.2: for a next hop without SMTPUTF8 only the domain may be converted.
TEST(SmtpIdn, AsciiAddress) {
    EXPECT_EQ(ascii_address("Bob@Example.TEST"), "Bob@Example.TEST");  // ASCII: untouched
    EXPECT_EQ(ascii_address("Bob@B\u00dcCHER.test"), "Bob@xn--bcher-kva.test");
    EXPECT_EQ(ascii_address("\"a@b\"@b\u00fccher.test"), "\"a@b\"@xn--bcher-kva.test");
    EXPECT_EQ(ascii_address("b\u00f6b@b\u00fccher.test"), std::nullopt);  // UTF-8 local part
    EXPECT_EQ(ascii_address("bob@\u2603.test"), std::nullopt);             // no A-label form
    EXPECT_EQ(ascii_address("b\u00fccher.test"), std::nullopt);            // no '@'
}

}  // namespace
}  // namespace postern::smtp
