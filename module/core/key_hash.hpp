// Virtual keys are stored only as SHA-256 digests; this is the one place that
// turns a presented key into the digest the YAML lists.
#pragma once

#include <string>
#include <string_view>

namespace perpetuo {

std::string sha256_hex(std::string_view data);

}  // namespace perpetuo
