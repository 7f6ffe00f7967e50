// The Redis side of accounting: one Lua script applies a workspace's batch
// atomically and at most once.
#pragma once

#include <string>
#include <string_view>

namespace perpetuo {

std::string_view accounting_script();
// Lowercase hex SHA-1 of the script, for EVALSHA.
const std::string &accounting_script_sha1();

}  // namespace perpetuo
