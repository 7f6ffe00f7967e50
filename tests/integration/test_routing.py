"""Strategies, failover, circuit breaking and the Anthropic path, against
real nginx with several mock providers."""

import collections
import json
import time

import pytest
import requests

from accounting import wait_for_requests
from conftest import CLIENT_KEY, PROVIDER_KEY
from harness import MockProvider, key_hash, sse_events

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "route me"}]}


def yaml_for(mocks, prices=None, weights=None, extra="", routing="", provider_extra=None):
    providers = "\n".join(
        f"  {name}: {{ kind: openai, base_url: {m.url}, api_key_env: PROVIDER_KEY"
        f"{(', ' + provider_extra[name]) if provider_extra and name in provider_extra else ''} }}"
        for name, m in mocks.items())
    candidates = "\n".join(
        f"    - {{ provider: {name}, model: {name}-model, weight: {(weights or {}).get(name, 1)},"
        f" price: {{ input_per_mtok: {(prices or {}).get(name, (1, 1))[0]},"
        f" output_per_mtok: {(prices or {}).get(name, (1, 1))[1]} }} }}"
        for name in mocks)
    return f"""
providers:
{providers}
models:
  chat:
{candidates}
{extra}
workspaces:
  ws_123:
    api_keys_sha256: [ "{key_hash(CLIENT_KEY)}" ]
routing:
  max_attempts: 3
{routing}
"""


@pytest.fixture
def mocks(tmpdir_path):
    started = {}

    def make(name, *args):
        started[name] = MockProvider(tmpdir_path, *args).start()
        return started[name]

    yield make
    for m in started.values():
        m.stop()


def send(gw, n, body=CHAT, headers=None):
    providers = collections.Counter()
    for _ in range(n):
        r = gw.post("/v1/chat/completions", body, key=CLIENT_KEY, headers=headers)
        assert r.status_code == 200, r.text
        providers[r.headers["x-perpetuo-provider"]] += 1
    return providers


def test_failover_serves_every_call_and_records_each_attempt(gateway_factory, mocks,
                                                             redis_server):
    bad, good = mocks("bad", "--fault", "500"), mocks("good")
    gw = gateway_factory(yaml_for({"bad": bad, "good": good}), redis_url=redis_server.url,
                         http_extra="perpetuo_strategy fallback;").start()
    providers = send(gw, 3)
    assert providers == {"good": 3}
    assert len(bad.requests()) == 3 and len(good.requests()) == 3
    assert json.loads(good.requests()[0]["body"])["model"] == "good-model"
    totals = wait_for_requests(redis_server.client(), 3)
    r = redis_server.client()
    failed = r.zrange("pp:{ws_123}:log:s:500", 0, -1)
    assert len(failed) == 3 and all(i.endswith("-a1") for i in failed)
    assert len(r.zrange("pp:{ws_123}:log:s:200", 0, -1)) == 3
    assert r.hget(f"pp:{{ws_123}}:d:{time.strftime('%Y%m%d', time.gmtime())}:p", "bad:e5") == "3"


def test_streams_fail_over_too(gateway_factory, mocks):
    bad, good = mocks("bad", "--fault", "503"), mocks("good")
    gw = gateway_factory(yaml_for({"bad": bad, "good": good})).start()
    r = gw.post("/v1/chat/completions", dict(CHAT, stream=True, max_tokens=3), key=CLIENT_KEY)
    assert r.status_code == 200 and r.headers["x-perpetuo-provider"] == "good"
    assert sse_events(r.text)[-1] == ("message", "[DONE]")


def test_when_every_provider_fails_the_client_gets_a_json_error(gateway_factory, mocks):
    a, b = mocks("a", "--fault", "500"), mocks("b", "--fault", "429")
    gw = gateway_factory(yaml_for({"a": a, "b": b})).start()
    r = gw.post("/v1/chat/completions", CHAT, key=CLIENT_KEY)
    assert r.status_code == 429
    err = r.json()["error"]
    assert err["code"] == "provider_error" and "after 2 attempts" in err["message"]
    gw.stop()
    statuses = sorted(rec["status"] for rec in gw.access_records())
    assert statuses == ["429"]


def test_breaker_stops_calls_to_a_dead_provider_and_probes_after_cooldown(gateway_factory,
                                                                          mocks):
    dead, alive = mocks("dead", "--fault", "500"), mocks("alive")
    routing = "  breaker: { consecutive_failures: 3, cooldown: 1s }"
    gw = gateway_factory(yaml_for({"dead": dead, "alive": alive}, routing=routing),
                         http_extra="perpetuo_strategy fallback;").start()
    send(gw, 10)
    tried = len(dead.requests())
    assert tried == 3, "the breaker opens after 3 consecutive failures"
    send(gw, 10)
    assert len(dead.requests()) == tried, "an open breaker keeps the provider out"
    dead.configure(fault="none")
    time.sleep(1.2)
    providers = send(gw, 10)
    assert providers["dead"] >= 9, "after the cooldown a probe succeeds and the provider is back"


def test_fastest_sends_most_calls_to_the_fast_provider(gateway_factory, mocks):
    slow, fast = mocks("slow", "--latency-ms", "60"), mocks("fast")
    gw = gateway_factory(yaml_for({"slow": slow, "fast": fast}),
                         http_extra="perpetuo_strategy fastest;", workers=2).start()
    send(gw, 20)  # warm-up: both get measured
    providers = send(gw, 100)
    assert providers["fast"] >= 90, providers


def test_cheapest_picks_by_this_requests_token_mix(gateway_factory, mocks):
    # in_cheap: cheap input, dear output; out_cheap: the reverse.
    in_cheap, out_cheap = mocks("in_cheap"), mocks("out_cheap")
    prices = {"in_cheap": (0.10, 20.00), "out_cheap": (5.00, 1.00)}
    gw = gateway_factory(yaml_for({"in_cheap": in_cheap, "out_cheap": out_cheap}, prices=prices),
                         http_extra="perpetuo_strategy cheapest;").start()
    long_prompt = dict(CHAT, messages=[{"role": "user", "content": "x" * 20000}], max_tokens=5)
    assert send(gw, 3, long_prompt) == {"in_cheap": 3}
    long_answer = dict(CHAT, max_tokens=4000)
    assert send(gw, 3, long_answer) == {"out_cheap": 3}


def test_round_robin_and_weighted(gateway_factory, mocks):
    a, b = mocks("a"), mocks("b")
    gw = gateway_factory(yaml_for({"a": a, "b": b}), workers=1,
                         http_extra="perpetuo_strategy round_robin;").start()
    assert send(gw, 10) == {"a": 5, "b": 5}
    gw.stop()
    gw2 = gateway_factory(yaml_for({"a": a, "b": b}, weights={"a": 9, "b": 1}),
                          http_extra="perpetuo_strategy weighted;").start()
    providers = send(gw2, 200)
    assert 160 <= providers["a"] <= 196, providers


def test_workspace_strategy_overrides_the_location(gateway_factory, mocks):
    a, b = mocks("a"), mocks("b")
    text = yaml_for({"a": a, "b": b}).replace(
        f'api_keys_sha256: [ "{key_hash(CLIENT_KEY)}" ]',
        f'api_keys_sha256: [ "{key_hash(CLIENT_KEY)}" ]\n    strategy: round_robin')
    gw = gateway_factory(text, workers=1, http_extra="perpetuo_strategy fallback;").start()
    assert send(gw, 4) == {"a": 2, "b": 2}


def test_first_byte_timeout_fails_over(gateway_factory, mocks):
    stuck, good = mocks("stuck", "--latency-ms", "3000"), mocks("good")
    gw = gateway_factory(yaml_for({"stuck": stuck, "good": good},
                                  provider_extra={"stuck": "first_byte_timeout: 200ms"}),
                         http_extra="perpetuo_strategy fallback;").start()
    start = time.time()
    assert send(gw, 1) == {"good": 1}
    assert time.time() - start < 2.0


ANTHROPIC_YAML = f"""
providers:
  claude: {{ kind: anthropic, base_url: MOCK_URL, api_key_env: PROVIDER_KEY }}
models:
  claude-sonnet:
    - {{ provider: claude, model: claude-3-5-sonnet-20241022,
        price: {{ input_per_mtok: 3.00, output_per_mtok: 15.00,
                 cached_input_per_mtok: 0.30, cache_write_per_mtok: 3.75 }} }}
workspaces:
  ws_123:
    api_keys_sha256: [ "{key_hash(CLIENT_KEY)}" ]
"""
MESSAGE = {"model": "claude-sonnet", "max_tokens": 7,
           "messages": [{"role": "user", "content": "Hello, Claude"}]}


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_messages_native(gateway_factory, mock, stream):
    gw = gateway_factory(ANTHROPIC_YAML.replace("MOCK_URL", mock.url)).start()
    r = gw.post("/v1/messages", dict(MESSAGE, stream=stream),
                headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01",
                         "x-mock-cache-read-tokens": "100",
                         "x-mock-cache-creation-tokens": "20"})
    assert r.status_code == 200
    sent = mock.requests()[-1]
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == PROVIDER_KEY
    assert "authorization" not in sent["headers"]
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert json.loads(sent["body"])["model"] == "claude-3-5-sonnet-20241022"
    if stream:
        kinds = [k for k, _ in sse_events(r.text)]
        assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    else:
        assert r.json()["type"] == "message"
    stats = mock.stats()
    gw.stop()
    [rec] = gw.access_records()
    # input excludes cache reads and writes; each kind priced once
    assert int(rec["completion_tokens"]) == 7 == stats["completion_tokens"]
    assert int(rec["prompt_tokens"]) == stats["prompt_tokens"] + 100 + 20
    uncached = stats["prompt_tokens"]
    pico = uncached * 3_000_000 + 100 * 300_000 + 20 * 3_750_000 + 7 * 15_000_000
    assert float(rec["cost"]) == pytest.approx(((pico + 500_000) // 1_000_000) / 1e6, abs=1e-9)
    assert rec["estimated"] == "0"


def test_an_openai_model_is_not_served_on_the_messages_path(gateway_factory, mock):
    gw = gateway_factory(ANTHROPIC_YAML.replace("MOCK_URL", mock.url)).start()
    r = gw.post("/v1/chat/completions", dict(MESSAGE), key=CLIENT_KEY)
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_api"
