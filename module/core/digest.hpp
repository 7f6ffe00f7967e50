// Hex digests: virtual keys are stored only as SHA-256, and Redis names
// scripts by SHA-1.
#pragma once

#include <string>
#include <string_view>

namespace perpetuo {

std::string sha256_hex(std::string_view data);
std::string sha1_hex(std::string_view data);

}  // namespace perpetuo
