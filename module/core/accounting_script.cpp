#include "accounting_script.hpp"

#include "digest.hpp"

namespace perpetuo {

namespace {

// KEYS[1]  "pp:{ws}", the prefix of every key of the workspace; the hash
//          tag keeps them in one Redis Cluster slot.
// ARGV     batch id, batch hour, ttl seconds, max log entries, now ms,
//          counter count C, C triples (day hash suffix, field, increment), then log
//          entries as 6-tuples (request id, created ms, provider, model,
//          status, entry JSON).
// The batch id is remembered per hour in a hash: a batch re-sent after a
// lost reply finds its id there and changes nothing.
constexpr std::string_view kScript = R"lua(
local p = KEYS[1]
local seen = p .. ':batches:' .. ARGV[2]
if redis.call('HSETNX', seen, ARGV[1], 1) == 0 then return 0 end
redis.call('EXPIRE', seen, 90000)
local ttl = tonumber(ARGV[3])
local maxlog = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local i = 7
local days = {}
for _ = 1, tonumber(ARGV[6]) do
  local day = p .. ':d:' .. ARGV[i]
  redis.call('HINCRBY', day, ARGV[i + 1], ARGV[i + 2])
  days[day] = true
  i = i + 3
end
for day in pairs(days) do redis.call('EXPIRE', day, ttl) end
local log, data, idx = p .. ':log', p .. ':logd', p .. ':logi'
while i <= #ARGV do
  local id, ts = ARGV[i], ARGV[i + 1]
  redis.call('HSET', data, id, ARGV[i + 5])
  redis.call('ZADD', log, ts, id)
  for _, k in ipairs({log .. ':p:' .. ARGV[i + 2], log .. ':m:' .. ARGV[i + 3],
                      log .. ':s:' .. ARGV[i + 4]}) do
    redis.call('ZADD', k, ts, id)
    redis.call('SADD', idx, k)
  end
  i = i + 6
end
local function drop(ids)
  if #ids == 0 then return end
  redis.call('ZREM', log, unpack(ids))
  redis.call('HDEL', data, unpack(ids))
  for _, k in ipairs(redis.call('SMEMBERS', idx)) do redis.call('ZREM', k, unpack(ids)) end
end
drop(redis.call('ZRANGEBYSCORE', log, '-inf', '(' .. (now - ttl * 1000), 'LIMIT', 0, 1000))
local over = redis.call('ZCARD', log) - maxlog
if over > 0 then drop(redis.call('ZRANGE', log, 0, math.min(over, 1000) - 1)) end
for _, k in ipairs({log, data, idx}) do redis.call('EXPIRE', k, ttl) end
for _, k in ipairs(redis.call('SMEMBERS', idx)) do redis.call('EXPIRE', k, ttl) end
return 1
)lua";

}  // namespace

std::string_view accounting_script() { return kScript; }

const std::string &accounting_script_sha1() {
    static const std::string sha = sha1_hex(kScript);
    return sha;
}

}  // namespace perpetuo
