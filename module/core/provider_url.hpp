// A provider's base_url, split the way nginx needs it for proxy_pass.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace perpetuo {

struct ProviderUrl {
    bool tls = false;
    std::string host;  // a name or an IPv4/IPv6 literal, without brackets
    int port = 0;
    std::string path;  // no trailing slash, and no trailing "/v1" (re-added per API)
};

// Accepts http(s)://host[:port][/path]; anything else (userinfo, query,
// fragment, other schemes, bad ports) is refused with a reason in *error.
std::optional<ProviderUrl> parse_provider_url(std::string_view url, std::string *error);

// "host" or "host:port" as a Host header, the port omitted when it is the
// scheme's default.
std::string host_header(const ProviderUrl &url);

}  // namespace perpetuo
