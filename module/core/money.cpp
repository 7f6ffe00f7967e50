#include "money.hpp"

#include <limits>

namespace perpetuo {

std::optional<Micros> parse_decimal_micros(std::string_view text) {
    if (text.empty()) return std::nullopt;
    constexpr Micros kMaxWhole = std::numeric_limits<Micros>::max() / 1000000 - 1;
    Micros whole = 0;
    size_t i = 0;
    bool any_digit = false;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
        whole = whole * 10 + (text[i] - '0');
        if (whole > kMaxWhole) return std::nullopt;
        any_digit = true;
    }
    Micros fraction = 0;
    int fraction_digits = 0;
    if (i < text.size() && text[i] == '.') {
        ++i;
        for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
            if (++fraction_digits > 6) return std::nullopt;
            fraction = fraction * 10 + (text[i] - '0');
            any_digit = true;
        }
    }
    if (!any_digit || i != text.size()) return std::nullopt;
    for (int d = fraction_digits; d < 6; ++d) fraction *= 10;
    return whole * 1000000 + fraction;
}

std::string format_micros(Micros micros) {
    std::string out;
    if (micros < 0) {
        out.push_back('-');
        micros = -micros;
    }
    out += std::to_string(micros / 1000000);
    Micros fraction = micros % 1000000;
    if (fraction == 0) return out;
    char digits[7];
    for (int d = 5; d >= 0; --d) {
        digits[d] = static_cast<char>('0' + fraction % 10);
        fraction /= 10;
    }
    int len = 6;
    while (len > 0 && digits[len - 1] == '0') --len;
    out.push_back('.');
    out.append(digits, static_cast<size_t>(len));
    return out;
}

}  // namespace perpetuo
