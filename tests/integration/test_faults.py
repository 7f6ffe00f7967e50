"""Faults a gateway between untrusted clients and paid providers must
survive: each test checks what the client sees and the record that is kept."""

import json
import socket
import time

import requests

from accounting import wait_for_requests, workspace_totals
from conftest import CLIENT_KEY, basic_yaml
from harness import sse_events

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "fault me"}]}


def only_record(gw):
    gw.stop()
    recs = [r for r in gw.access_records() if r["provider"]]
    assert len(recs) == 1, recs
    return recs[0]


def test_provider_cut_mid_stream_ends_cleanly_and_is_estimated(gateway, mock):
    r = gateway.post("/v1/chat/completions", dict(CHAT, stream=True, max_tokens=20),
                     key=CLIENT_KEY, headers={"x-mock-fault": "cut"})
    assert r.status_code == 200
    events = sse_events(r.text)  # requests read a well-formed chunked body to its end
    assert events and all(json.loads(d)["choices"] for _, d in events)
    rec = only_record(gateway)
    assert rec["status"] == "200" and rec["estimated"] == "1"
    assert 0 < int(rec["completion_tokens"]) < 20
    with open(gateway.error_log) as f:
        assert "broke off the stream" in f.read()


def test_client_gone_mid_stream_is_a_499_with_the_tokens_so_far(gateway, mock):
    body = json.dumps(dict(CHAT, stream=True, max_tokens=60)).encode()
    s = socket.create_connection(("127.0.0.1", gateway.port))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer " + CLIENT_KEY.encode() + b"\r\n"
              b"x-mock-chunk-delay-ms: 30\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    received = b""
    while received.count(b"data: ") < 6:
        received += s.recv(65536)
    s.close()
    time.sleep(0.5)
    rec = only_record(gateway)
    assert rec["status"] == "200"  # nginx's $status: the headers went out as 200
    assert rec["record_status"] == "499" and rec["estimated"] == "1"
    assert 4 <= int(rec["completion_tokens"]) < 60


def test_malformed_stream_event_reaches_the_client_and_the_record_is_kept(gateway, mock):
    r = gateway.post("/v1/chat/completions", dict(CHAT, stream=True, max_tokens=4),
                     key=CLIENT_KEY, headers={"x-mock-fault": "malformed"})
    assert r.status_code == 200 and "[DONE]" in r.text
    rec = only_record(gateway)
    assert rec["status"] == "200" and rec["estimated"] == "1"
    with open(gateway.error_log) as f:
        assert "malformed JSON" in f.read()


def test_request_body_over_the_limit_is_a_413_json_error(gateway, mock):
    big = dict(CHAT, messages=[{"role": "user", "content": "x" * (5 << 20)}])
    r = gateway.post("/v1/chat/completions", big, key=CLIENT_KEY)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"
    assert mock.requests() == []


def test_redis_refusing_writes_buffers_records_until_it_accepts(gateway_factory, mock,
                                                               redis_server):
    client = redis_server.client()
    client.config_set("maxmemory", "1")  # every write is refused: OOM
    client.config_set("maxmemory-policy", "noeviction")
    gw = gateway_factory(basic_yaml(mock.url), redis_url=redis_server.url).start()
    for _ in range(20):
        assert gw.post("/v1/chat/completions", CHAT, key=CLIENT_KEY).status_code == 200
    time.sleep(1.5)
    assert workspace_totals(client).get("req", 0) == 0
    client.config_set("maxmemory", "0")
    assert wait_for_requests(client, 20).get("req") == 20
    with open(gw.error_log) as f:
        assert "OOM" in f.read()


def test_limits_from_the_yaml_apply(gateway_factory, mock):
    text = basic_yaml(mock.url) + "\n    limits: { max_json_depth: 8 }\n"
    gw = gateway_factory(text).start()
    deep = '{"model": "gpt-4o", "messages": [[[[[[[[[["deep"]]]]]]]]]]}'
    r = gw.post("/v1/chat/completions", deep, key=CLIENT_KEY)
    assert r.status_code == 400 and "deep" in r.json()["error"]["message"]
