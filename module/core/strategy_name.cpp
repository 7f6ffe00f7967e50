#include "strategy_name.hpp"

namespace perpetuo {

namespace {

struct Named {
    std::string_view name;
    Strategy strategy;
};

constexpr Named kStrategies[] = {
    {"fallback", Strategy::kFallback}, {"round_robin", Strategy::kRoundRobin},
    {"weighted", Strategy::kWeighted}, {"cheapest", Strategy::kCheapest},
    {"fastest", Strategy::kFastest},   {"reliable", Strategy::kReliable},
};

}  // namespace

std::optional<Strategy> parse_strategy(std::string_view name) {
    for (const Named &s : kStrategies)
        if (s.name == name) return s.strategy;
    return std::nullopt;
}

std::string_view strategy_name(Strategy strategy) {
    for (const Named &s : kStrategies)
        if (s.strategy == strategy) return s.name;
    return "fallback";
}

}  // namespace perpetuo
