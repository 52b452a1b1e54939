// tests/unit/net/connection_cache_test.cpp - outbound::connection_cache hands a parked session
// out only under the key it was parked with, the configuration it was checked under (the same
// object: a reload must not let a session checked under the old rules carry mail) and within
// max_age of its set-up; a session refused for either reason is closed, not kept.
// The sessions are never connected: only the cache's bookkeeping is under test.
// Asio first (see dns_resolver_test.cpp).
#include <asio/io_context.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "outbound/connection_cache.hpp"

using namespace postern;
using namespace std::chrono_literals;

namespace {

struct fixture {
    asio::io_context io{1};
    outbound::connection_cache cache{io.get_executor(), 5s, 200, 300s};
    std::shared_ptr<const void> cfg_a = std::make_shared<int>(1);
    std::shared_ptr<const void> cfg_b = std::make_shared<int>(2);

    outbound::parked_session session(std::shared_ptr<const void> cfg,
                                     std::chrono::steady_clock::time_point established) {
        outbound::parked_session p;
        p.conn = std::make_shared<runtime::timed_connection>(io.get_executor());
        p.session = std::make_unique<smtp::client_session>(smtp::client_settings{});
        p.tls = "verified";
        p.checked_under = std::move(cfg);
        p.established = established;
        return p;
    }
};

const auto now = [] { return std::chrono::steady_clock::now(); };

TEST(ConnectionCache, SameKeyAndConfigurationIsReused) {
    fixture f;
    f.cache.put("mx|1.2.3.4|25|partner|ca", f.session(f.cfg_a, now()));
    auto p = f.cache.take("mx|1.2.3.4|25|partner|ca", f.cfg_a);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->tls, "verified");
    EXPECT_EQ(p->checked_under, f.cfg_a);
    EXPECT_EQ(f.cache.size(), 0u);
}

TEST(ConnectionCache, AnotherKeyIsNotServed) {
    fixture f;
    f.cache.put("mx|1.2.3.4|25|partner|ca", f.session(f.cfg_a, now()));
    EXPECT_FALSE(f.cache.take("mx|1.2.3.4|25|partner|ca+name|b.test", f.cfg_a));
    EXPECT_EQ(f.cache.size(), 1u) << "a session under another key stays parked";
}

TEST(ConnectionCache, ASessionCheckedUnderAnotherConfigurationIsClosed) {
    fixture f;
    f.cache.put("k", f.session(f.cfg_a, now()));
    EXPECT_FALSE(f.cache.take("k", f.cfg_b));
    EXPECT_EQ(f.cache.size(), 0u) << "the stale session is closed, not left for the old configuration";
    EXPECT_FALSE(f.cache.take("k", f.cfg_a));
}

TEST(ConnectionCache, ASessionOlderThanMaxAgeIsClosed) {
    fixture f;
    f.cache.put("k", f.session(f.cfg_a, now() - 301s));
    f.cache.put("k", f.session(f.cfg_a, now() - 10s));
    auto p = f.cache.take("k", f.cfg_a);
    ASSERT_TRUE(p) << "the younger session is served";
    EXPECT_GT(p->established, now() - 300s);
    EXPECT_EQ(f.cache.size(), 0u) << "the old one was closed on the way";
}

}  // namespace
