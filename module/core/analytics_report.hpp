// Turns the per-day Redis hashes and log entries into the seed's JSON shapes
// (extra fields sit beside the seed's, never instead of them).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace perpetuo {

// Sums "<name>:<metric>" fields over many daily hashes.
class DimensionTotals {
public:
    void add(std::string_view field, std::string_view value);
    std::int64_t get(const std::string &name, const std::string &metric) const;
    const std::map<std::string, std::map<std::string, std::int64_t>> &names() const {
        return names_;
    }

private:
    std::map<std::string, std::map<std::string, std::int64_t>> names_;
};

// Keys of the daily hashes for the last `days` days (today included, UTC),
// e.g. "pp:{ws}:d:20260128:p".
std::vector<std::string> day_keys(const std::string &workspace, const char *kind, int days,
                                  std::int64_t now_ms);

std::string render_usage(const DimensionTotals &providers, int days);
std::string render_usage_by_provider(const DimensionTotals &providers);
std::string render_latency(const DimensionTotals &providers, const DimensionTotals &histograms);
std::string render_errors(const DimensionTotals &providers);
// `entries` are the stored entry JSON texts, newest first (one past `limit`
// when there is a next page).
std::string render_logs(const std::vector<std::string_view> &entries, int page, int limit);

// Estimates a percentile (0..1) from latency histogram bucket counts.
double histogram_percentile(const std::vector<std::int64_t> &bucket_counts, double q);

}  // namespace perpetuo
