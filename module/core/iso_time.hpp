// ISO 8601 dates and timestamps as the analytics filters accept them.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace perpetuo {

struct ParsedTime {
    std::int64_t unix_ms = 0;
    bool date_only = false;  // "2026-01-01": the caller decides start or end of day
};

// "2026-01-01", "2026-01-01T14:00:00Z", "2026-01-01T14:00:00.250+02:00",
// "2026-01-01 14:00:00" (UTC when no zone is given).
std::optional<ParsedTime> parse_iso8601(std::string_view text);

}  // namespace perpetuo
