// Request ids are the idempotency key of accounting writes, so they must be
// unique across workers and nodes: 128 random bits from a per-worker
// generator seeded by the kernel.
#pragma once

#include <cstdint>
#include <string>

namespace perpetuo {

class RequestIdGenerator {
public:
    RequestIdGenerator();  // seeds from getrandom(2)
    RequestIdGenerator(std::uint64_t seed_a, std::uint64_t seed_b);  // for tests
    // "req_" + 32 lowercase hex digits.
    std::string next();

private:
    std::uint64_t state_[2];
    std::uint64_t step();
};

}  // namespace perpetuo
