#include "request_id.hpp"

#include <gtest/gtest.h>

#include <string>
#include <unordered_set>

namespace perpetuo {
namespace {

bool is_request_id(const std::string &id) {
    if (id.size() != 36 || id.rfind("req_", 0) != 0) return false;
    return id.find_first_not_of("0123456789abcdef", 4) == std::string::npos;
}

TEST(RequestIdGenerator, ReqPrefixAnd32LowercaseHexDigits) {
    RequestIdGenerator generator;
    for (int i = 0; i < 1000; ++i) {
        std::string id = generator.next();
        EXPECT_TRUE(is_request_id(id)) << id;
    }
}

TEST(RequestIdGenerator, HundredThousandIdsAreUnique) {
    RequestIdGenerator generator;
    std::unordered_set<std::string> seen;
    for (int i = 0; i < 100000; ++i) ASSERT_TRUE(seen.insert(generator.next()).second) << i;
}

TEST(RequestIdGenerator, SeededGeneratorsAreReproducible) {
    RequestIdGenerator a(42, 7), b(42, 7), other(43, 7);
    for (int i = 0; i < 100; ++i) {
        std::string id = a.next();
        EXPECT_TRUE(is_request_id(id)) << id;
        EXPECT_EQ(id, b.next());
        EXPECT_NE(id, other.next());
    }
}

TEST(RequestIdGenerator, ZeroSeedStillProducesIds) {
    RequestIdGenerator zero(0, 0);
    std::string first = zero.next();
    EXPECT_TRUE(is_request_id(first)) << first;
    EXPECT_NE(first, zero.next());
}

// Each worker seeds its own generator; two must not produce the same ids.
TEST(RequestIdGenerator, KernelSeededGeneratorsDiffer) {
    RequestIdGenerator a, b;
    EXPECT_NE(a.next(), b.next());
}

}  // namespace
}  // namespace perpetuo
