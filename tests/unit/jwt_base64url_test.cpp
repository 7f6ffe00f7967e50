#include "base64url.hpp"

#include <gtest/gtest.h>

#include <string>

namespace perpetuo {
namespace {

TEST(Base64UrlTest, RoundTripsEveryLengthAndByte) {
    std::string bytes;
    for (int n = 0; n < 300; ++n) {
        std::string encoded = base64url_encode(bytes);
        EXPECT_EQ(encoded.find_first_of("=+/"), std::string::npos) << encoded;
        std::string decoded;
        ASSERT_TRUE(base64url_decode(encoded, &decoded)) << encoded;
        EXPECT_EQ(decoded, bytes);
        bytes.push_back(static_cast<char>(n * 37 + 11));
    }
}

TEST(Base64UrlTest, DecodesTheUrlAlphabet) {
    std::string out;
    ASSERT_TRUE(base64url_decode("Pz8_", &out));
    EXPECT_EQ(out, "???");
    ASSERT_TRUE(base64url_decode("-_-_", &out));
    EXPECT_EQ(out, "\xfb\xff\xbf");
    ASSERT_TRUE(base64url_decode("", &out));
    EXPECT_EQ(out, "");
}

TEST(Base64UrlTest, ReservesSpareCapacityForPaddedParsers) {
    std::string out;
    ASSERT_TRUE(base64url_decode("eyJhIjoxfQ", &out, 64));
    EXPECT_EQ(out, "{\"a\":1}");
    EXPECT_GE(out.capacity(), out.size() + 64);
}

struct Refused {
    const char *name;
    std::string text;
};

void PrintTo(const Refused &c, std::ostream *os) {
    *os << c.name;
}

class Base64UrlRefusedTest : public ::testing::TestWithParam<Refused> {};

TEST_P(Base64UrlRefusedTest, IsRefused) {
    std::string out;
    EXPECT_FALSE(base64url_decode(GetParam().text, &out)) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    Strict, Base64UrlRefusedTest,
    ::testing::Values(Refused{"StandardPlus", "Pz8+"}, Refused{"StandardSlash", "Pz8/"},
                      Refused{"Padding", "QQ=="}, Refused{"PaddingOne", "QUI="},
                      Refused{"InnerPadding", "QQ==QQ"}, Refused{"Space", "QU I"},
                      Refused{"Newline", "QUJD\n"}, Refused{"Tab", "\tQUJD"},
                      Refused{"LengthOneModFour", "QUJDR"}, Refused{"SingleChar", "Q"},
                      Refused{"NulByte", std::string("QU\0J", 4)},
                      Refused{"NonAscii", "QUJ\xc3\xa9"}, Refused{"Dot", "QU.J"},
                      // "QQ" is "A"; "QR" differs only in unused bits and must not also be "A".
                      Refused{"NonCanonicalTwoChars", "QR"},
                      Refused{"NonCanonicalThreeChars", "QUJ"}),
    [](const auto &info) { return std::string(info.param.name); });

}  // namespace
}  // namespace perpetuo
