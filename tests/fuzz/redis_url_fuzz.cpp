// parse_redis_url and parse_provider_url on arbitrary text: a refusal says
// why, and what is accepted is usable as it stands.
#include "fuzz_support.hpp"
#include "provider_url.hpp"
#include "redis_url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    using perpetuo::fuzz::check;
    std::string_view url = perpetuo::fuzz::as_text(data, size);
    std::string error;
    std::optional<perpetuo::RedisUrl> redis = perpetuo::parse_redis_url(url, &error);
    if (!redis) {
        check(!error.empty(), "a refused redis url says why");
    } else if (redis->socket_path.empty()) {
        check(!redis->host.empty(), "a tcp redis url has a host");
        check(redis->port >= 1 && redis->port <= 65535, "redis port in range");
    } else {
        check(redis->socket_path[0] == '/', "redis socket path is absolute");
    }
    if (redis) check(redis->db >= 0, "redis db is not negative");

    error.clear();
    std::optional<perpetuo::ProviderUrl> provider = perpetuo::parse_provider_url(url, &error);
    if (!provider) {
        check(!error.empty(), "a refused provider url says why");
        return 0;
    }
    check(!provider->host.empty(), "a provider url has a host");
    check(provider->port >= 1 && provider->port <= 65535, "provider port in range");
    check(provider->path.empty() || provider->path[0] == '/', "provider path is absolute");
    check(provider->path.empty() || provider->path.back() != '/', "no trailing slash");
    check(!perpetuo::host_header(*provider).empty(), "a host header");
    return 0;
}
