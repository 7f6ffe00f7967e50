#include "analytics_report.hpp"

#include <cmath>

#include "accounting_queue.hpp"
#include "json_text.hpp"
#include "latency_buckets.hpp"
#include "money.hpp"
#include "usage_record.hpp"

namespace perpetuo {

namespace {

// A non-negative ratio or average as a JSON number with up to 6 decimals.
std::string number6(double v) {
    if (!std::isfinite(v) || v < 0) v = 0;
    v = std::min(v, 1e12);  // keeps v * 1e6 inside int64
    return format_micros(static_cast<Micros>(std::llround(v * 1e6)));
}

double ratio(std::int64_t a, std::int64_t b) { return b > 0 ? static_cast<double>(a) / b : 0.0; }

void open_name(std::string &j, bool &first, const std::string &name) {
    if (!first) j += ",";
    first = false;
    append_json_string(j, name);
    j += ":{";
}

std::string usage_fields(const std::map<std::string, std::int64_t> &m) {
    auto get = [&](const char *k) {
        auto it = m.find(k);
        return it == m.end() ? 0 : it->second;
    };
    return "\"tokens\":" + std::to_string(get("tok")) + ",\"cost\":" + format_micros(get("cost")) +
           ",\"requests\":" + std::to_string(get("req")) +
           ",\"input_tokens\":" + std::to_string(get("in") + get("cr") + get("cw")) +
           ",\"output_tokens\":" + std::to_string(get("out")) +
           ",\"cached_tokens\":" + std::to_string(get("cr"));
}

// {"<name>": {<fields>}, ...} over the names with calls in the period.
template <typename Fields>
std::string per_name(const DimensionTotals &totals, bool skip_idle, Fields fields) {
    std::string j = "{";
    bool first = true;
    for (const auto &entry : totals.names()) {
        const std::string &name = entry.first;
        std::int64_t req = totals.get(name, "req");
        if (skip_idle && req == 0) continue;
        open_name(j, first, name);
        j += fields(name, entry.second, req) + "}";
    }
    return j + "}";
}

std::vector<std::int64_t> buckets(const DimensionTotals &h, const std::string &name,
                                  const char *prefix) {
    std::vector<std::int64_t> counts(kLatencyBuckets);
    for (std::size_t i = 0; i < kLatencyBuckets; ++i)
        counts[i] = h.get(name, prefix + std::to_string(i));
    return counts;
}

}  // namespace

void DimensionTotals::add(std::string_view field, std::string_view value) {
    std::size_t colon = field.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return;
    std::int64_t n = 0;
    bool negative = !value.empty() && value[0] == '-';
    std::string_view digits = value.substr(negative ? 1 : 0);
    // Real counters stay far below 10^15; anything longer is not ours, and
    // refusing it keeps every sum of them clear of overflow.
    if (digits.empty() || digits.size() > 15) return;
    for (char c : digits) {
        if (c < '0' || c > '9') return;
        n = n * 10 + (c - '0');
    }
    names_[std::string(field.substr(0, colon))][std::string(field.substr(colon + 1))] +=
        negative ? -n : n;
}

std::int64_t DimensionTotals::get(const std::string &name, const std::string &metric) const {
    auto n = names_.find(name);
    if (n == names_.end()) return 0;
    auto m = n->second.find(metric);
    return m == n->second.end() ? 0 : m->second;
}

std::vector<std::string> day_keys(const std::string &workspace, const char *kind, int days,
                                  std::int64_t now_ms) {
    std::vector<std::string> keys;
    std::string prefix = workspace_prefix(workspace) + ":d:";
    for (int i = 0; i < days; ++i)
        keys.push_back(prefix + day_bucket(now_ms - static_cast<std::int64_t>(i) * 86400000) + ":" +
                       kind);
    return keys;
}

std::string render_usage(const DimensionTotals &providers, int days) {
    std::int64_t tokens = 0, cost = 0, requests = 0;
    for (const auto &entry : providers.names()) {
        tokens += providers.get(entry.first, "tok");
        cost += providers.get(entry.first, "cost");
        requests += providers.get(entry.first, "req");
    }
    return "{\"total_tokens\":" + std::to_string(tokens) + ",\"total_cost\":" + format_micros(cost) +
           ",\"by_provider\":" + render_usage_by_provider(providers) +
           ",\"total_requests\":" + std::to_string(requests) + ",\"days\":" + std::to_string(days) +
           "}";
}

std::string render_usage_by_provider(const DimensionTotals &providers) {
    return per_name(providers, false,
                    [](const std::string &, const auto &m, std::int64_t) { return usage_fields(m); });
}

std::string render_latency(const DimensionTotals &providers, const DimensionTotals &histograms) {
    return per_name(providers, true, [&](const std::string &name, const auto &, std::int64_t req) {
        std::vector<std::int64_t> lat = buckets(histograms, name, "lb");
        std::string j =
            "\"average_latency_ms\":" + number6(std::round(ratio(providers.get(name, "lat"), req)));
        j += ",\"p50_latency_ms\":" + number6(std::round(histogram_percentile(lat, 0.50)));
        j += ",\"p95_latency_ms\":" + number6(std::round(histogram_percentile(lat, 0.95)));
        j += ",\"p99_latency_ms\":" + number6(std::round(histogram_percentile(lat, 0.99)));
        j += ",\"requests\":" + std::to_string(req);
        std::int64_t streams = providers.get(name, "sn");
        j += ",\"streamed_requests\":" + std::to_string(streams);
        if (streams > 0) {
            std::vector<std::int64_t> ttft = buckets(histograms, name, "tb");
            j += ",\"average_ttft_ms\":" +
                 number6(std::round(ratio(providers.get(name, "ttft"), streams)));
            j += ",\"p50_ttft_ms\":" + number6(std::round(histogram_percentile(ttft, 0.50)));
            j += ",\"p95_ttft_ms\":" + number6(std::round(histogram_percentile(ttft, 0.95)));
        }
        return j;
    });
}

std::string render_errors(const DimensionTotals &providers) {
    return per_name(providers, true, [&](const std::string &name, const auto &, std::int64_t req) {
        std::int64_t e4 = providers.get(name, "e4"), e5 = providers.get(name, "e5"),
                     et = providers.get(name, "et");
        return "\"error_rate\":" + number6(ratio(e4 + e5 + et, req)) +
               ",\"errors\":" + std::to_string(e4 + e5 + et) + ",\"requests\":" + std::to_string(req) +
               ",\"by_class\":{\"4xx\":" + std::to_string(e4) + ",\"5xx\":" + std::to_string(e5) +
               ",\"timeout\":" + std::to_string(et) +
               "},\"client_closed\":" + std::to_string(providers.get(name, "cc"));
    });
}

std::string render_logs(const std::vector<std::string_view> &entries, int page, int limit) {
    std::string j = "{\"logs\":[";
    int shown = 0;
    for (std::string_view e : entries) {
        if (shown == limit) break;
        if (shown++) j += ",";
        j += e;
    }
    j += "],\"page\":" + std::to_string(page) + ",\"limit\":" + std::to_string(limit) +
         ",\"has_more\":" + (static_cast<int>(entries.size()) > limit ? "true" : "false") + "}";
    return j;
}

double histogram_percentile(const std::vector<std::int64_t> &counts, double q) {
    std::int64_t total = 0;
    for (std::int64_t c : counts) total += c;
    if (total == 0) return 0;
    double rank = q * static_cast<double>(total);
    std::int64_t seen = 0;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        if (counts[i] == 0) continue;
        if (static_cast<double>(seen + counts[i]) >= rank) {
            double lower = i == 0 ? 0 : static_cast<double>(kLatencyBoundsMs[i - 1]);
            double upper = i < kLatencyBoundsMs.size() ? static_cast<double>(kLatencyBoundsMs[i])
                                                       : lower;
            double within = (rank - static_cast<double>(seen)) / static_cast<double>(counts[i]);
            return lower + (upper - lower) * std::max(0.0, std::min(1.0, within));
        }
        seen += counts[i];
    }
    return static_cast<double>(kLatencyBoundsMs.back());
}

}  // namespace perpetuo
