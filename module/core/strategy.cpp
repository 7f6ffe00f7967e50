#include "strategy.hpp"

namespace perpetuo {

namespace {

std::vector<int> eligible_indexes(const std::vector<CandidateState> &states) {
    std::vector<int> out;
    out.reserve(states.size());
    for (std::size_t i = 0; i < states.size(); ++i)
        if (states[i].eligible) out.push_back(static_cast<int>(i));
    return out;
}

int pick_weighted(const std::vector<CandidateState> &states, const std::vector<int> &eligible,
                  std::uint64_t random) {
    std::uint64_t total = 0;
    for (int i : eligible) total += static_cast<std::uint64_t>(states[i].candidate->weight);
    std::uint64_t point = random % total;
    for (int i : eligible) {
        std::uint64_t w = static_cast<std::uint64_t>(states[i].candidate->weight);
        if (point < w) return i;
        point -= w;
    }
    return eligible.back();
}

// Power of two choices: compare two random candidates and keep the better, so
// the best one gets most traffic while the others are still measured now and
// then. Unmeasured candidates win, so new or recovered providers get sampled.
template <typename Better>
int pick_two_choices(const std::vector<CandidateState> &states, const std::vector<int> &eligible,
                     std::uint64_t random, Better better) {
    if (eligible.size() == 1) return eligible[0];
    std::size_t n = eligible.size();
    std::size_t a = random % n;
    std::size_t b = (a + 1 + (random >> 32) % (n - 1)) % n;
    const CandidateState &x = states[eligible[a]], &y = states[eligible[b]];
    if (!x.measured || !y.measured) return !x.measured ? eligible[a] : eligible[b];
    return better(x, y) ? eligible[a] : eligible[b];
}

}  // namespace

std::int64_t estimated_cost_pico(const Candidate &candidate, const RequestEstimate &estimate) {
    return estimate.input_tokens * candidate.price.input_per_mtok +
           estimate.output_tokens * candidate.price.output_per_mtok;
}

int choose_candidate(Strategy strategy, const std::vector<CandidateState> &states,
                     const RequestEstimate &estimate, std::uint64_t sequence,
                     std::uint64_t random) {
    std::vector<int> eligible = eligible_indexes(states);
    if (eligible.empty()) return -1;
    switch (strategy) {
        case Strategy::kFallback:
            return eligible.front();
        case Strategy::kRoundRobin:
            return eligible[sequence % eligible.size()];
        case Strategy::kWeighted:
            return pick_weighted(states, eligible, random);
        case Strategy::kCheapest: {
            int best = eligible.front();
            std::int64_t best_cost = estimated_cost_pico(*states[best].candidate, estimate);
            for (int i : eligible) {
                std::int64_t cost = estimated_cost_pico(*states[i].candidate, estimate);
                if (cost < best_cost) {
                    best = i;
                    best_cost = cost;
                }
            }
            return best;
        }
        case Strategy::kFastest:
            return pick_two_choices(states, eligible, random,
                                    [](const CandidateState &x, const CandidateState &y) {
                                        return x.latency_ms <= y.latency_ms;
                                    });
        case Strategy::kReliable: {
            // Lowest recent error rate; latency breaks ties.
            int best = -1;
            for (int i : eligible) {
                const CandidateState &s = states[i];
                if (best < 0) {
                    best = i;
                    continue;
                }
                const CandidateState &b = states[best];
                if (s.error_rate < b.error_rate ||
                    (s.error_rate == b.error_rate && s.latency_ms < b.latency_ms))
                    best = i;
            }
            return best;
        }
    }
    return eligible.front();
}

}  // namespace perpetuo
