#include "analytics_script.hpp"

#include "accounting_queue.hpp"
#include "digest.hpp"

namespace perpetuo {

namespace {

// KEYS[1] "pp:{ws}"; ARGV min ms, max ms, offset, count, then index
// suffixes ("p:openai", "m:gpt-4o", "s:200"). One filter walks that index;
// several walk the smallest by rank and test the others with ZSCORE, with a
// bound on the walk so no query can hold Redis for long.
constexpr std::string_view kScript = R"lua(
local p = KEYS[1]
local log = p .. ':log'
local min, max = ARGV[1], ARGV[2]
local offset, want = tonumber(ARGV[3]), tonumber(ARGV[4])
local keys = {}
for i = 5, #ARGV do keys[#keys + 1] = log .. ':' .. ARGV[i] end
local ids
if #keys <= 1 then
  ids = redis.call('ZREVRANGEBYSCORE', keys[1] or log, max, min, 'LIMIT', offset, want)
else
  local sizes = {}
  for _, k in ipairs(keys) do sizes[k] = redis.call('ZCARD', k) end
  table.sort(keys, function(a, b) return sizes[a] < sizes[b] end)
  local walk = table.remove(keys, 1)
  local from = redis.call('ZCOUNT', walk, '(' .. max, '+inf')
  local to = from + redis.call('ZCOUNT', walk, min, max) - 1
  ids = {}
  local skipped, budget = 0, 200000
  while from <= to and #ids < want and budget > 0 do
    local chunk = redis.call('ZREVRANGE', walk, from, math.min(from + 499, to))
    for _, id in ipairs(chunk) do
      local match = true
      for _, k in ipairs(keys) do
        if not redis.call('ZSCORE', k, id) then match = false break end
      end
      if match then
        if skipped < offset then skipped = skipped + 1
        else ids[#ids + 1] = id if #ids >= want then break end end
      end
    end
    from = from + #chunk
    budget = budget - #chunk
  end
end
if #ids == 0 then return {} end
return redis.call('HMGET', p .. ':logd', unpack(ids))
)lua";

}  // namespace

std::string_view logs_script() { return kScript; }

const std::string &logs_script_sha1() {
    static const std::string sha = sha1_hex(kScript);
    return sha;
}

std::vector<std::string> logs_command(const AnalyticsRequest &r) {
    std::vector<std::string> argv = {
        "EVALSHA",
        logs_script_sha1(),
        "1",
        workspace_prefix(r.workspace),
        std::to_string(r.start_ms),
        r.end_ms == INT64_MAX ? "+inf" : std::to_string(r.end_ms),
        std::to_string(static_cast<std::int64_t>(r.page - 1) * r.limit),
        std::to_string(r.limit + 1)};
    if (!r.provider.empty()) argv.push_back("p:" + r.provider);
    if (!r.model.empty()) argv.push_back("m:" + r.model);
    if (r.status != 0) argv.push_back("s:" + std::to_string(r.status));
    return argv;
}

}  // namespace perpetuo
