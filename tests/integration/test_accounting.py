"""Every proxied call lands in Redis exactly once, whatever Redis does."""

import concurrent.futures
import json
import os
import re
import signal
import statistics
import time

import pytest
import requests

from accounting import log_size, wait_for_requests, workspace_totals
from conftest import CLIENT_KEY, basic_yaml
from harness import Redis, key_hash

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "count me exactly once"}]}


def call(gateway, i):
    body = dict(CHAT, messages=[{"role": "user", "content": "x" * (i % 37)}])
    if i % 2:
        body.update(stream=True, max_tokens=1 + i % 9)
    r = requests.post(gateway.url + "/v1/chat/completions", data=json.dumps(body),
                      headers={"Authorization": f"Bearer {CLIENT_KEY}"}, timeout=30)
    if i % 2:
        assert r.text.rstrip().endswith("data: [DONE]")
    return r.status_code


def load(gateway, n, threads=8, during=None):
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(call, gateway, i) for i in range(n)]
        if during:
            during()
        return [f.result() for f in futures]


def assert_exact(redis_client, mock, n):
    totals = wait_for_requests(redis_client, n)
    stats = mock.stats()
    assert totals.get("req") == n
    assert totals.get("in", 0) + totals.get("cr", 0) == stats["prompt_tokens"]
    assert totals.get("out", 0) == stats["completion_tokens"]
    assert totals.get("tok") == stats["prompt_tokens"] + stats["completion_tokens"]
    assert log_size(redis_client) == n


@pytest.fixture
def durable_redis(tmpdir_path):
    r = Redis(tmpdir_path, durable=True).start()
    yield r
    r.stop()


def gateway_with_redis(factory, mock, redis_server, options="", **kwargs):
    return factory(basic_yaml(mock.url),
                   redis_url=f"{redis_server.url} {options}".strip(), **kwargs).start()


def test_a_thousand_mixed_calls_from_two_workers_land_exactly(gateway_factory, mock, redis_server):
    gw = gateway_with_redis(gateway_factory, mock, redis_server)
    statuses = load(gw, 1200)
    assert statuses == [200] * 1200
    assert_exact(redis_server.client(), mock, 1200)
    r = redis_server.client()
    entry = json.loads(next(iter(r.hvals("pp:{ws_123}:logd"))))
    assert set(entry) >= {"request_id", "model", "provider", "tokens", "cost", "status",
                          "latency_ms", "created_at"}


def test_redis_killed_and_restarted_mid_load(gateway_factory, mock, durable_redis):
    gw = gateway_with_redis(gateway_factory, mock, durable_redis)

    def outage():
        time.sleep(0.3)
        durable_redis.kill()
        time.sleep(1.0)
        durable_redis.start()

    statuses = load(gw, 1500, during=outage)
    assert statuses == [200] * 1500
    assert_exact(durable_redis.client(), mock, 1500)
    with open(gw.error_log) as f:
        log = f.read()
    assert "redis connection lost" in log or "redis connect failed" in log


def test_paused_redis_does_not_slow_calls(gateway_factory, mock, redis_server):
    gw = gateway_with_redis(gateway_factory, mock, redis_server, "timeout=500ms")

    def timed_calls(n):
        times = []
        for i in range(n):
            start = time.perf_counter()
            assert call(gw, i) == 200
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    before = timed_calls(100)
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        paused = timed_calls(300)  # spans several reply timeouts and reconnects
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    # Generous: the point is that no call waits on Redis (which would take 500 ms+).
    assert paused < before * 3 + 0.02, (before, paused)
    assert_exact(redis_server.client(), mock, 400)


def test_reload_during_load_loses_and_doubles_nothing(gateway_factory, mock, redis_server):
    gw = gateway_with_redis(gateway_factory, mock, redis_server, "flush=300ms")

    def reloads():
        for _ in range(3):
            time.sleep(0.4)
            gw.reload()

    statuses = load(gw, 1200, during=reloads)
    assert statuses == [200] * 1200
    assert_exact(redis_server.client(), mock, 1200)


def test_graceful_quit_flushes_what_is_queued(gateway_factory, mock, redis_server):
    gw = gateway_with_redis(gateway_factory, mock, redis_server, "flush=3s")
    assert load(gw, 60) == [200] * 60
    assert workspace_totals(redis_server.client()).get("req", 0) < 60  # still queued
    gw.stop()  # SIGQUIT: workers drain their queues before exiting
    assert workspace_totals(redis_server.client()).get("req") == 60


def test_queue_bound_drops_are_counted_and_logged_while_redis_is_down(
        gateway_factory, mock, tmpdir_path):
    down = Redis(tmpdir_path)  # never started until later
    gw = gateway_factory(basic_yaml(mock.url), redis_url=f"{down.url} queue=10 drain=200ms",
                         workers=1).start()
    assert load(gw, 30) == [200] * 30  # calls never fail for accounting's sake
    time.sleep(0.3)
    down.start()
    try:
        totals = wait_for_requests(down.client(), 10)
        assert totals.get("req") == 10
        time.sleep(10.5)  # the drop warning is rate-limited to one per 10 s
        with open(gw.error_log) as f:
            logged = [int(n) for n in re.findall(r"(\d+) accounting records dropped", f.read())]
        assert sum(logged) == 20, logged
    finally:
        down.stop()


def test_redis_password_and_database_are_used(gateway_factory, mock, tmpdir_path):
    r = Redis(tmpdir_path)
    r.proc = None
    import subprocess
    from harness import wait_port
    r.proc = subprocess.Popen(["redis-server", "--port", str(r.port), "--bind", "127.0.0.1",
                               "--save", "", "--requirepass", "s3cret"],
                              stdout=subprocess.DEVNULL)
    wait_port(r.port, r.proc)
    try:
        gw = gateway_factory(basic_yaml(mock.url),
                             redis_url=f"redis://:s3cret@127.0.0.1:{r.port}/3").start()
        assert load(gw, 20) == [200] * 20
        import redis as redis_lib
        client = redis_lib.Redis(port=r.port, password="s3cret", db=3, decode_responses=True)
        assert wait_for_requests(client, 20).get("req") == 20
    finally:
        r.stop()
