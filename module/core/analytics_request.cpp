#include "analytics_request.hpp"

#include "iso_time.hpp"
#include "query_string.hpp"

namespace perpetuo {

namespace {

struct EndpointName {
    std::string_view path;
    AnalyticsEndpoint endpoint;
    int default_days;  // 0: all retained data
};

constexpr EndpointName kEndpoints[] = {
    {"usage", AnalyticsEndpoint::kUsage, 0},
    {"usage/by-provider", AnalyticsEndpoint::kUsageByProvider, 30},
    {"logs", AnalyticsEndpoint::kLogs, 0},
    {"performance/latency", AnalyticsEndpoint::kLatency, 30},
    {"performance/errors", AnalyticsEndpoint::kErrors, 30},
};

std::optional<int> bounded_int(std::string_view text, int min, int max) {
    if (text.empty() || text.size() > 9) return std::nullopt;
    int v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    if (v < min || v > max) return std::nullopt;
    return v;
}

AnalyticsError bad(std::string message) {
    return AnalyticsError{400, "invalid_parameter", std::move(message)};
}

}  // namespace

bool valid_workspace_id(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
    return true;
}

std::optional<AnalyticsRequest> parse_analytics_request(std::string_view path,
                                                        std::string_view query, int retention_days,
                                                        AnalyticsError *error) {
    constexpr std::string_view kMarker = "/workspaces/";
    std::size_t at = path.rfind(kMarker);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    if (at == std::string_view::npos || at + kMarker.size() > path.size()) {
        *error = {404, "not_found", "expected /workspaces/:workspaceId/<endpoint>"};
        return std::nullopt;
    }
    std::string_view rest = path.substr(at + kMarker.size());
    std::size_t slash = rest.find('/');
    std::string_view id = rest.substr(0, slash);
    std::string_view endpoint = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
    const EndpointName *match = nullptr;
    for (const EndpointName &e : kEndpoints)
        if (e.path == endpoint) match = &e;
    if (match == nullptr) {
        *error = {404, "not_found",
                  "unknown endpoint (usage, usage/by-provider, logs, performance/latency, "
                  "performance/errors)"};
        return std::nullopt;
    }
    if (!valid_workspace_id(id)) {
        *error = bad("workspace ids match [A-Za-z0-9_-]{1,64}");
        return std::nullopt;
    }
    AnalyticsRequest req;
    req.endpoint = match->endpoint;
    req.workspace = std::string(id);
    req.days = match->default_days ? std::min(match->default_days, retention_days) : retention_days;

    auto params = parse_query_string(query);
    if (!params) {
        *error = bad("malformed query string");
        return std::nullopt;
    }
    bool logs = req.endpoint == AnalyticsEndpoint::kLogs;
    for (const auto &[key, value] : *params) {
        if (key == "days" && !logs) {
            auto days = bounded_int(value, 1, 3650);
            if (!days) {
                *error = bad("days must be a whole number from 1 to 3650");
                return std::nullopt;
            }
            req.days = std::min(*days, retention_days);
        } else if (logs && key == "page") {
            auto page = bounded_int(value, 1, 1000000);
            if (!page) {
                *error = bad("page must be a whole number from 1");
                return std::nullopt;
            }
            req.page = *page;
        } else if (logs && key == "limit") {
            auto limit = bounded_int(value, 1, 1000);
            if (!limit) {
                *error = bad("limit must be a whole number from 1 to 1000");
                return std::nullopt;
            }
            req.limit = *limit;
        } else if (logs && (key == "provider" || key == "model")) {
            if (value.empty() || value.size() > 128) {
                *error = bad(key + " must be a name of 1 to 128 characters");
                return std::nullopt;
            }
            (key == "provider" ? req.provider : req.model) = value;
        } else if (logs && key == "status") {
            auto status = bounded_int(value, 100, 599);
            if (!status) {
                *error = bad("status must be an HTTP status code (100-599)");
                return std::nullopt;
            }
            req.status = *status;
        } else if (logs && (key == "start_date" || key == "end_date")) {
            auto t = parse_iso8601(value);
            if (!t) {
                *error = bad(key + " must be an ISO 8601 date (2026-01-01) or timestamp "
                                   "(2026-01-01T14:00:00Z)");
                return std::nullopt;
            }
            if (key == "start_date") {
                req.start_ms = t->unix_ms;
            } else {
                // A date alone means the whole of that day.
                req.end_ms = t->date_only ? t->unix_ms + 86400000 - 1 : t->unix_ms;
            }
        }
        // Other parameters are ignored, as dashboards add cache busters.
    }
    if (req.start_ms > req.end_ms) {
        *error = bad("start_date is after end_date");
        return std::nullopt;
    }
    return req;
}

}  // namespace perpetuo
