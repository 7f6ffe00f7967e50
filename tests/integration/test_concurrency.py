"""A thousand concurrent streams: memory per stream stays constant, however
long the streams run (the SSE framer keeps only the unfinished tail)."""

import asyncio
import json

from conftest import CLIENT_KEY, basic_yaml

STREAMS = 1000


async def open_stream(port, events_to_read, ready):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"model": "gpt-4o", "stream": True, "max_tokens": 40,
                       "messages": [{"role": "user", "content": "stream slowly"}]}).encode()
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 b"Authorization: Bearer " + CLIENT_KEY.encode() + b"\r\n"
                 b"x-mock-chunk-delay-ms: 100\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    seen = b""
    while seen.count(b"data: ") < events_to_read:
        chunk = await reader.read(65536)
        if not chunk:
            break
        seen += chunk
    ready.release()
    while chunk := await reader.read(65536):
        seen += chunk
    writer.close()
    return seen.count(b"data: ")


async def run(gw):
    first = asyncio.Semaphore(0)
    baseline = gw.worker_rss_kb()[0]
    tasks = [asyncio.create_task(open_stream(gw.port, 3, first)) for _ in range(STREAMS)]
    for _ in range(STREAMS):
        await first.acquire()
    early = gw.worker_rss_kb()[0]  # every stream open, a few events in
    await asyncio.sleep(2.0)        # twenty more events each
    late = gw.worker_rss_kb()[0]
    counts = await asyncio.gather(*tasks)
    return baseline, early, late, counts


def test_a_thousand_concurrent_streams_in_constant_memory(gateway_factory, mock):
    gw = gateway_factory(basic_yaml(mock.url), workers=1, worker_connections=4096).start()
    # Warm the worker up so allocator growth from first use is not counted.
    r = gw.post("/v1/chat/completions", {"model": "gpt-4o", "stream": True, "messages": []},
                key=CLIENT_KEY)
    assert r.status_code == 200
    baseline, early, late, counts = asyncio.run(run(gw))
    assert all(c >= 40 for c in counts), sorted(counts)[:20]  # every stream ran to its end
    per_stream_kb = (early - baseline) / STREAMS
    print(f"\nworker RSS: {baseline} KiB idle, {early} KiB with {STREAMS} open streams "
          f"({per_stream_kb:.1f} KiB each), {late} KiB twenty events later")
    assert per_stream_kb < 64, "memory per concurrent stream"
    # Streaming more of each body must not grow memory with the body.
    assert late - early < 0.1 * (early - baseline) + 2048
    gw.stop()
    recs = [r for r in gw.access_records() if r["provider"]]
    assert len(recs) == STREAMS + 1
    assert all(r["estimated"] == "0" for r in recs)
