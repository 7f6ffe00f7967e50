#include "iso_time.hpp"

#include <ctime>

namespace perpetuo {

namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t n, int *out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool valid_date(int y, int m, int d) {
    static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1) return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= kDays[m - 1] + (m == 2 && leap ? 1 : 0);
}

}  // namespace

std::optional<ParsedTime> parse_iso8601(std::string_view s) {
    int y, mo, d;
    if (!digits(s, 0, 4, &y) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, &mo) ||
        s[7] != '-' || !digits(s, 8, 2, &d) || !valid_date(y, mo, d))
        return std::nullopt;
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    ParsedTime out;
    if (s.size() == 10) {
        out.date_only = true;
        out.unix_ms = static_cast<std::int64_t>(timegm(&tm)) * 1000;
        return out;
    }
    int h, mi, sec = 0;
    if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, &h) ||
        s.size() < 16 || s[13] != ':' || !digits(s, 14, 2, &mi) || h > 23 || mi > 59)
        return std::nullopt;
    std::size_t pos = 16;
    if (pos < s.size() && s[pos] == ':') {
        if (!digits(s, pos + 1, 2, &sec) || sec > 60) return std::nullopt;
        pos += 3;
    }
    int millis = 0;
    if (pos < s.size() && s[pos] == '.') {
        std::size_t start = ++pos;
        int scale = 100;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            millis += (s[pos] - '0') * scale;
            scale /= 10;
            ++pos;
        }
        if (pos == start || pos - start > 9) return std::nullopt;
    }
    std::int64_t offset_s = 0;
    if (pos < s.size()) {
        if ((s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size()) {
            ++pos;
        } else if (s[pos] == '+' || s[pos] == '-') {
            int oh, om;
            if (!digits(s, pos + 1, 2, &oh) || pos + 6 != s.size() || s[pos + 3] != ':' ||
                !digits(s, pos + 4, 2, &om) || oh > 23 || om > 59)
                return std::nullopt;
            offset_s = (s[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
            pos += 6;
        } else {
            return std::nullopt;
        }
    }
    if (pos != s.size()) return std::nullopt;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    out.unix_ms = (static_cast<std::int64_t>(timegm(&tm)) - offset_s) * 1000 + millis;
    return out;
}

}  // namespace perpetuo
