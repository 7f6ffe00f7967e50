#include "request_id.hpp"

#include <sys/random.h>

#include <chrono>

namespace perpetuo {

RequestIdGenerator::RequestIdGenerator() {
    if (getrandom(state_, sizeof(state_), 0) != static_cast<ssize_t>(sizeof(state_))) {
        // getrandom cannot fail for 16 bytes once the pool is ready; keep a
        // distinct fallback anyway rather than a fixed sequence.
        auto now = std::chrono::high_resolution_clock::now().time_since_epoch().count();
        state_[0] = static_cast<std::uint64_t>(now) ^ 0x9e3779b97f4a7c15ull;
        state_[1] = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(this));
    }
    if ((state_[0] | state_[1]) == 0) state_[1] = 1;
}

RequestIdGenerator::RequestIdGenerator(std::uint64_t seed_a, std::uint64_t seed_b)
    : state_{seed_a, seed_b | 1} {}

std::uint64_t RequestIdGenerator::step() {
    // xorshift128+: fast, and 128 bits of state from the kernel is what makes
    // collisions negligible, not the generator's strength.
    std::uint64_t s1 = state_[0];
    const std::uint64_t s0 = state_[1];
    state_[0] = s0;
    s1 ^= s1 << 23;
    state_[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return state_[1] + s0;
}

std::string RequestIdGenerator::next() {
    static const char kHex[] = "0123456789abcdef";
    std::string id = "req_";
    id.resize(4 + 32);
    for (int half = 0; half < 2; ++half) {
        std::uint64_t v = step();
        for (int i = 0; i < 16; ++i) {
            id[4 + half * 16 + i] = kHex[v & 0xf];
            v >>= 4;
        }
    }
    return id;
}

}  // namespace perpetuo
