"""The seed's analytics endpoints against real nginx and Redis: shapes as
documented, numbers equal to the calls that were made, strict auth."""

import json
import time

import pytest
import requests

from accounting import wait_for_requests
from conftest import CLIENT_KEY, OTHER_KEY, basic_yaml
from harness import PROXY_PARAMS, mint_jwt

SECRET = "analytics-test-secret-0123456789"
JWT_YAML = """
    auth:
      jwt:
        algorithms: [HS256]
        hs256_secret_env: PERPETUO_JWT_SECRET
"""
LOCATIONS = [
    "location /v1/ { perpetuo_gateway; include %s; }" % PROXY_PARAMS,
    "location /workspaces/ { perpetuo_analytics; }",
]
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "measure me"}]}


@pytest.fixture
def analytics(gateway_factory, mock, redis_server):
    gw = gateway_factory(basic_yaml(mock.url) + JWT_YAML, redis_url=redis_server.url,
                         locations=LOCATIONS,
                         env={"PROVIDER_KEY": "sk-p", "PERPETUO_JWT_SECRET": SECRET}).start()
    return gw


def get(gw, path, token=None, workspace="ws_123"):
    token = token if token is not None else mint_jwt(SECRET, [workspace])
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(gw.url + path, headers=headers, timeout=10)


def make_calls(gw, redis_server, n=12):
    ids = []
    for i in range(n):
        body = dict(CHAT, stream=bool(i % 2), max_tokens=2 + i)
        headers = {"x-mock-cached-tokens": "1"}
        if i == n - 1:
            headers["x-mock-fault"] = "500"
        r = gw.post("/v1/chat/completions", body, key=CLIENT_KEY, headers=headers)
        ids.append(r.headers["x-perpetuo-request-id"])
    gw.post("/v1/chat/completions", CHAT, key=OTHER_KEY)
    wait_for_requests(redis_server.client(), n)
    return ids


def test_usage_matches_the_calls_made(analytics, mock, redis_server):
    make_calls(analytics, redis_server)
    records = [r for r in analytics_access(analytics) if r["workspace"] == "ws_123"]
    r = get(analytics, "/workspaces/ws_123/usage")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) >= {"total_tokens", "total_cost", "by_provider"}
    assert body["total_tokens"] == sum(int(x["total_tokens"]) for x in records)
    assert body["total_cost"] == pytest.approx(sum(float(x["cost"]) for x in records), abs=1e-9)
    assert set(body["by_provider"]) == {"primary"}
    assert set(body["by_provider"]["primary"]) >= {"tokens", "cost"}
    assert body["by_provider"]["primary"]["tokens"] == body["total_tokens"]

    by = get(analytics, "/workspaces/ws_123/usage/by-provider?days=7").json()
    assert by["primary"]["tokens"] == body["total_tokens"]
    assert by["primary"]["cost"] == body["total_cost"]


def analytics_access(gw):
    deadline = time.time() + 5
    while time.time() < deadline:
        recs = gw.access_records()
        if len(recs) >= 13:
            return recs
        time.sleep(0.1)
    return gw.access_records()


def test_logs_are_newest_first_paged_and_filtered(analytics, mock, redis_server):
    ids = make_calls(analytics, redis_server)
    page1 = get(analytics, "/workspaces/ws_123/logs?page=1&limit=5").json()
    assert [e["request_id"] for e in page1["logs"]] == ids[::-1][:5]
    entry = page1["logs"][0]
    assert set(entry) >= {"request_id", "model", "provider", "tokens", "cost", "status",
                          "latency_ms", "created_at"}
    assert entry["model"] == "gpt-4o" and entry["provider"] == "primary"
    assert entry["status"] == 500 and entry["tokens"] == 0
    assert entry["created_at"].endswith("Z") and "T" in entry["created_at"]
    assert page1["has_more"] is True
    page3 = get(analytics, "/workspaces/ws_123/logs?page=3&limit=5").json()
    assert [e["request_id"] for e in page3["logs"]] == ids[::-1][10:]
    assert page3["has_more"] is False

    only_500 = get(analytics, "/workspaces/ws_123/logs?status=500").json()["logs"]
    assert [e["request_id"] for e in only_500] == [ids[-1]]
    both = get(analytics, "/workspaces/ws_123/logs?provider=primary&status=200&limit=3").json()
    assert [e["request_id"] for e in both["logs"]] == ids[::-1][1:4]
    assert get(analytics, "/workspaces/ws_123/logs?provider=other").json()["logs"] == []
    assert len(get(analytics, "/workspaces/ws_123/logs?model=gpt-4o").json()["logs"]) == 12
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert len(get(analytics, f"/workspaces/ws_123/logs?start_date={today}&end_date={today}")
               .json()["logs"]) == 12
    assert get(analytics, "/workspaces/ws_123/logs?end_date=2020-01-01").json()["logs"] == []
    assert get(analytics, "/workspaces/ws_123/logs?start_date=2999-01-01T00:00:00Z") \
        .json()["logs"] == []


def test_performance_latency_and_errors(analytics, mock, redis_server):
    make_calls(analytics, redis_server)
    lat = get(analytics, "/workspaces/ws_123/performance/latency").json()
    p = lat["primary"]
    assert isinstance(p["average_latency_ms"], (int, float)) and p["average_latency_ms"] >= 0
    # the failed stream got no first byte, so it has no time to first token
    assert p["requests"] == 12 and p["streamed_requests"] == 5
    assert p["p50_latency_ms"] <= p["p95_latency_ms"] <= p["p99_latency_ms"]
    err = get(analytics, "/workspaces/ws_123/performance/errors?days=1").json()
    assert err["primary"]["error_rate"] == pytest.approx(1 / 12, abs=1e-6)
    assert err["primary"]["by_class"]["5xx"] == 1


def test_a_workspace_sees_only_its_own_data(analytics, mock, redis_server):
    make_calls(analytics, redis_server, n=4)
    wait_for_requests(redis_server.client(), 1, workspace="ws_other")
    other = get(analytics, "/workspaces/ws_other/usage", workspace="ws_other").json()
    mine = get(analytics, "/workspaces/ws_123/usage").json()
    assert other["total_requests"] == 1 and mine["total_requests"] == 4
    logs = get(analytics, "/workspaces/ws_other/logs", workspace="ws_other").json()["logs"]
    assert len(logs) == 1
    # ws_123's token cannot read ws_other
    r = get(analytics, "/workspaces/ws_other/usage", token=mint_jwt(SECRET, ["ws_123"]))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("token,reason", [
    ("", "missing"),
    ("not.a.jwt", "garbage"),
    (mint_jwt("wrong-secret", ["ws_123"]), "wrong key"),
    (mint_jwt(SECRET, ["ws_123"], ttl=-3600), "expired"),
    (mint_jwt(SECRET, ["ws_123"])[:-4], "truncated signature"),
    (mint_jwt(SECRET, ["ws_123"], nbf=int(time.time()) + 3600), "not yet valid"),
])
def test_bad_tokens_are_401(analytics, token, reason):
    r = get(analytics, "/workspaces/ws_123/usage", token=token)
    assert r.status_code == 401, reason
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["error"]["code"] in ("unauthorized", "invalid_token")


@pytest.mark.parametrize("path,status", [
    ("/workspaces/ws$bad/usage", 400),
    ("/workspaces/" + "a" * 65 + "/usage", 400),
    ("/workspaces/ws_123/nothing", 404),
    ("/workspaces/ws_123", 404),
    ("/workspaces/ws_123/usage?days=0", 400),
    ("/workspaces/ws_123/usage?days=abc", 400),
    ("/workspaces/ws_123/usage/by-provider?days=-1", 400),
    ("/workspaces/ws_123/logs?limit=1001", 400),
    ("/workspaces/ws_123/logs?limit=0", 400),
    ("/workspaces/ws_123/logs?page=0", 400),
    ("/workspaces/ws_123/logs?page=x", 400),
    ("/workspaces/ws_123/logs?status=abc", 400),
    ("/workspaces/ws_123/logs?status=99", 400),
    ("/workspaces/ws_123/logs?start_date=yesterday", 400),
    ("/workspaces/ws_123/logs?end_date=2026-02-30", 400),
    ("/workspaces/ws_123/logs?start_date=2026-02-01&end_date=2026-01-01", 400),
    ("/workspaces/ws_123/logs?provider=" + "p" * 129, 400),
    ("/workspaces/ws_123/performance/latency?days=99999", 400),
])
def test_bad_parameters(analytics, path, status):
    r = get(analytics, path, token=mint_jwt(SECRET, ["ws_123", "ws$bad", "a" * 65]))
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] in ("invalid_parameter", "not_found")


def test_only_get(analytics):
    r = requests.post(analytics.url + "/workspaces/ws_123/usage",
                      headers={"Authorization": "Bearer " + mint_jwt(SECRET, ["ws_123"])})
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


def test_store_unreachable_is_503(analytics, redis_server):
    redis_server.stop()
    time.sleep(0.3)
    r = get(analytics, "/workspaces/ws_123/usage")
    assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"


def test_analytics_without_jwt_config_fails_nginx_t(gateway_factory, mock, redis_server):
    gw = gateway_factory(basic_yaml(mock.url), redis_url=redis_server.url, locations=LOCATIONS)
    ok, output = gw.test_config()
    assert not ok and "perpetuo_analytics" in output
