"""Prometheus metrics from the shared zone: one scrape covers every worker,
parsed with a real exposition-format parser, numbers equal to the calls."""

import collections
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import CLIENT_KEY, basic_yaml
from harness import PROXY_PARAMS, MockProvider
from test_routing import yaml_for

LOCATIONS = [
    "location /v1/ { perpetuo_gateway; include %s; }" % PROXY_PARAMS,
    "location = /metrics { perpetuo_metrics; }",
]
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "count me"}]}


def scrape(gw):
    r = requests.get(gw.url + "/metrics", timeout=5)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = collections.defaultdict(list)
    types = {}
    for family in text_string_to_metric_families(r.text):
        types[family.name] = family.type
        for s in family.samples:
            samples[s.name].append(s)
    return samples, types


def total(samples, name, **labels):
    return sum(s.value for s in samples[name]
               if all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_count_every_call_across_workers(gateway_factory, mock, redis_server):
    gw = gateway_factory(basic_yaml(mock.url), workers=2, redis_url=redis_server.url,
                         locations=LOCATIONS).start()
    sessions = [requests.Session() for _ in range(4)]
    for i in range(40):
        body = dict(CHAT, stream=bool(i % 2), max_tokens=1 + i % 5)
        headers = {"Authorization": f"Bearer {CLIENT_KEY}", "x-mock-cached-tokens": "1"}
        if i % 10 == 9:
            headers["x-mock-fault"] = "503"
        sessions[i % 4].post(gw.url + "/v1/chat/completions", json=body, headers=headers)
    time.sleep(0.3)
    stats = mock.stats()
    samples, types = scrape(gw)
    assert types["perpetuo_requests"] == "counter"
    assert types["gen_ai_client_token_usage"] == "histogram"
    assert types["gen_ai_client_operation_duration_seconds"] == "histogram"
    assert total(samples, "perpetuo_requests_total") == 40
    assert total(samples, "perpetuo_requests_total", status="200") == 36
    assert total(samples, "perpetuo_requests_total", status="503") == 4
    assert total(samples, "perpetuo_requests_total", workspace="ws_123", provider="primary",
                 model="gpt-4o") == 40
    assert total(samples, "perpetuo_tokens_total", type="input") == stats["prompt_tokens"]
    assert total(samples, "perpetuo_tokens_total", type="output") == stats["completion_tokens"]
    assert total(samples, "perpetuo_tokens_total", type="cached") == 36
    assert total(samples, "gen_ai_client_token_usage_count", gen_ai_token_type="output") == 36
    assert total(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="output") == \
        stats["completion_tokens"]
    assert total(samples, "gen_ai_client_operation_duration_seconds_count") == 40
    inf = [s for s in samples["gen_ai_client_operation_duration_seconds_bucket"]
           if s.labels["le"] == "+Inf"]
    assert sum(s.value for s in inf) == 40
    assert total(samples, "gen_ai_server_time_to_first_token_seconds_count") == 16  # ok streams
    assert total(samples, "perpetuo_provider_errors_total", provider="primary", **{"class": "5xx"}) == 4
    gw.stop()
    cost = sum(float(rec["cost"]) for rec in gw.access_records() if rec["provider"])
    assert total(samples, "perpetuo_cost_usd_total") == pytest.approx(cost, abs=1e-9)
    assert total(samples, "perpetuo_redis_dropped_records_total") == 0
    assert total(samples, "perpetuo_gateway_overhead_seconds_count") == 40
    assert total(samples, "perpetuo_metrics_series_overflow_total") == 0


def test_breaker_and_failover_metrics(gateway_factory, tmpdir_path):
    bad = MockProvider(tmpdir_path, "--fault", "500").start()
    good = MockProvider(tmpdir_path).start()
    try:
        routing = "  breaker: { consecutive_failures: 2, cooldown: 60s }"
        gw = gateway_factory(yaml_for({"bad": bad, "good": good}, routing=routing),
                             locations=[LOCATIONS[0], LOCATIONS[1]],
                             http_extra="perpetuo_strategy fallback;").start()
        for _ in range(5):
            r = gw.post("/v1/chat/completions", {"model": "chat", "messages": []}, key=CLIENT_KEY)
            assert r.status_code == 200
        samples, _ = scrape(gw)
        assert total(samples, "perpetuo_failovers_total", provider="bad") == 2
        assert total(samples, "perpetuo_circuit_breaker_state", provider="bad") == 1
        assert total(samples, "perpetuo_circuit_breaker_state", provider="good") == 0
        assert total(samples, "perpetuo_circuit_breaker_opens_total", provider="bad") == 1
        assert total(samples, "perpetuo_requests_total", provider="bad", status="500") == 2
        assert total(samples, "perpetuo_requests_total", provider="good", status="200") == 5
        assert total(samples, "perpetuo_provider_in_flight") == 0
    finally:
        bad.stop()
        good.stop()


def test_workspace_label_can_be_turned_off(gateway_factory, mock):
    gw = gateway_factory(basic_yaml(mock.url) + "\n    metrics: { workspace_label: false }\n",
                         locations=LOCATIONS).start()
    gw.post("/v1/chat/completions", CHAT, key=CLIENT_KEY)
    samples, _ = scrape(gw)
    assert samples["perpetuo_requests_total"]
    assert all("workspace" not in s.labels for s in samples["perpetuo_requests_total"])


def test_redis_health_is_exported_per_worker(gateway_factory, mock, redis_server):
    gw = gateway_factory(basic_yaml(mock.url), workers=2, redis_url=redis_server.url,
                         locations=LOCATIONS).start()
    deadline = time.time() + 5
    while time.time() < deadline:
        samples, _ = scrape(gw)
        if total(samples, "perpetuo_redis_connected") == 2:
            break
        time.sleep(0.1)
    assert total(samples, "perpetuo_redis_connected") == 2
    redis_server.stop()
    gw.post("/v1/chat/completions", CHAT, key=CLIENT_KEY)
    time.sleep(1.0)
    samples, _ = scrape(gw)
    assert total(samples, "perpetuo_redis_connected") == 0
    assert total(samples, "perpetuo_redis_queue_records") == 1
