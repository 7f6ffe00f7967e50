// Prometheus metrics as fixed-size plain data, so nginx's shared memory can
// hold them and one scrape sees every worker. Series are keyed by
// (workspace, provider, model, status) in an open-addressed table of bounded
// size; what does not fit is counted, not crashing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "provider_health.hpp"

namespace perpetuo {

// OpenTelemetry GenAI's advised bucket boundaries.
inline constexpr std::array<double, 14> kDurationBoundsSeconds = {
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
inline constexpr std::array<double, 14> kTokenBounds = {
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
inline constexpr std::array<double, 10> kOverheadBoundsSeconds = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01};

template <std::size_t N>
struct Histogram {
    std::int64_t buckets[N + 1] = {};  // per bucket (not cumulative); the last is +Inf
    std::int64_t count = 0;
    double sum = 0;

    void observe(double value, const std::array<double, N> &bounds) {
        std::size_t i = 0;
        while (i < N && value > bounds[i]) ++i;
        ++buckets[i];
        ++count;
        sum += value;
    }
};

struct SeriesKey {
    char workspace[65] = {};
    char provider[65] = {};
    char model[129] = {};
    std::int32_t status = 0;
};

struct MetricSeries {
    std::uint64_t hash = 0;  // 0: free slot
    SeriesKey key;
    std::int64_t requests = 0;
    std::int64_t cost_micros = 0;
    std::int64_t input_tokens = 0, output_tokens = 0, cached_tokens = 0;
    Histogram<kDurationBoundsSeconds.size()> duration;
    Histogram<kDurationBoundsSeconds.size()> ttft;
    Histogram<kTokenBounds.size()> input_usage, output_usage;
};

struct ProviderMetrics {
    std::int64_t errors_4xx = 0, errors_5xx = 0, errors_timeout = 0;
    std::int64_t failovers = 0;
};

inline constexpr std::size_t kMaxWorkers = 64;

struct GlobalMetrics {
    Histogram<kOverheadBoundsSeconds.size()> overhead;
    std::int64_t series_overflow = 0;
    std::int64_t redis_dropped_records = 0;
    std::int64_t redis_queue_records[kMaxWorkers] = {};
    std::int32_t redis_connected[kMaxWorkers] = {};
    std::int32_t workers = 0;
};

// One finished call, as the metrics see it.
struct CallObservation {
    std::string workspace, provider, model;
    int status = 0;
    std::int64_t cost_micros = 0;
    std::int64_t input_tokens = 0, output_tokens = 0, cached_tokens = 0;
    double duration_seconds = 0;
    double ttft_seconds = -1;  // < 0: no first byte
};

SeriesKey series_key(const CallObservation &call);
std::uint64_t series_hash(const SeriesKey &key);

// Finds or claims the series of `key` in `table` (capacity `slots`); null
// when the table is full.
MetricSeries *find_series(MetricSeries *table, std::size_t slots, const SeriesKey &key,
                          std::uint64_t hash);
void observe_call(MetricSeries &series, const CallObservation &call);

struct ProviderSnapshot {
    std::string name;
    ProviderHealth health;
    ProviderMetrics metrics;
};

struct MetricsSnapshot {
    std::vector<MetricSeries> series;
    std::vector<ProviderSnapshot> providers;
    GlobalMetrics global;
};

// Prometheus text exposition format 0.0.4.
std::string render_metrics(const MetricsSnapshot &snapshot);

}  // namespace perpetuo
