#include "provider_health.hpp"

#include <algorithm>
#include <cmath>

namespace perpetuo {

namespace {

// Latency follows recent calls within seconds; error counts forget over a
// minute, so a burst of failures is noticed fast and forgiven slowly.
constexpr double kLatencyTauMs = 10000;
constexpr double kRecentTauMs = 60000;
constexpr double kMinAlpha = 0.2;  // a single new sample always moves the average

void decay_recent(ProviderHealth &h, std::int64_t now_ms) {
    if (h.recent_at_ms != 0 && now_ms > h.recent_at_ms) {
        double keep = std::exp(-static_cast<double>(now_ms - h.recent_at_ms) / kRecentTauMs);
        h.recent_ok_milli = static_cast<std::int64_t>(h.recent_ok_milli * keep);
        h.recent_failed_milli = static_cast<std::int64_t>(h.recent_failed_milli * keep);
    }
    h.recent_at_ms = now_ms;
}

void update_average(std::int64_t &avg_us, std::int64_t &at_ms, std::int64_t now_ms,
                    std::int64_t sample_ms) {
    std::int64_t sample_us = sample_ms * 1000;
    if (at_ms == 0) {
        avg_us = sample_us;
    } else {
        double dt = static_cast<double>(std::max<std::int64_t>(now_ms - at_ms, 0));
        double alpha = std::max(kMinAlpha, 1.0 - std::exp(-dt / kLatencyTauMs));
        avg_us += static_cast<std::int64_t>(alpha * static_cast<double>(sample_us - avg_us));
    }
    at_ms = now_ms;
}

}  // namespace

void record_attempt(ProviderHealth &h, std::int64_t now_ms, bool failed, bool stream,
                    std::int64_t latency, std::int64_t ttft, const BreakerPolicy &policy) {
    if (h.in_flight > 0) --h.in_flight;
    decay_recent(h, now_ms);
    (failed ? h.recent_failed_milli : h.recent_ok_milli) += 1000;
    if (!failed) {
        if (stream && ttft >= 0)
            update_average(h.ttft_us, h.ttft_at_ms, now_ms, ttft);
        else if (!stream)
            update_average(h.latency_us, h.latency_at_ms, now_ms, latency);
    }
    if (h.state == BreakerState::kHalfOpen) {
        // The probe's answer decides: closed again, or another cooldown.
        h.probe_started_ms = 0;
        if (failed) {
            h.state = BreakerState::kOpen;
            h.opened_at_ms = now_ms;
            ++h.opened_total;
        } else {
            h.state = BreakerState::kClosed;
            h.consecutive_failures = 0;
            h.recent_failed_milli = 0;
        }
        return;
    }
    h.consecutive_failures = failed ? h.consecutive_failures + 1 : 0;
    if (h.state != BreakerState::kClosed || !failed) return;
    std::int64_t recent = (h.recent_ok_milli + h.recent_failed_milli) / 1000;
    bool too_many_in_a_row = h.consecutive_failures >= policy.consecutive_failures;
    bool rate_too_high = recent >= policy.min_requests &&
                         recent_error_rate(h, now_ms) >= policy.failure_rate;
    if (too_many_in_a_row || rate_too_high) {
        h.state = BreakerState::kOpen;
        h.opened_at_ms = now_ms;
        ++h.opened_total;
    }
}

bool admit(ProviderHealth &h, std::int64_t now_ms, const BreakerPolicy &policy) {
    switch (h.state) {
        case BreakerState::kClosed:
            return true;
        case BreakerState::kOpen:
            if (now_ms - h.opened_at_ms < policy.cooldown_ms) return false;
            h.state = BreakerState::kHalfOpen;
            h.probe_started_ms = now_ms;
            return true;
        case BreakerState::kHalfOpen:
            // One probe at a time; a probe that never reported (worker died)
            // is given up after another cooldown.
            if (h.probe_started_ms != 0 && now_ms - h.probe_started_ms < policy.cooldown_ms)
                return false;
            h.probe_started_ms = now_ms;
            return true;
    }
    return true;
}

double recent_error_rate(const ProviderHealth &h, std::int64_t now_ms) {
    double keep = h.recent_at_ms != 0 && now_ms > h.recent_at_ms
                      ? std::exp(-static_cast<double>(now_ms - h.recent_at_ms) / kRecentTauMs)
                      : 1.0;
    double ok = h.recent_ok_milli * keep, failed = h.recent_failed_milli * keep;
    return ok + failed > 0 ? failed / (ok + failed) : 0.0;
}

bool has_latency(const ProviderHealth &h, bool stream) {
    return (stream ? h.ttft_at_ms : h.latency_at_ms) != 0;
}

double latency_ms(const ProviderHealth &h, bool stream) {
    return static_cast<double>(stream ? h.ttft_us : h.latency_us) / 1000.0;
}

}  // namespace perpetuo
