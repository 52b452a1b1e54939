// tests/unit/tls/certgen_test.cpp - tls::write_self_signed: a matching key pair with the
// documented modes, and never a file written over an existing one (key or certificate).
#include "tls/certgen.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../test_util.hpp"

namespace postern::tls {
namespace {

std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

mode_t mode_of(const std::string& path) {
    struct stat st{};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

struct certgen_test : ::testing::Test {
    test::temp_dir dir;
    std::string cert = dir.path + "/cert.pem", key = dir.path + "/key.pem";
};

TEST_F(certgen_test, writes_a_matching_pair_with_its_modes) {
    const mode_t old = ::umask(0);  // the modes are exact whatever the umask
    auto r = write_self_signed(cert, key, "localhost", 30);
    ::umask(old);
    ASSERT_TRUE(r) << r.error_message();
    EXPECT_EQ(mode_of(key), 0600u);
    EXPECT_EQ(mode_of(cert), 0644u);
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM), 1);
    EXPECT_EQ(SSL_CTX_check_private_key(ctx), 1);
    SSL_CTX_free(ctx);
}

TEST_F(certgen_test, never_overwrites_an_existing_key) {
    write(key, "the only copy of a key\n");
    auto r = write_self_signed(cert, key, "localhost", 30);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error_message().find(key), std::string::npos) << r.error_message();
    EXPECT_EQ(read(key), "the only copy of a key\n");
    EXPECT_FALSE(std::filesystem::exists(cert));
}

TEST_F(certgen_test, never_overwrites_an_existing_certificate_and_leaves_no_lone_key) {
    write(cert, "a certificate\n");
    auto r = write_self_signed(cert, key, "localhost", 30);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error_message().find(cert), std::string::npos) << r.error_message();
    EXPECT_EQ(read(cert), "a certificate\n");
    EXPECT_FALSE(std::filesystem::exists(key));  // the key made first is taken back
}

TEST_F(certgen_test, does_not_write_through_a_symlink) {
    const std::string target = dir.path + "/elsewhere";
    ASSERT_EQ(::symlink(target.c_str(), key.c_str()), 0);
    EXPECT_FALSE(write_self_signed(cert, key, "localhost", 30));
    EXPECT_FALSE(std::filesystem::exists(target));
}

}  // namespace
}  // namespace postern::tls
