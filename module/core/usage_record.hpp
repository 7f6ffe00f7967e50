// One proxied call, as it is stored for analytics: every call produces
// exactly one record, success or failure.
#pragma once

#include <cstdint>
#include <string>

#include "money.hpp"
#include "usage.hpp"

namespace perpetuo {

struct UsageRecord {
    std::string request_id;
    std::string workspace;
    std::string provider;
    std::string model;  // the name the client asked for
    Usage usage;
    Micros cost_micros = 0;
    int status = 0;  // what the client got (499 when it went away)
    std::int64_t latency_ms = 0;
    std::int64_t ttfb_ms = -1;  // time to the provider's first byte; -1 if none came
    bool stream = false;
    std::int64_t created_ms = 0;  // Unix time in milliseconds, UTC
};

// How a status counts for error rates: a client that went away is not the
// provider's error.
enum class ErrorClass { kNone, kClient4xx, kServer5xx, kTimeout };
ErrorClass error_class(int status);

// "2026-01-28T14:00:00Z"
std::string rfc3339_utc(std::int64_t unix_ms);
// "20260128", the per-day bucket a record counts in.
std::string day_bucket(std::int64_t unix_ms);

}  // namespace perpetuo
