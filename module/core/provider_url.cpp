#include "provider_url.hpp"

#include <cctype>

namespace perpetuo {

namespace {

bool valid_host_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

}  // namespace

std::optional<ProviderUrl> parse_provider_url(std::string_view url, std::string *error) {
    ProviderUrl out;
    if (url.rfind("https://", 0) == 0) {
        out.tls = true;
        url.remove_prefix(8);
    } else if (url.rfind("http://", 0) == 0) {
        url.remove_prefix(7);
    } else {
        *error = "must start with http:// or https://";
        return std::nullopt;
    }
    if (url.find_first_of("?#@") != std::string_view::npos) {
        *error = "must not hold a query, fragment or credentials";
        return std::nullopt;
    }
    size_t slash = url.find('/');
    std::string_view authority = url.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? "" : url.substr(slash);
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            *error = "has an unterminated IPv6 literal";
            return std::nullopt;
        }
        out.host = std::string(authority.substr(1, close - 1));
        std::string_view rest = authority.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                *error = "has junk after the IPv6 literal";
                return std::nullopt;
            }
            port_text = rest.substr(1);
            if (port_text.empty()) {
                *error = "has an empty port";
                return std::nullopt;
            }
        }
        for (char c : out.host) {
            if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
                *error = "has an invalid IPv6 literal";
                return std::nullopt;
            }
        }
    } else {
        size_t colon = authority.rfind(':');
        out.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty()) {
                *error = "has an empty port";
                return std::nullopt;
            }
        }
        for (char c : out.host) {
            if (!valid_host_char(c)) {
                *error = "has an invalid host name";
                return std::nullopt;
            }
        }
    }
    if (out.host.empty()) {
        *error = "has no host";
        return std::nullopt;
    }
    out.port = out.tls ? 443 : 80;
    if (!port_text.empty()) {
        int port = 0;
        for (char c : port_text) {
            if (c < '0' || c > '9' || port > 65535) {
                *error = "has an invalid port";
                return std::nullopt;
            }
            port = port * 10 + (c - '0');
        }
        if (port < 1 || port > 65535) {
            *error = "has an invalid port";
            return std::nullopt;
        }
        out.port = port;
    }
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    // SDK users write base URLs ending in /v1; the gateway adds /v1 itself.
    if (path.size() >= 3 && path.substr(path.size() - 3) == "/v1") path.remove_suffix(3);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    out.path = std::string(path);
    return out;
}

std::string host_header(const ProviderUrl &url) {
    std::string host =
        url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    if (url.port != (url.tls ? 443 : 80)) host += ":" + std::to_string(url.port);
    return host;
}

}  // namespace perpetuo
