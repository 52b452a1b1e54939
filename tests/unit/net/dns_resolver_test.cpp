// tests/unit/net/dns_resolver_test.cpp - the libunbound resolver against a real DNS server.
// tests/e2e/dns_server.py starts NSD on 127.0.0.1:<free port> with the zones below; the
// resolver forwards to it through dns.servers, .test names and other special-use names
// included (SPEC §5). The server stops when this process closes the helper's stdin.
// Asio first, before any standard header, as in postern_net (its precompiled header starts with
// <asio.hpp>): Asio picks its allocator (aligned_alloc or operator new) from macros that
// libstdc++ defines, and both sides of the library must pick the same one.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "dns/resolver.hpp"

using namespace postern;
using dns::dns_status;
using clock_type = std::chrono::steady_clock;

namespace {

const char* const partner_zone = R"(
@       MX 10 mx1
@       MX 20 mx2
@       MX 10 MX3.Partner.Test.
mx1     A 127.0.0.2
mx1     AAAA ::1
mx2     A 127.0.0.3
mx3     A 127.0.0.4
v6only  AAAA 2001:db8::25
nomx    A 127.0.0.5
many    A 127.0.0.10
many    A 127.0.0.11
many    A 127.0.0.12
badmx   MX 10 bad\032name.partner.test.
badmx   MX 20 \200.partner.test.
)";
const char* const nullmx_zone = "@ MX 0 .\n";
// Reverse DNS for forward-confirmation: .5 confirms, .6 claims a name that does not point back,
// .7 has two PTR names of which the second confirms, .8 has no PTR at all; .9 to .12 only a
// malformed name (a space, 8-bit octets, a backslash, the root).
const char* const reverse_zone = R"(
5       PTR client.rev.test.
6       PTR liar.rev.test.
7       PTR nosuch.rev.test.
7       PTR second.rev.test.
9       PTR bad\032name.rev.test.
10      PTR \200\201.rev.test.
11      PTR back\\slash.rev.test.
12      PTR .
)";
const char* const rev_zone = R"(
client  A 127.0.0.5
liar    A 127.0.0.99
second  A 127.0.0.7
)";
// Special-use names (RFC 6761) that libunbound would answer itself without dns.servers.
const char* const localhost_zone = "@ A 127.0.0.9\n";  // the built-in answer is 127.0.0.1
const char* const invalid_zone = "mx A 127.0.0.7\n@ MX 5 mx.invalid.\n";

// The helper process: NSD serving the zones, on a port it prints once the server answers.
class dns_server {
public:
    dns_server() {
        dir_ = std::filesystem::temp_directory_path() / ("postern-dnstest-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        std::vector<std::string> args = {"/usr/bin/python3", std::string(POSTERN_SOURCE_DIR) + "/tests/e2e/dns_server.py"};
        for (auto [name, text] : {std::pair{"partner.test", partner_zone}, std::pair{"nullmx.test", nullmx_zone},
                                  std::pair{"localhost", localhost_zone}, std::pair{"invalid", invalid_zone},
                                  std::pair{"0.0.127.in-addr.arpa", reverse_zone}, std::pair{"rev.test", rev_zone}}) {
            const auto path = dir_ / (std::string(name) + ".txt");
            std::ofstream(path) << text;
            args.push_back("--zone");
            args.push_back(std::string(name) + "=" + path.string());
        }
        std::vector<char*> argv;  // built before fork(): the child only dup2()s and exec()s
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        int in[2], out[2];
        if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(in[0], 0);
            ::dup2(out[1], 1);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(in[0]);
        ::close(out[1]);
        stdin_ = in[1];
        // The first line is the port, printed once NSD answers (or nothing, if it failed).
        std::string line;
        const auto deadline = clock_type::now() + std::chrono::seconds(30);
        while (line.find('\n') == std::string::npos && clock_type::now() < deadline) {
            pollfd p{out[0], POLLIN, 0};
            if (::poll(&p, 1, 200) <= 0) continue;
            char buf[64];
            const ssize_t n = ::read(out[0], buf, sizeof buf);
            if (n <= 0) break;
            line.append(buf, static_cast<std::size_t>(n));
        }
        ::close(out[0]);
        port_ = static_cast<std::uint16_t>(std::atoi(line.c_str()));
    }

    ~dns_server() {
        if (stdin_ >= 0) ::close(stdin_);  // EOF: the helper stops NSD and exits
        if (pid_ > 0) {
            int status = 0;
            for (int i = 0; i < 100 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i) ::usleep(50000);
            if (::waitpid(pid_, &status, WNOHANG) == 0) {
                ::kill(pid_, SIGTERM);
                ::waitpid(pid_, &status, 0);
            }
        }
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    std::uint16_t port() const { return port_; }

private:
    std::filesystem::path dir_;
    pid_t pid_ = -1;
    int stdin_ = -1;
    std::uint16_t port_ = 0;
};

// A UDP port on 127.0.0.1 where nothing answers (bound, then closed).
std::uint16_t silent_port() {
    const int s = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    return ntohs(a.sin_port);
}

template <class T>
T run(asio::io_context& io, asio::awaitable<T> aw) {
    std::optional<T> out;
    std::exception_ptr error;
    asio::co_spawn(io, std::move(aw), [&](std::exception_ptr e, T v) {
        error = e;
        if (!e) out = std::move(v);
    });
    io.restart();
    io.run();
    if (error) std::rethrow_exception(error);
    return std::move(*out);
}

std::vector<std::string> hosts_of(const dns::mx_answer& a) {
    std::vector<std::string> out;
    for (const auto& r : a.records) out.push_back(std::to_string(r.preference) + " " + r.host);
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

class dns_resolver : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        server_ = new dns_server();
        ASSERT_NE(server_->port(), 0) << "tests/e2e/dns_server.py did not start NSD (is the nsd package installed?)";
    }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }
    void SetUp() override {
        if (!server_ || server_->port() == 0) GTEST_SKIP() << "no DNS server";
    }

    std::unique_ptr<dns::resolver> make(dns::resolver_options opts = {}) {
        return dns::make_resolver(io.get_executor(), {{"127.0.0.1", server_->port()}}, opts);
    }

    static dns_server* server_;
    asio::io_context io;
};

dns_server* dns_resolver::server_ = nullptr;

}  // namespace

TEST_F(dns_resolver, mx_with_several_preferences) {
    auto r = make();
    const auto a = run(io, r->mx("partner.test"));
    EXPECT_EQ(a.status, dns_status::ok) << a.error;
    EXPECT_EQ(hosts_of(a), (std::vector<std::string>{"10 mx1.partner.test", "10 mx3.partner.test", "20 mx2.partner.test"}));
    EXPECT_FALSE(a.secure);  // no trust anchor configured
    EXPECT_TRUE(a.error.empty()) << a.error;
    // Case and a trailing dot in the question do not matter.
    const auto b = run(io, r->mx("PARTNER.Test."));
    EXPECT_EQ(hosts_of(b), hosts_of(a));
}

TEST_F(dns_resolver, null_mx) {
    auto r = make();
    const auto a = run(io, r->mx("nullmx.test"));
    EXPECT_EQ(a.status, dns_status::ok) << a.error;
    ASSERT_EQ(a.records.size(), 1u);
    EXPECT_EQ(a.records[0], (dns::mx_record{0, ""}));
}

TEST_F(dns_resolver, nxdomain) {
    auto r = make();
    const auto a = run(io, r->mx("nope.partner.test"));
    EXPECT_EQ(a.status, dns_status::nxdomain) << a.error;
    EXPECT_TRUE(a.records.empty());
    const auto b = run(io, r->addresses("nope.partner.test"));
    EXPECT_EQ(b.status, dns_status::nxdomain) << b.error;
    EXPECT_TRUE(b.addresses.empty());
}

TEST_F(dns_resolver, nodata) {
    auto r = make();
    auto a = run(io, r->mx("nomx.partner.test"));  // has an A record, no MX
    EXPECT_EQ(a.status, dns_status::nodata) << a.error;
    EXPECT_TRUE(a.records.empty());
    auto b = run(io, r->addresses("partner.test"));  // has MX, no A/AAAA
    EXPECT_EQ(b.status, dns_status::nodata) << b.error;
    EXPECT_TRUE(b.addresses.empty());
}

TEST_F(dns_resolver, a_and_aaaa) {
    auto r = make();
    auto a = run(io, r->addresses("mx1.partner.test"));
    EXPECT_EQ(a.status, dns_status::ok) << a.error;
    EXPECT_EQ(a.addresses, (std::vector<std::string>{"127.0.0.2", "::1"}));  // IPv4 first
    EXPECT_FALSE(a.secure);
    a = run(io, r->addresses("v6only.partner.test"));
    EXPECT_EQ(a.status, dns_status::ok) << a.error;
    EXPECT_EQ(a.addresses, (std::vector<std::string>{"2001:db8::25"}));
    a = run(io, r->addresses("many.partner.test"));
    EXPECT_EQ(sorted(a.addresses), (std::vector<std::string>{"127.0.0.10", "127.0.0.11", "127.0.0.12"}));
}

TEST_F(dns_resolver, special_use_names_go_to_the_servers) {
    auto r = make();
    // .test: every test above already depends on it; these are answered by libunbound itself
    // unless its built-in local zones are made transparent.
    auto a = run(io, r->addresses("localhost"));
    EXPECT_EQ(a.status, dns_status::ok) << a.error;
    EXPECT_EQ(a.addresses, (std::vector<std::string>{"127.0.0.9"}));  // ours, not 127.0.0.1
    auto m = run(io, r->mx("invalid"));
    EXPECT_EQ(m.status, dns_status::ok) << m.error;
    EXPECT_EQ(hosts_of(m), (std::vector<std::string>{"5 mx.invalid"}));
    a = run(io, r->addresses("mx.invalid"));
    EXPECT_EQ(a.addresses, (std::vector<std::string>{"127.0.0.7"}));
}

TEST_F(dns_resolver, many_queries_at_once) {
    auto r = make();
    int done = 0, good = 0;
    for (int i = 0; i < 40; ++i) {
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                if (i % 2) {
                    auto a = co_await r->mx("partner.test");
                    good += a.status == dns_status::ok && a.records.size() == 3;
                } else {
                    auto a = co_await r->addresses("mx1.partner.test");
                    good += a.status == dns_status::ok && a.addresses.size() == 2;
                }
                ++done;
            },
            asio::detached);
    }
    io.run();
    EXPECT_EQ(done, 40);
    EXPECT_EQ(good, 40);
}

TEST_F(dns_resolver, invalid_name) {
    auto r = make();
    const auto a = run(io, r->mx("a..b.test"));
    EXPECT_EQ(a.status, dns_status::nxdomain) << a.error;
    EXPECT_NE(a.error.find("not a valid domain name"), std::string::npos) << a.error;
}

TEST(dns_resolver_failures, silent_server_is_temporary_within_the_timeout) {
    asio::io_context io;
    auto r = dns::make_resolver(io.get_executor(), {{"127.0.0.1", silent_port()}},
                                dns::resolver_options{std::chrono::milliseconds(1500)});
    const auto t0 = clock_type::now();
    const auto a = run(io, r->mx("partner.test"));
    const auto elapsed = clock_type::now() - t0;
    EXPECT_EQ(a.status, dns_status::temporary);
    EXPECT_NE(a.error.find("timed out after 1500ms"), std::string::npos) << a.error;
    EXPECT_GE(elapsed, std::chrono::milliseconds(1400));
    EXPECT_LT(elapsed, std::chrono::seconds(5));
    // Both halves of an address lookup time out together, not one after the other.
    const auto t1 = clock_type::now();
    const auto b = run(io, r->addresses("mx1.partner.test"));
    EXPECT_EQ(b.status, dns_status::temporary);
    EXPECT_LT(clock_type::now() - t1, std::chrono::seconds(3));
}

TEST(dns_resolver_failures, destroying_the_resolver_completes_waiting_queries) {
    asio::io_context io;
    auto r = dns::make_resolver(io.get_executor(), {{"127.0.0.1", silent_port()}},
                                dns::resolver_options{std::chrono::seconds(30)});
    std::optional<dns::mx_answer> answer;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> { answer = co_await r->mx("partner.test"); }, asio::detached);
    asio::steady_timer t(io, std::chrono::milliseconds(200));
    t.async_wait([&](const asio::error_code&) { r.reset(); });
    const auto t0 = clock_type::now();
    io.run();
    EXPECT_LT(clock_type::now() - t0, std::chrono::seconds(5));
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, dns_status::temporary);
    EXPECT_NE(answer->error.find("shut down"), std::string::npos) << answer->error;
}

TEST(dns_resolver_system, keeps_the_special_use_zones) {
    // No dns.servers: the system resolver, where RFC 6761 names are answered locally, so
    // this needs no network.
    asio::io_context io;
    auto r = dns::make_resolver(io.get_executor(), {});
    const auto a = run(io, r->addresses("localhost"));
    EXPECT_EQ(a.status, dns_status::ok) << a.error;
    EXPECT_NE(std::find(a.addresses.begin(), a.addresses.end(), "127.0.0.1"), a.addresses.end());
    const auto m = run(io, r->mx("nothing.invalid"));
    EXPECT_EQ(m.status, dns_status::nxdomain) << m.error;
}

TEST(dns_resolver_setup, bad_forwarder_is_a_startup_error) {
    asio::io_context io;
    EXPECT_THROW(dns::make_resolver(io.get_executor(), {{"not-an-ip", 53}}), std::runtime_error);
}

TEST_F(dns_resolver, ptr_records) {
    auto r = make();
    auto a = run(io, r->ptr("127.0.0.5"));
    EXPECT_EQ(a.status, dns_status::ok) << a.error;
    EXPECT_EQ(a.names, std::vector<std::string>{"client.rev.test"});
    a = run(io, r->ptr("::ffff:127.0.0.7"));
    EXPECT_EQ(a.status, dns_status::ok) << a.error;
    EXPECT_EQ(sorted(a.names), (std::vector<std::string>{"nosuch.rev.test", "second.rev.test"}));
    a = run(io, r->ptr("127.0.0.8"));
    EXPECT_EQ(a.status, dns_status::nxdomain);
    a = run(io, r->ptr("not-an-ip"));
    EXPECT_EQ(a.status, dns_status::nxdomain);
}

TEST_F(dns_resolver, forward_confirmed_names) {
    auto r = make();
    auto n = run(io, dns::forward_confirmed_name(*r, "127.0.0.5"));
    EXPECT_EQ(n.name, std::optional<std::string>("client.rev.test")) << n.error;
    EXPECT_FALSE(n.temporary);
    n = run(io, dns::forward_confirmed_name(*r, "127.0.0.6"));  // the PTR name does not point back
    EXPECT_FALSE(n.name);
    EXPECT_FALSE(n.temporary);
    n = run(io, dns::forward_confirmed_name(*r, "127.0.0.7"));  // the second PTR name confirms
    EXPECT_EQ(n.name, std::optional<std::string>("second.rev.test")) << n.error;
    n = run(io, dns::forward_confirmed_name(*r, "127.0.0.8"));  // no PTR
    EXPECT_FALSE(n.name);
    EXPECT_FALSE(n.temporary);
}

// Every MX record malformed: a final answer without records (delivery bounces 5.4.4, Postfix's
// DNS_INVAL), not a temporary failure retried until queue.max_age.
TEST_F(dns_resolver, only_malformed_mx_records_are_final) {
    auto r = make();
    const auto a = run(io, r->mx("badmx.partner.test"));
    EXPECT_EQ(a.status, dns_status::ok) << a.error;
    EXPECT_TRUE(a.records.empty());
    EXPECT_EQ(a.error, "every MX record is malformed");
}

// Postfix: an invalid PTR name is "unknown" for good. A temporary answer would 451 such a
// client under a mandatory name profile on every command, forever (the PTR never changes).
TEST_F(dns_resolver, only_malformed_ptr_names_are_no_name_not_a_failure) {
    auto r = make();
    for (const char* ip : {"127.0.0.9", "127.0.0.10", "127.0.0.11", "127.0.0.12"}) {
        auto a = run(io, r->ptr(ip));
        EXPECT_EQ(a.status, dns_status::nodata) << ip << ": " << a.error;
        EXPECT_TRUE(a.names.empty()) << ip;
        EXPECT_NE(a.error.find("malformed"), std::string::npos) << ip << ": " << a.error;
        auto n = run(io, dns::forward_confirmed_name(*r, ip));
        EXPECT_FALSE(n.name) << ip;
        EXPECT_FALSE(n.temporary) << ip << ": " << n.error;
    }
}

TEST(dns_resolver_failures, forward_confirmation_with_a_silent_server_is_temporary) {
    asio::io_context io;
    auto r = dns::make_resolver(io.get_executor(), {{"127.0.0.1", silent_port()}},
                                dns::resolver_options{std::chrono::milliseconds(500)});
    auto n = run(io, dns::forward_confirmed_name(*r, "127.0.0.5"));
    EXPECT_FALSE(n.name);
    EXPECT_TRUE(n.temporary);
    EXPECT_NE(n.error.find("timed out"), std::string::npos) << n.error;
}
