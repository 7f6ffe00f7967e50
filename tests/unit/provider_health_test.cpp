#include "provider_health.hpp"

#include <gtest/gtest.h>

namespace perpetuo {
namespace {

BreakerPolicy policy() {
    BreakerPolicy p;
    p.consecutive_failures = 3;
    p.failure_rate = 0.5;
    p.min_requests = 10;
    p.cooldown_ms = 1000;
    return p;
}

void fail(ProviderHealth &h, std::int64_t now, int times = 1) {
    for (int i = 0; i < times; ++i) record_attempt(h, now, true, false, 100, -1, policy());
}

void succeed(ProviderHealth &h, std::int64_t now, std::int64_t latency = 100) {
    record_attempt(h, now, false, false, latency, -1, policy());
}

TEST(Breaker, OpensAfterConsecutiveFailuresAndRefusesUntilCooldown) {
    ProviderHealth h;
    fail(h, 1000, 2);
    EXPECT_EQ(h.state, BreakerState::kClosed);
    fail(h, 1000);
    EXPECT_EQ(h.state, BreakerState::kOpen);
    EXPECT_FALSE(admit(h, 1999, policy()));
    EXPECT_EQ(h.opened_total, 1);
}

TEST(Breaker, LetsExactlyOneProbeThroughAfterCooldown) {
    ProviderHealth h;
    fail(h, 0, 3);
    EXPECT_TRUE(admit(h, 1000, policy()));
    EXPECT_EQ(h.state, BreakerState::kHalfOpen);
    EXPECT_FALSE(admit(h, 1001, policy())) << "a second call waits for the probe";
    succeed(h, 1050);
    EXPECT_EQ(h.state, BreakerState::kClosed);
    EXPECT_TRUE(admit(h, 1051, policy()));
}

TEST(Breaker, AFailedProbeOpensItAgain) {
    ProviderHealth h;
    fail(h, 0, 3);
    ASSERT_TRUE(admit(h, 1000, policy()));
    fail(h, 1010);
    EXPECT_EQ(h.state, BreakerState::kOpen);
    EXPECT_FALSE(admit(h, 1500, policy()));
    EXPECT_TRUE(admit(h, 2010, policy()));
}

TEST(Breaker, AProbeThatNeverReportsIsGivenUpAfterAnotherCooldown) {
    ProviderHealth h;
    fail(h, 0, 3);
    ASSERT_TRUE(admit(h, 1000, policy()));
    EXPECT_FALSE(admit(h, 1999, policy()));
    EXPECT_TRUE(admit(h, 2000, policy()));
}

TEST(Breaker, OpensOnFailureRateOnceThereAreEnoughCalls) {
    ProviderHealth h;
    for (int i = 0; i < 6; ++i) {
        succeed(h, i);
        fail(h, i);  // never three failures in a row
    }
    EXPECT_EQ(h.state, BreakerState::kOpen) << "50% of 12 recent calls failed";
}

TEST(Breaker, SuccessResetsTheConsecutiveCount) {
    ProviderHealth h;
    fail(h, 0, 2);
    succeed(h, 1);
    fail(h, 2, 2);
    EXPECT_EQ(h.state, BreakerState::kClosed);
}

TEST(ProviderHealth, LatencyIsTimeDecayedAndKeptApartForStreams) {
    ProviderHealth h;
    EXPECT_FALSE(has_latency(h, false));
    succeed(h, 1000, 100);
    EXPECT_DOUBLE_EQ(latency_ms(h, false), 100);
    EXPECT_FALSE(has_latency(h, true));
    record_attempt(h, 1000, false, true, 900, 40, policy());
    EXPECT_DOUBLE_EQ(latency_ms(h, true), 40);
    EXPECT_DOUBLE_EQ(latency_ms(h, false), 100) << "a stream's total time is not a latency";
    succeed(h, 1001, 200);  // 1 ms later: a small step
    double soon = latency_ms(h, false);
    EXPECT_GT(soon, 100);
    EXPECT_LT(soon, 150);
    succeed(h, 61001, 200);  // a minute later: the old value is forgotten
    EXPECT_NEAR(latency_ms(h, false), 200, 1);
}

TEST(ProviderHealth, ErrorRateForgetsOverTime) {
    ProviderHealth h;  // times are Unix milliseconds, never 0 in production
    fail(h, 1000);
    succeed(h, 1000);
    EXPECT_DOUBLE_EQ(recent_error_rate(h, 1000), 0.5);
    succeed(h, 601000);  // ten minutes of health later
    EXPECT_LT(recent_error_rate(h, 601000), 0.01);
}

TEST(ProviderHealth, InFlightNeverGoesNegative) {
    ProviderHealth h;
    h.in_flight = 1;
    succeed(h, 0);
    succeed(h, 0);
    EXPECT_EQ(h.in_flight, 0);
}

}  // namespace
}  // namespace perpetuo
