#include "redis_url.hpp"

namespace perpetuo {

namespace {

bool parse_int(std::string_view text, int max, int *out) {
    if (text.empty() || text.size() > 9) return false;
    int v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    if (v > max) return false;
    *out = v;
    return true;
}

std::string percent_decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto hex = [](char c) {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        if (text[i] == '%' && i + 2 < text.size() &&
            hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2])));
            i += 2;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

}  // namespace

std::optional<RedisUrl> parse_redis_url(std::string_view url, std::string *error) {
    RedisUrl out;
    if (url.rfind("unix:", 0) == 0) {
        std::string_view rest = url.substr(5);
        std::size_t q = rest.find('?');
        out.socket_path = std::string(rest.substr(0, q));
        if (out.socket_path.empty() || out.socket_path[0] != '/') {
            *error = "unix: needs an absolute socket path";
            return std::nullopt;
        }
        if (q != std::string_view::npos) {
            std::string_view query = rest.substr(q + 1);
            if (query.rfind("db=", 0) != 0 || !parse_int(query.substr(3), 1000000, &out.db)) {
                *error = "the only unix: parameter is db=N";
                return std::nullopt;
            }
        }
        return out;
    }
    if (url.rfind("redis://", 0) != 0) {
        *error = "expected redis://[:password@]host:port[/db] or unix:/path/redis.sock[?db=N]";
        return std::nullopt;
    }
    std::string_view rest = url.substr(8);
    std::size_t at = rest.rfind('@');
    if (at != std::string_view::npos) {
        std::string_view userinfo = rest.substr(0, at);
        std::size_t colon = userinfo.find(':');
        if (colon == std::string_view::npos) {
            *error = "credentials must be [user]:password@";
            return std::nullopt;
        }
        out.username = percent_decode(userinfo.substr(0, colon));
        out.password = percent_decode(userinfo.substr(colon + 1));
        rest = rest.substr(at + 1);
    }
    std::size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) {
        std::string_view db = rest.substr(slash + 1);
        if (!db.empty() && !parse_int(db, 1000000, &out.db)) {
            *error = "the database must be a number";
            return std::nullopt;
        }
    }
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        std::size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            *error = "unterminated IPv6 literal";
            return std::nullopt;
        }
        out.host = std::string(authority.substr(1, close - 1));
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') {
                *error = "junk after the IPv6 literal";
                return std::nullopt;
            }
            port_text = authority.substr(close + 2);
        }
    } else {
        std::size_t colon = authority.rfind(':');
        out.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
    }
    if (out.host.empty()) {
        *error = "no host";
        return std::nullopt;
    }
    if (!port_text.empty() && (!parse_int(port_text, 65535, &out.port) || out.port == 0)) {
        *error = "invalid port";
        return std::nullopt;
    }
    return out;
}

}  // namespace perpetuo
