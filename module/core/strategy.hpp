// Picks one candidate of a model for a request. Pure: the caller passes the
// live numbers, the round-robin position and the randomness, so every
// decision is reproducible in tests.
#pragma once

#include <cstdint>
#include <vector>

#include "config.hpp"
#include "strategy_name.hpp"

namespace perpetuo {

struct CandidateState {
    const Candidate *candidate = nullptr;
    bool eligible = true;      // false: wrong API for its provider, excluded, or breaker open
    bool measured = false;     // latency/error numbers below mean something
    double latency_ms = 0;     // time-decayed (TTFT for streams, total otherwise)
    double error_rate = 0;     // recent fraction of failed calls
};

struct RequestEstimate {
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0;
};

// Expected cost of this request on a candidate, in pico-dollars (tokens times
// micro-dollars per million), so cheap models do not all round to zero.
std::int64_t estimated_cost_pico(const Candidate &candidate, const RequestEstimate &estimate);

// Returns the index into `states` of the chosen candidate, or -1 when none is
// eligible. `sequence` advances round-robin; `random` breaks ties and drives
// weighted choice and the two random picks of `fastest`.
int choose_candidate(Strategy strategy, const std::vector<CandidateState> &states,
                     const RequestEstimate &estimate, std::uint64_t sequence,
                     std::uint64_t random);

}  // namespace perpetuo
