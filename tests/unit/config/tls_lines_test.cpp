// tests/unit/config/tls_lines_test.cpp - where the file sets the TLS keys (config::tls_config's
// lines, from toml++ source positions: the lines check-config and serve report a TLS file at,
// however the key is written), and the warning for opportunistic TLS without a certificate.
#include <gtest/gtest.h>

#include "config/config.hpp"

namespace postern::config {
namespace {

std::shared_ptr<const config> parse_ok(std::string_view text) {
    auto r = parse(text, "p.toml");
    EXPECT_TRUE(r) << r.error_message();
    return r ? *r : nullptr;
}

TEST(TlsKeyLines, EveryWayOfWritingTheKeys) {
    const struct {
        const char* text;
        int table, opportunistic, cert, key, ca;
    } cases[] = {
        {"[spool]\ndir = \"s\"\n[tls]\nopportunistic = true\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n"
         "ca_file = \"ca.pem\"\n",
         3, 4, 5, 6, 7},
        // inline table: every key on the table's line
        {"\ntls = { cert_file = \"c.pem\", key_file = \"k.pem\" }\n[spool]\ndir = \"s\"\n", 2, 0, 2, 2, 0},
        // quoted keys
        {"[spool]\ndir = \"s\"\n[tls]\n\"cert_file\" = \"c.pem\"\n'key_file' = \"k.pem\"\n\"ca_file\" = \"ca.pem\"\n",
         3, 0, 4, 5, 6},
        // dotted keys before any table
        {"tls.cert_file = \"c.pem\"\ntls.key_file = \"k.pem\"\n\"tls\".\"ca_file\" = \"ca.pem\"\n[spool]\ndir = \"s\"\n",
         -1, 0, 1, 2, 3},
        // no [tls] at all
        {"[spool]\ndir = \"s\"\n", 0, 0, 0, 0, 0},
    };
    for (const auto& c : cases) {
        auto cfg = parse_ok(c.text);
        ASSERT_TRUE(cfg) << c.text;
        if (c.table >= 0) {
            EXPECT_EQ(cfg->tls.line, c.table) << c.text;
        }
        EXPECT_EQ(cfg->tls.opportunistic_line, c.opportunistic) << c.text;
        EXPECT_EQ(cfg->tls.cert_file_line, c.cert) << c.text;
        EXPECT_EQ(cfg->tls.key_file_line, c.key) << c.text;
        EXPECT_EQ(cfg->tls.ca_file_line, c.ca) << c.text;
    }
}

TEST(TlsKeyLines, ProfileCaFile) {
    auto cfg = parse_ok("[spool]\ndir = \"s\"\n[[profile]]\nname = \"p\"\nrecipient_domains = [\"p.test\"]\n"
                        "[profile.outbound]\ntls = \"mandatory\"\nverify = \"ca\"\nca_file = \"p.pem\"\n"
                        "[[profile]]\nname = \"q\"\nhosts = [\"10.0.0.1\"]\n"
                        "inbound = { tls = \"mandatory\", verify = \"ca\", \"ca_file\" = \"q.pem\" }\n"
                        "[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n");
    ASSERT_TRUE(cfg);
    ASSERT_EQ(cfg->profiles.size(), 2u);
    EXPECT_EQ(cfg->profiles[0].outbound.ca_file_line, 9);
    EXPECT_EQ(cfg->profiles[0].inbound.ca_file_line, 0);
    EXPECT_EQ(cfg->profiles[1].inbound.ca_file_line, 13);
}

// SPEC 1.1: opportunistic TLS advertises STARTTLS inbound; without a certificate it cannot.
// The warning is at tls.opportunistic's line, else the [tls] table's, else line 1.
TEST(TlsWarnings, OpportunisticWithoutCertificate) {
    const std::string says =
        ": warning: tls.opportunistic is on but tls.cert_file is not set: STARTTLS will not be offered inbound "
        "without a certificate (set tls.cert_file and tls.key_file; outbound STARTTLS is not affected)";
    const struct {
        const char* text;
        const char* want;  // "" = no warning
    } cases[] = {
        {"[spool]\ndir = \"s\"\n", "p.toml:1"},
        {"[spool]\ndir = \"s\"\n[tls]\nca_file = \"\"\n", "p.toml:3"},
        {"[spool]\ndir = \"s\"\n[tls]\n\nopportunistic = true\n", "p.toml:5"},
        {"\n\ntls = { opportunistic = true }\n[spool]\ndir = \"s\"\n", "p.toml:3"},
        {"[spool]\ndir = \"s\"\n[tls]\ncert_file = \"\"\nkey_file = \"\"\n", "p.toml:3"},
        {"[spool]\ndir = \"s\"\n[tls]\nopportunistic = false\n", ""},
        {"[spool]\ndir = \"s\"\n[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n", ""},
    };
    for (const auto& c : cases) {
        auto cfg = parse_ok(c.text);
        ASSERT_TRUE(cfg) << c.text;
        const auto w = warnings(*cfg);
        if (*c.want == '\0') {
            EXPECT_TRUE(w.empty()) << c.text << w.front();
        } else {
            ASSERT_EQ(w.size(), 1u) << c.text;
            EXPECT_EQ(w[0], c.want + says) << c.text;
        }
    }
}

}  // namespace
}  // namespace postern::config
