#include "strategy.hpp"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace perpetuo {
namespace {

Candidate priced(Micros input_per_mtok, Micros output_per_mtok, int weight = 1) {
    Candidate c;
    c.price.input_per_mtok = input_per_mtok;
    c.price.output_per_mtok = output_per_mtok;
    c.weight = weight;
    return c;
}

// States pointing at `candidates`, which must outlive them.
std::vector<CandidateState> states_for(const std::vector<Candidate> &candidates) {
    std::vector<CandidateState> states(candidates.size());
    for (std::size_t i = 0; i < candidates.size(); ++i) states[i].candidate = &candidates[i];
    return states;
}

void measure(CandidateState &s, double latency_ms, double error_rate = 0) {
    s.measured = true;
    s.latency_ms = latency_ms;
    s.error_rate = error_rate;
}

const RequestEstimate kNoEstimate;

// Random values that vary both the low and the high 32 bits, as the two
// picks of `fastest` use both halves.
std::vector<std::uint64_t> random_sweep() {
    std::vector<std::uint64_t> values;
    for (std::uint64_t high = 0; high < 64; ++high)
        for (std::uint64_t low = 0; low < 64; ++low) values.push_back(high << 32 | low);
    return values;
}

std::map<int, int> pick_counts(Strategy strategy, const std::vector<CandidateState> &states) {
    std::map<int, int> counts;
    for (std::uint64_t random : random_sweep())
        ++counts[choose_candidate(strategy, states, kNoEstimate, 0, random)];
    return counts;
}

class NoEligibleCandidateTest : public ::testing::TestWithParam<Strategy> {};

TEST_P(NoEligibleCandidateTest, ReturnsMinusOne) {
    std::vector<Candidate> candidates(3);
    std::vector<CandidateState> states = states_for(candidates);
    for (CandidateState &s : states) s.eligible = false;
    EXPECT_EQ(choose_candidate(GetParam(), states, kNoEstimate, 7, 42), -1);
    EXPECT_EQ(choose_candidate(GetParam(), {}, kNoEstimate, 7, 42), -1);
}

TEST_P(NoEligibleCandidateTest, NeverPicksAnIneligibleOne) {
    std::vector<Candidate> candidates = {priced(1, 1), priced(9, 9), priced(1, 1), priced(5, 5)};
    std::vector<CandidateState> states = states_for(candidates);
    measure(states[0], 10, 0);
    measure(states[1], 500, 0.5);
    measure(states[2], 10, 0);
    states[0].eligible = false;
    states[2].eligible = false;
    for (std::uint64_t n = 0; n < 200; ++n) {
        int chosen =
            choose_candidate(GetParam(), states, kNoEstimate, n, n * 0x9e3779b97f4a7c15ull);
        EXPECT_TRUE(chosen == 1 || chosen == 3) << chosen;
    }
}

INSTANTIATE_TEST_SUITE_P(AllStrategies, NoEligibleCandidateTest,
                         ::testing::Values(Strategy::kFallback, Strategy::kRoundRobin,
                                           Strategy::kWeighted, Strategy::kCheapest,
                                           Strategy::kFastest, Strategy::kReliable),
                         [](const auto &info) { return std::string(strategy_name(info.param)); });

TEST(Fallback, FirstEligibleWhateverTheNumbers) {
    std::vector<Candidate> candidates = {priced(1, 1), priced(99, 99), priced(1, 1)};
    std::vector<CandidateState> states = states_for(candidates);
    measure(states[1], 9000, 0.9);
    measure(states[2], 1, 0);
    EXPECT_EQ(choose_candidate(Strategy::kFallback, states, kNoEstimate, 5, 5), 0);
    states[0].eligible = false;
    for (std::uint64_t n = 0; n < 10; ++n)
        EXPECT_EQ(choose_candidate(Strategy::kFallback, states, kNoEstimate, n, n), 1);
}

TEST(RoundRobin, CyclesThroughEligibleBySequence) {
    std::vector<Candidate> candidates(4);
    std::vector<CandidateState> states = states_for(candidates);
    states[1].eligible = false;
    std::vector<int> picks;
    for (std::uint64_t seq = 0; seq < 7; ++seq)
        picks.push_back(choose_candidate(Strategy::kRoundRobin, states, kNoEstimate, seq, 12345));
    EXPECT_EQ(picks, (std::vector<int>{0, 2, 3, 0, 2, 3, 0}));
}

TEST(Weighted, FrequenciesMatchWeights) {
    std::vector<Candidate> candidates = {priced(0, 0, 1), priced(0, 0, 3), priced(0, 0, 6)};
    std::vector<CandidateState> states = states_for(candidates);
    std::map<int, int> counts;
    for (std::uint64_t random = 0; random < 10000; ++random)
        ++counts[choose_candidate(Strategy::kWeighted, states, kNoEstimate, 0, random)];
    EXPECT_EQ(counts, (std::map<int, int>{{0, 1000}, {1, 3000}, {2, 6000}}));
}

TEST(Weighted, IneligibleWeightIsNotShared) {
    std::vector<Candidate> candidates = {priced(0, 0, 1), priced(0, 0, 100), priced(0, 0, 3)};
    std::vector<CandidateState> states = states_for(candidates);
    states[1].eligible = false;
    std::map<int, int> counts;
    for (std::uint64_t random = 0; random < 400; ++random)
        ++counts[choose_candidate(Strategy::kWeighted, states, kNoEstimate, 0, random)];
    EXPECT_EQ(counts, (std::map<int, int>{{0, 100}, {2, 300}}));
}

TEST(EstimatedCost, PicoDollarsSoCheapModelsDoNotRoundToZero) {
    Candidate mini = priced(150000, 600000);  // $0.15 / $0.60 per Mtok
    RequestEstimate estimate{3, 1};
    EXPECT_EQ(estimated_cost_pico(mini, estimate), 3 * 150000 + 600000);
}

TEST(Cheapest, DependsOnThisRequestsTokenMix) {
    // A: cheap input, dear output. B: the reverse.
    std::vector<Candidate> candidates = {priced(100000, 20000000), priced(5000000, 1000000)};
    std::vector<CandidateState> states = states_for(candidates);
    RequestEstimate output_heavy{100, 10000};
    RequestEstimate input_heavy{100000, 10};
    EXPECT_EQ(choose_candidate(Strategy::kCheapest, states, output_heavy, 0, 0), 1);
    EXPECT_EQ(choose_candidate(Strategy::kCheapest, states, input_heavy, 0, 0), 0);
}

TEST(Cheapest, TieGoesToTheFirstEligible) {
    std::vector<Candidate> candidates = {priced(9, 9), priced(1, 1), priced(1, 1)};
    std::vector<CandidateState> states = states_for(candidates);
    EXPECT_EQ(choose_candidate(Strategy::kCheapest, states, RequestEstimate{10, 10}, 0, 0), 1);
    states[1].eligible = false;
    EXPECT_EQ(choose_candidate(Strategy::kCheapest, states, RequestEstimate{10, 10}, 0, 0), 2);
}

TEST(Fastest, UnmeasuredCandidateIsSampledFirst) {
    std::vector<Candidate> candidates(2);
    std::vector<CandidateState> states = states_for(candidates);
    measure(states[0], 50);
    EXPECT_EQ(pick_counts(Strategy::kFastest, states), (std::map<int, int>{{1, 4096}}));
}

TEST(Fastest, LowerLatencyWinsBetweenTheTwoPicks) {
    std::vector<Candidate> candidates(2);
    std::vector<CandidateState> states = states_for(candidates);
    measure(states[0], 900);
    measure(states[1], 120);
    // With two candidates both are always the picks, so the faster always wins.
    EXPECT_EQ(pick_counts(Strategy::kFastest, states), (std::map<int, int>{{1, 4096}}));
}

TEST(Fastest, FastestGetsTheLargeMajorityButOthersAreStillSampled) {
    std::vector<Candidate> candidates(4);
    std::vector<CandidateState> states = states_for(candidates);
    measure(states[0], 400);
    measure(states[1], 80);
    measure(states[2], 250);
    measure(states[3], 900);
    std::map<int, int> counts = pick_counts(Strategy::kFastest, states);
    int total = static_cast<int>(random_sweep().size());
    // Power of two choices: the best wins whenever it is one of the two
    // distinct picks (2 in 4), the slowest never.
    EXPECT_EQ(counts[1], total / 2);
    EXPECT_GT(counts[2], counts[0]);
    EXPECT_GT(counts[0], 0);
    EXPECT_EQ(counts.count(3), 0u);
}

TEST(Fastest, TwoPicksAreAlwaysDistinct) {
    // Only the fastest of three loses to nobody; were both picks ever the
    // same slow candidate, it would be returned.
    std::vector<Candidate> candidates(3);
    std::vector<CandidateState> states = states_for(candidates);
    measure(states[0], 100);
    measure(states[1], 200);
    measure(states[2], 300);
    EXPECT_EQ(pick_counts(Strategy::kFastest, states).count(2), 0u);
}

TEST(Reliable, LowestErrorRateThenLowestLatency) {
    std::vector<Candidate> candidates(4);
    std::vector<CandidateState> states = states_for(candidates);
    measure(states[0], 100, 0.20);
    measure(states[1], 300, 0.01);
    measure(states[2], 200, 0.01);
    measure(states[3], 50, 0.05);
    EXPECT_EQ(choose_candidate(Strategy::kReliable, states, kNoEstimate, 3, 3), 2);
    states[2].eligible = false;
    EXPECT_EQ(choose_candidate(Strategy::kReliable, states, kNoEstimate, 3, 3), 1);
    measure(states[1], 300, 0.30);
    EXPECT_EQ(choose_candidate(Strategy::kReliable, states, kNoEstimate, 3, 3), 3);
}

TEST(StrategyName, RoundTrips) {
    for (Strategy s : {Strategy::kFallback, Strategy::kRoundRobin, Strategy::kWeighted,
                       Strategy::kCheapest, Strategy::kFastest, Strategy::kReliable})
        EXPECT_EQ(parse_strategy(strategy_name(s)), s);
    EXPECT_FALSE(parse_strategy("Fastest").has_value());
    EXPECT_FALSE(parse_strategy("").has_value());
}

}  // namespace
}  // namespace perpetuo
