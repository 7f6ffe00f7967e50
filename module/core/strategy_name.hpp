// The routing strategies an operator can name in nginx.conf or the YAML.
#pragma once

#include <optional>
#include <string_view>

namespace perpetuo {

enum class Strategy { kFallback, kRoundRobin, kWeighted, kCheapest, kFastest, kReliable };

std::optional<Strategy> parse_strategy(std::string_view name);
std::string_view strategy_name(Strategy strategy);

}  // namespace perpetuo
