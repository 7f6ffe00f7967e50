// Query-string parsing for the analytics endpoints (untrusted bytes).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace perpetuo {

// "a=1&b=x%20y" -> {{"a","1"},{"b","x y"}}; '+' is a space. Returns nullopt
// for malformed percent escapes or decoded NUL bytes.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_query_string(
    std::string_view query);

}  // namespace perpetuo
