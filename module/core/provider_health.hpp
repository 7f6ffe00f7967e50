// Live health of one provider as every worker sees it: time-decayed latency
// (kept apart for streams and non-streams), recent error rate, calls in
// flight and the circuit breaker. Plain old data of fixed size, so it can
// live in nginx's shared memory; all functions take the clock as an argument.
#pragma once

#include <cstdint>

namespace perpetuo {

struct BreakerPolicy {
    int consecutive_failures = 5;      // open after this many failures in a row
    double failure_rate = 0.5;         // ... or this recent failure rate
    std::int64_t min_requests = 20;    // ... once there are at least this many recent calls
    std::int64_t cooldown_ms = 30000;  // open for this long, then one probe
};

enum class BreakerState : std::int32_t { kClosed = 0, kOpen = 1, kHalfOpen = 2 };

struct ProviderHealth {
    std::int64_t latency_us = 0;  // decayed average, non-streaming calls (total latency)
    std::int64_t ttft_us = 0;     // decayed average, streaming calls (time to first byte)
    std::int64_t latency_at_ms = 0, ttft_at_ms = 0;  // when each was last updated (0: never)
    std::int64_t recent_ok_milli = 0, recent_failed_milli = 0;  // decayed counts x1000
    std::int64_t recent_at_ms = 0;
    std::int64_t in_flight = 0;
    std::int32_t consecutive_failures = 0;
    BreakerState state = BreakerState::kClosed;
    std::int64_t opened_at_ms = 0;
    std::int64_t probe_started_ms = 0;  // half-open: the probe in flight (0: none)
    std::int64_t opened_total = 0;      // times the breaker opened, for metrics
};

// The outcome of a finished attempt. `failed` is a provider failure
// (connect error, timeout, 429, 5xx), not a client's mistake.
void record_attempt(ProviderHealth &h, std::int64_t now_ms, bool failed, bool stream,
                    std::int64_t latency_ms, std::int64_t ttft_ms, const BreakerPolicy &policy);

// May this provider take a call now? An open breaker whose cooldown has
// passed lets exactly one probe through (and this call claims it).
bool admit(ProviderHealth &h, std::int64_t now_ms, const BreakerPolicy &policy);

// Decayed numbers for strategies.
double recent_error_rate(const ProviderHealth &h, std::int64_t now_ms);
bool has_latency(const ProviderHealth &h, bool stream);
double latency_ms(const ProviderHealth &h, bool stream);

}  // namespace perpetuo
