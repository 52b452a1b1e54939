// tests/unit/config/readme_example_test.cpp - the [[profile]] example in README.md (its one
// ```toml block) is a configuration the loader accepts: an example that check-config refuses
// (pins with verify = "ca+name") teaches the wrong thing.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/config.hpp"

namespace postern::config {
namespace {

TEST(ReadmeExample, ProfileExampleLoads) {
    std::ifstream in(std::string(POSTERN_SOURCE_DIR) + "/README.md");
    ASSERT_TRUE(in) << "cannot read README.md";
    std::stringstream readme;
    readme << in.rdbuf();
    const std::string text = readme.str();
    const auto open = text.find("```toml\n");
    ASSERT_NE(open, std::string::npos) << "README.md has no ```toml block";
    const auto begin = open + 8;
    const auto end = text.find("```", begin);
    ASSERT_NE(end, std::string::npos);
    const std::string example = text.substr(begin, end - begin);
    ASSERT_NE(example.find("[[profile]]"), std::string::npos) << example;
    // What the example leaves out: the spool, and the certificate inbound "mandatory" needs.
    // Its files (ca_file) are not opened: parse() without check_files.
    auto cfg = parse("hostname = \"mx.test\"\n[spool]\ndir = \"s\"\n[tls]\ncert_file = \"c.pem\"\n"
                     "key_file = \"k.pem\"\n" + example,
                     "README.md");
    ASSERT_TRUE(cfg) << cfg.error_message();
    ASSERT_EQ((*cfg)->profiles.size(), 1u);
    EXPECT_EQ((*cfg)->profiles[0].outbound.verify, verify_level::ca_name);
}

}  // namespace
}  // namespace postern::config
