// An analytics call, parsed and validated from its path and query string
// before anything touches Redis.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace perpetuo {

enum class AnalyticsEndpoint { kUsage, kUsageByProvider, kLogs, kLatency, kErrors };

struct AnalyticsRequest {
    AnalyticsEndpoint endpoint = AnalyticsEndpoint::kUsage;
    std::string workspace;
    int days = 0;  // counters: how many daily buckets, today included
    // logs
    int page = 1;
    int limit = 50;
    std::string provider, model;
    int status = 0;  // 0: any
    std::int64_t start_ms = 0;
    std::int64_t end_ms = INT64_MAX;
};

struct AnalyticsError {
    int status = 400;  // 400 or 404
    std::string code;
    std::string message;
};

// Paths end in /workspaces/<id>/<endpoint>, under any location prefix.
// `retention_days` bounds what `days` may ask for and is the default of /usage.
std::optional<AnalyticsRequest> parse_analytics_request(std::string_view path,
                                                        std::string_view query, int retention_days,
                                                        AnalyticsError *error);

bool valid_workspace_id(std::string_view id);

}  // namespace perpetuo
