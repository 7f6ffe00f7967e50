// Helpers shared by the libFuzzer targets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace perpetuo {
namespace fuzz {

constexpr std::size_t kJsonPadding = 64;  // simdjson::SIMDJSON_PADDING

inline std::string_view as_text(const std::uint8_t *data, std::size_t size) {
    return std::string_view(reinterpret_cast<const char *>(data), size);
}

// A copy whose buffer stays readable kJsonPadding bytes past its end, as
// simdjson requires: ASan then flags any read beyond that promise.
inline std::string padded_copy(std::string_view bytes) {
    std::string copy;
    copy.reserve(bytes.size() + kJsonPadding);
    copy.assign(bytes);
    return copy;
}

// A broken invariant is a finding: name it and abort, so libFuzzer keeps the input.
inline void check(bool ok, const char *invariant) {
    if (ok) return;
    std::fprintf(stderr, "fuzz invariant broken: %s\n", invariant);
    std::abort();
}

}  // namespace fuzz
}  // namespace perpetuo
