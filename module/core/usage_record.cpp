#include "usage_record.hpp"

#include <ctime>

namespace perpetuo {

ErrorClass error_class(int status) {
    if (status == 504 || status == 408) return ErrorClass::kTimeout;
    if (status >= 500) return ErrorClass::kServer5xx;
    if (status >= 400 && status != 499) return ErrorClass::kClient4xx;
    return ErrorClass::kNone;
}

namespace {

std::tm utc(std::int64_t unix_ms) {
    std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    return tm;
}

}  // namespace

std::string rfc3339_utc(std::int64_t unix_ms) {
    std::tm tm = utc(unix_ms);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

std::string day_bucket(std::int64_t unix_ms) {
    std::tm tm = utc(unix_ms);
    char text[16];
    std::strftime(text, sizeof(text), "%Y%m%d", &tm);
    return text;
}

}  // namespace perpetuo
