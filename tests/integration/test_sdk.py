"""The official OpenAI and Anthropic SDKs (npm), unchanged but for the base
URL and the key, against the gateway."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import CLIENT_KEY, key_hash

SDK_DIR = os.path.join(os.path.dirname(__file__), "sdk")
pytestmark = pytest.mark.skipif(
    not os.path.isdir(os.path.join(SDK_DIR, "node_modules")) or not shutil.which("node"),
    reason="SDKs not installed (scripts/test installs them with npm)")


def run(sdk, mode, gw, model):
    r = subprocess.run(["node", "client.mjs", sdk, mode, gw.url, CLIENT_KEY, model],
                       cwd=SDK_DIR, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def sdk_gateway(gateway_factory, mock):
    return gateway_factory(f"""
providers:
  oai: {{ kind: openai, base_url: {mock.url}, api_key_env: PROVIDER_KEY }}
  claude: {{ kind: anthropic, base_url: {mock.url}, api_key_env: PROVIDER_KEY }}
models:
  gpt-4o:
    - {{ provider: oai, model: gpt-4o, price: {{ input_per_mtok: 2.5, output_per_mtok: 10 }} }}
  claude-sonnet:
    - {{ provider: claude, model: claude-3-5-sonnet-20241022,
        price: {{ input_per_mtok: 3, output_per_mtok: 15 }} }}
workspaces:
  ws_123:
    api_keys_sha256: [ "{key_hash(CLIENT_KEY)}" ]
""").start()


def test_openai_sdk_json(sdk_gateway):
    out = run("openai", "json", sdk_gateway, "gpt-4o")
    assert out["text"] == "tok tok tok tok tok"
    assert out["usage"]["completion_tokens"] == 5
    assert out["requestId"].startswith("req_")


def test_openai_sdk_stream_sees_no_usage_it_did_not_ask_for(sdk_gateway):
    out = run("openai", "stream", sdk_gateway, "gpt-4o")
    assert out["text"] == "tok " * 5
    assert out["usage"] is None
    sdk_gateway.stop()
    [rec] = sdk_gateway.access_records()
    assert rec["completion_tokens"] == "5" and rec["estimated"] == "0"


@pytest.mark.parametrize("mode", ["json", "stream"])
def test_anthropic_sdk(sdk_gateway, mode):
    out = run("anthropic", mode, sdk_gateway, "claude-sonnet")
    assert out["text"].strip() == "tok tok tok tok tok"
    assert out["usage"]["output_tokens"] == 5
    sdk_gateway.stop()
    [rec] = sdk_gateway.access_records()
    assert rec["provider"] == "claude" and rec["completion_tokens"] == "5"
