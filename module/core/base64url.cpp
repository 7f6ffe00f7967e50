#include "base64url.hpp"

namespace perpetuo {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

}  // namespace

bool base64url_decode(std::string_view text, std::string *out, std::size_t spare_capacity) {
    out->clear();
    const std::size_t tail = text.size() % 4;
    if (tail == 1) return false;  // 6 bits cannot end a byte
    out->reserve(text.size() / 4 * 3 + (tail ? tail - 1 : 0) + spare_capacity);
    std::uint32_t bits = 0;
    int held = 0;
    for (char c : text) {
        int v = sextet(c);
        if (v < 0) return false;
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
        held += 6;
        if (held >= 8) {
            held -= 8;
            out->push_back(static_cast<char>((bits >> held) & 0xff));
        }
    }
    // The 2 or 4 bits left over after the last byte must be zero: otherwise
    // several spellings would decode to the same bytes.
    return (bits & ((1u << held) - 1)) == 0;
}

std::string base64url_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() * 4 + 2) / 3);
    std::uint32_t bits = 0;
    int held = 0;
    for (char c : bytes) {
        bits = (bits << 8) | static_cast<unsigned char>(c);
        held += 8;
        while (held >= 6) {
            held -= 6;
            out.push_back(kAlphabet[(bits >> held) & 0x3f]);
        }
    }
    if (held > 0) out.push_back(kAlphabet[(bits << (6 - held)) & 0x3f]);
    return out;
}

}  // namespace perpetuo
