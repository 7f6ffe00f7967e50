#include "money.hpp"
#include "usage.hpp"

#include <gtest/gtest.h>

namespace perpetuo {
namespace {

TEST(ParseDecimalMicros, ExactDecimals) {
    EXPECT_EQ(parse_decimal_micros("2.50"), 2500000);
    EXPECT_EQ(parse_decimal_micros("0.075"), 75000);
    EXPECT_EQ(parse_decimal_micros("3"), 3000000);
    EXPECT_EQ(parse_decimal_micros("0.000001"), 1);
    EXPECT_EQ(parse_decimal_micros(".5"), 500000);
    EXPECT_EQ(parse_decimal_micros("15."), 15000000);
}

TEST(ParseDecimalMicros, RefusesWhatWouldBeRounded) {
    EXPECT_FALSE(parse_decimal_micros("0.0000001"));
    EXPECT_FALSE(parse_decimal_micros("-1"));
    EXPECT_FALSE(parse_decimal_micros("1e3"));
    EXPECT_FALSE(parse_decimal_micros(""));
    EXPECT_FALSE(parse_decimal_micros("."));
    EXPECT_FALSE(parse_decimal_micros("1.2.3"));
    EXPECT_FALSE(parse_decimal_micros("99999999999999999999"));
}

TEST(FormatMicros, MicroDollarPrecisionWithoutTrailingZeros) {
    EXPECT_EQ(format_micros(0), "0");
    EXPECT_EQ(format_micros(35), "0.000035");
    EXPECT_EQ(format_micros(45670000), "45.67");
    EXPECT_EQ(format_micros(1000000), "1");
    EXPECT_EQ(format_micros(60000), "0.06");
    EXPECT_EQ(format_micros(-1500000), "-1.5");
}

TEST(CostMicros, EachKindPricedOnceAndRoundedOnce) {
    Price price{2500000, 10000000, 1250000, 2500000};  // gpt-4o
    Usage usage;
    usage.uncached_input_tokens = 800;
    usage.cache_read_tokens = 200;
    usage.output_tokens = 100;
    // 800*2.5 + 200*1.25 + 100*10 = 2000 + 250 + 1000 = 3250 micro-dollars
    EXPECT_EQ(cost_micros(usage, price), 3250);
}

TEST(CostMicros, SubMicroCostsRoundHalfUp) {
    Price price{100000, 400000, 100000, 100000};  // $0.10 / $0.40 per Mtok
    Usage usage;
    usage.uncached_input_tokens = 4;  // 0.4 micro
    EXPECT_EQ(cost_micros(usage, price), 0);
    usage.uncached_input_tokens = 5;  // 0.5 micro
    EXPECT_EQ(cost_micros(usage, price), 1);
}

TEST(CostMicros, AnthropicCacheKinds) {
    Price price{3000000, 15000000, 300000, 3750000};
    Usage usage;
    usage.uncached_input_tokens = 1000;
    usage.cache_read_tokens = 10000;
    usage.cache_write_tokens = 2000;
    usage.output_tokens = 500;
    // 3000 + 3000 + 7500 + 7500
    EXPECT_EQ(cost_micros(usage, price), 21000);
    EXPECT_EQ(usage.input_tokens(), 13000);
    EXPECT_EQ(usage.total_tokens(), 13500);
}

}  // namespace
}  // namespace perpetuo
