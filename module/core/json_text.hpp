// Small helpers for writing JSON text by hand where a DOM would be waste.
#pragma once

#include <string>
#include <string_view>

namespace perpetuo {

// Appends `text` as a quoted JSON string.
void append_json_string(std::string &out, std::string_view text);

// {"error": {"code": "...", "message": "..."}} — the gateway's one error shape.
std::string json_error(std::string_view code, std::string_view message);

}  // namespace perpetuo
