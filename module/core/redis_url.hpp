// perpetuo_redis's URL: redis://[[user]:password@]host:port[/db] or
// unix:/path/redis.sock[?db=N].
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace perpetuo {

struct RedisUrl {
    std::string host;  // empty for a unix socket
    int port = 6379;
    std::string socket_path;
    std::string username;  // Redis 6 ACL user; empty for plain AUTH
    std::string password;
    int db = 0;
};

std::optional<RedisUrl> parse_redis_url(std::string_view url, std::string *error);

}  // namespace perpetuo
