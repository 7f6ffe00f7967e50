"""The gateway path against real nginx: routing, key swap, body rewrites,
streaming, token counting and the errors a client can get."""

import json
import os
import subprocess

import pytest

from conftest import CLIENT_KEY, PROVIDER_KEY, basic_yaml
from harness import NGINX, PROXY_PARAMS, sse_events

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello to the gateway"}]}


def last_provider_request(mock):
    reqs = mock.requests()
    assert reqs, "the provider received nothing"
    return reqs[-1]


def test_json_call_is_proxied_with_the_providers_key_and_model(gateway, mock):
    r = gateway.post("/v1/chat/completions", CHAT, key=CLIENT_KEY)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert r.headers["x-perpetuo-provider"] == "primary"
    assert r.headers["x-perpetuo-request-id"].startswith("req_")

    sent = last_provider_request(mock)
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert CLIENT_KEY not in json.dumps(sent["headers"])
    assert "accept-encoding" not in sent["headers"]
    forwarded = json.loads(sent["body"])
    assert forwarded["model"] == "gpt-4o-2024-08-06"
    assert forwarded["messages"] == CHAT["messages"]
    assert "stream_options" not in forwarded


def test_access_log_shows_provider_tokens_and_cost(gateway, mock):
    r = gateway.post("/v1/chat/completions", CHAT, key=CLIENT_KEY,
                     headers={"x-mock-cached-tokens": "2", "x-mock-completion-tokens": "40"})
    assert r.status_code == 200
    usage = r.json()["usage"]
    gateway.stop()
    [rec] = gateway.access_records()
    assert rec["provider"] == "primary"
    assert rec["workspace"] == "ws_123"
    assert rec["model"] == "gpt-4o"
    assert rec["request_id"] == r.headers["x-perpetuo-request-id"]
    assert int(rec["prompt_tokens"]) == usage["prompt_tokens"]
    assert int(rec["completion_tokens"]) == 40
    assert int(rec["total_tokens"]) == usage["total_tokens"]
    assert rec["estimated"] == "0"
    # cached input at 1.25, the rest at 2.50, output at 10.00 per million
    pico = (usage["prompt_tokens"] - 2) * 2_500_000 + 2 * 1_250_000 + 40 * 10_000_000
    micros = (pico + 500_000) // 1_000_000
    assert float(rec["cost"]) == pytest.approx(micros / 1e6, abs=1e-9)


def test_stream_gets_usage_without_showing_the_client_the_extra_chunk(gateway, mock):
    body = dict(CHAT, stream=True, max_tokens=5)
    r = gateway.post("/v1/chat/completions", body, key=CLIENT_KEY, stream=True)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.content.decode())
    assert events[-1] == ("message", "[DONE]")
    chunks = [json.loads(d) for _, d in events[:-1]]
    assert all(c["choices"] for c in chunks), "the usage-only chunk reached the client"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "tok " * 5

    forwarded = json.loads(last_provider_request(mock)["body"])
    assert forwarded["stream_options"] == {"include_usage": True}
    stats = mock.stats()
    gateway.stop()
    [rec] = gateway.access_records()
    assert int(rec["completion_tokens"]) == 5 == stats["completion_tokens"]
    assert int(rec["prompt_tokens"]) == stats["prompt_tokens"]
    assert rec["estimated"] == "0"


def test_stream_keeps_the_usage_chunk_when_the_client_asked(gateway, mock):
    body = dict(CHAT, stream=True, max_tokens=3, stream_options={"include_usage": True})
    r = gateway.post("/v1/chat/completions", body, key=CLIENT_KEY)
    events = sse_events(r.text)
    usage_chunks = [json.loads(d) for _, d in events if d != "[DONE]" and not json.loads(d)["choices"]]
    assert len(usage_chunks) == 1 and usage_chunks[0]["usage"]["completion_tokens"] == 3
    forwarded = json.loads(last_provider_request(mock)["body"])
    assert forwarded["stream_options"] == {"include_usage": True}


def test_stream_split_into_tiny_writes_counts_the_same(gateway, mock):
    body = dict(CHAT, stream=True, max_tokens=7)
    r = gateway.post("/v1/chat/completions", body, key=CLIENT_KEY, headers={"x-mock-split": "5"})
    events = sse_events(r.text)
    assert events[-1] == ("message", "[DONE]")
    assert all(json.loads(d)["choices"] for _, d in events[:-1])
    gateway.stop()
    [rec] = gateway.access_records()
    assert int(rec["completion_tokens"]) == 7
    assert rec["estimated"] == "0"


def test_anthropic_style_key_header_also_identifies_the_workspace(gateway, mock):
    r = gateway.post("/v1/chat/completions", CHAT, headers={"x-api-key": CLIENT_KEY})
    assert r.status_code == 200
    sent = last_provider_request(mock)["headers"]
    assert sent.get("x-api-key") is None
    assert sent["authorization"] == f"Bearer {PROVIDER_KEY}"


@pytest.mark.parametrize("headers,message", [
    ({}, "missing virtual key"),
    ({"Authorization": "Bearer sk-wrong"}, "unknown virtual key"),
    ({"Authorization": "Basic Zm9vOmJhcg=="}, "missing virtual key"),
])
def test_requests_without_a_valid_key_are_refused(gateway, mock, headers, message):
    r = gateway.post("/v1/chat/completions", CHAT, headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/json"
    assert r.headers["www-authenticate"] == "Bearer"
    err = r.json()["error"]
    assert err["code"] == "invalid_api_key" and message in err["message"]
    assert mock.requests() == []


@pytest.mark.parametrize("body,status,code", [
    ("{not json", 400, "invalid_request"),
    ('["a list"]', 400, "invalid_request"),
    ('{"messages": []}', 400, "invalid_request"),
    ('{"model": 42}', 400, "invalid_request"),
    ('{"model": "gpt-4o", "stream": "yes"}', 400, "invalid_request"),
    ('{"model": "gpt-4o", "messages": [], "model": "gpt-4o"}', 400, "invalid_request"),
    ('{"model": "gpt-4o", "stream": true, "stream_options": [1]}', 400, "invalid_request"),
    ("", 400, "invalid_request"),
    ('{"model": "no-such-model", "messages": []}', 404, "model_not_found"),
])
def test_bad_requests_get_a_json_error_and_reach_no_provider(gateway, mock, body, status, code):
    r = gateway.post("/v1/chat/completions", body, key=CLIENT_KEY)
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert r.headers["x-perpetuo-request-id"].startswith("req_")
    assert mock.requests() == []


def test_get_is_not_allowed_and_unknown_paths_are_404(gateway, mock):
    import requests
    r = requests.get(gateway.url + "/v1/chat/completions",
                     headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    r = gateway.post("/v1/models/list", CHAT, key=CLIENT_KEY)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_api"
    assert mock.requests() == []


def test_any_location_prefix_reaches_the_canonical_provider_path(gateway_factory, mock):
    gw = gateway_factory(basic_yaml(mock.url), locations=[
        "location /team-a/v1/ { perpetuo_gateway; include %s; }" % PROXY_PARAMS]).start()
    r = gw.post("/team-a/v1/chat/completions?trace=1", CHAT, key=CLIENT_KEY)
    assert r.status_code == 200
    assert last_provider_request(mock)["path"] == "/v1/chat/completions?trace=1"


def test_embeddings_and_legacy_completions_are_metered(gateway, mock):
    r = gateway.post("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["abcd" * 10]},
                     key=CLIENT_KEY)
    assert r.status_code == 200 and r.json()["object"] == "list"
    r = gateway.post("/v1/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "Once",
                                         "max_tokens": 4, "stream": True}, key=CLIENT_KEY)
    assert r.status_code == 200
    assert sse_events(r.text)[-1] == ("message", "[DONE]")
    stats = mock.stats()
    gateway.stop()
    recs = gateway.access_records()
    assert [int(x["completion_tokens"]) for x in recs] == [0, 4]
    assert sum(int(x["prompt_tokens"]) for x in recs) == stats["prompt_tokens"]


def test_provider_errors_reach_the_client_as_json_with_zero_tokens(gateway, mock):
    r = gateway.post("/v1/chat/completions", CHAT, key=CLIENT_KEY, headers={"x-mock-fault": "500"})
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "provider_error"
    assert r.headers["x-perpetuo-provider"] == "primary"
    gateway.stop()
    [rec] = gateway.access_records()
    assert rec["status"] == "500" and rec["total_tokens"] == "0" and rec["cost"] == "0"


def test_malformed_provider_json_reaches_the_client_and_is_estimated(gateway, mock):
    r = gateway.post("/v1/chat/completions", CHAT, key=CLIENT_KEY,
                     headers={"x-mock-fault": "malformed"})
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    gateway.stop()
    [rec] = gateway.access_records()
    assert rec["estimated"] == "1" and int(rec["prompt_tokens"]) > 0
    with open(gateway.error_log) as f:
        assert "malformed JSON" in f.read()


def test_the_shipped_example_configuration_passes_nginx_t(tmp_path):
    root = os.path.dirname(PROXY_PARAMS)
    conf = open(os.path.join(root, "nginx.conf.example")).read()
    conf = conf.replace("/etc/perpetuo/perpetuo.yaml", os.path.join(root, "perpetuo.yaml.example"))
    conf = conf.replace("/etc/nginx/perpetuo_proxy_params", PROXY_PARAMS)
    conf = conf.replace("/usr/lib/nginx/modules/ngx_http_perpetuo_module.so",
                        os.path.join(root, "ngx_build/objs/ngx_http_perpetuo_module.so"))
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(conf)
    r = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                       capture_output=True, text=True,
                       env={**os.environ, "MOCK_PROVIDER_KEY": "x",
                            "PERPETUO_JWT_SECRET": "an-example-secret-of-32-bytes-xx"})
    assert r.returncode == 0, r.stderr
