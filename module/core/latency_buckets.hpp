// Latency histogram bucket bounds shared by the Redis day buckets (for
// percentiles in analytics) and anything else that renders them.
#pragma once

#include <array>
#include <cstdint>

namespace perpetuo {

// Upper bounds in milliseconds; a last, unbounded bucket follows them.
inline constexpr std::array<std::int64_t, 14> kLatencyBoundsMs = {
    25, 50, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000, 30000, 60000, 120000};
inline constexpr std::size_t kLatencyBuckets = kLatencyBoundsMs.size() + 1;

inline std::size_t latency_bucket(std::int64_t ms) {
    std::size_t i = 0;
    while (i < kLatencyBoundsMs.size() && ms > kLatencyBoundsMs[i]) ++i;
    return i;
}

}  // namespace perpetuo
