// Strict base64url without padding (RFC 4648 §5), the encoding of every JWS
// segment. One decoder serves all three segments, so a lenient corner cannot
// let bytes past one check that another would refuse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace perpetuo {

// Decodes `text` into *out (its old content is replaced). Refuses padding,
// '+', '/', whitespace and every other byte outside [A-Za-z0-9_-], a length
// of 1 mod 4, and non-zero unused bits in the last character, so that each
// byte string has exactly one accepted spelling. `spare_capacity` bytes are
// reserved past the decoded end, for parsers that read ahead (simdjson).
bool base64url_decode(std::string_view text, std::string *out, std::size_t spare_capacity = 0);

std::string base64url_encode(std::string_view bytes);

}  // namespace perpetuo
