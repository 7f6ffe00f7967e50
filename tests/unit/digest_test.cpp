#include "digest.hpp"

#include <gtest/gtest.h>

#include <string>

namespace perpetuo {
namespace {

// FIPS 180-2 test vectors.
TEST(Sha256Hex, KnownVectors) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Keys are arbitrary bytes: an embedded NUL must not end the input.
TEST(Sha256Hex, HashesTheWholeView) {
    std::string with_nul("abc\0def", 7);
    EXPECT_NE(sha256_hex(with_nul), sha256_hex("abc"));
    EXPECT_EQ(sha256_hex(std::string_view("abcdef").substr(0, 3)), sha256_hex("abc"));
}

// Redis names scripts by the SHA-1 of their text (FIPS 180-1 vectors).
TEST(Sha1Hex, KnownVectors) {
    EXPECT_EQ(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    EXPECT_EQ(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    EXPECT_EQ(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

}  // namespace
}  // namespace perpetuo
