-- wrk script: POST /v1/chat/completions with a virtual key, then print one
-- machine-readable BENCH line that tests/bench/bench.py parses.
--   wrk ... -s chat.lua URL -- <virtual key> <0|1 stream>

function init(args)
    local stream = args[2] == "1"
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    -- Plain nginx forwards this header untouched and the mock ignores it.
    wrk.headers["Authorization"] = "Bearer " .. args[1]
    -- include_usage is asked for up front: the gateway would otherwise inject
    -- it, and the mock would send the gateway one more event than plain nginx.
    wrk.body = '{"model":"gpt-4o","max_tokens":16,'
        .. (stream and '"stream":true,"stream_options":{"include_usage":true},'
                   or '"stream":false,')
        .. '"messages":[{"role":"user","content":"Say hello in a few words."}]}'
end

-- No response() callback: it would hand every response to Lua, work for the
-- load generator that the servers do not see. wrk's summary.errors.status
-- counts statuses >= 400; a 3xx would pass, which is why bench.py first
-- checks one real answer from each target.
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCH {"rps":%.1f,"requests":%d,"duration_us":%d,"p50_us":%.0f,"p99_us":%.0f,'
        .. '"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}\n',
        summary.requests / (summary.duration / 1e6), summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99),
        e.connect, e.read, e.write, e.timeout, e.status))
end
