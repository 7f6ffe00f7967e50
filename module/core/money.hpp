// Money is kept as integer micro-dollars so sums are exact; prices are
// micro-dollars per million tokens so a price like $0.075/Mtok stays exact too.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace perpetuo {

using Micros = std::int64_t;

// Parses a non-negative decimal ("2.50", "0.075", "3") into millionths of its
// unit. Refuses more than 6 decimals, signs, exponents and overflow, because a
// price silently rounded is a bill silently wrong.
std::optional<Micros> parse_decimal_micros(std::string_view text);

// Renders micro-dollars as a JSON number in dollars with up to 6 decimals and
// no trailing zeros: 35 -> "0.000035", 45670000 -> "45.67", 0 -> "0".
std::string format_micros(Micros micros);

}  // namespace perpetuo
