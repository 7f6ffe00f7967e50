"""The operator dashboard in a real browser: Debian's chromium, driven by
playwright-core (tests/browser), opens the page a `perpetuo_dashboard`
location serves, against a gateway with Redis, analytics and JWT that has
just served real calls. The screenshot is kept at
tests/integration/artifacts/dashboard.png (and the error states in
dashboard-401.png and dashboard-503.png)."""

import os
import shutil
import subprocess
import time

import pytest
import requests

from accounting import wait_for_requests
from conftest import CLIENT_KEY, key_hash
from harness import PROXY_PARAMS, ROOT, mint_jwt

BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
DASHBOARD_FILE = os.path.join(ROOT, "dashboard", "index.html")
ARTIFACTS = os.path.join(os.path.dirname(__file__), "artifacts")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SECRET = "dashboard-test-secret-0123456789"


def module_has_dashboard():
    """True once the module's glue declares the perpetuo_dashboard directive."""
    ngx = os.path.join(ROOT, "module", "ngx")
    for name in os.listdir(ngx):
        with open(os.path.join(ngx, name), errors="replace") as f:
            if '"perpetuo_dashboard"' in f.read():
                return True
    return False


if module_has_dashboard():
    DASHBOARD_LOCATION = "location = /dashboard { perpetuo_dashboard; }"
else:
    # Stand-in until the directive lands: plain nginx serving the same file.
    DASHBOARD_LOCATION = ("location = /dashboard { default_type text/html; alias %s; }"
                          % DASHBOARD_FILE)

LOCATIONS = [
    "location /v1/ { perpetuo_gateway; include %s; }" % PROXY_PARAMS,
    "location /workspaces/ { perpetuo_analytics; }",
    DASHBOARD_LOCATION,
]


def yaml_text(mock_url):
    return f"""
    providers:
      openai:    {{ kind: openai,    base_url: {mock_url}, api_key_env: PROVIDER_KEY }}
      anthropic: {{ kind: anthropic, base_url: {mock_url}, api_key_env: PROVIDER_KEY }}
    models:
      gpt-4o:
        - {{ provider: openai, model: gpt-4o-2024-08-06,
            price: {{ input_per_mtok: 2.50, output_per_mtok: 10.00, cached_input_per_mtok: 1.25 }} }}
      claude-sonnet:
        - {{ provider: anthropic, model: claude-3-5-sonnet-20241022,
            price: {{ input_per_mtok: 3.00, output_per_mtok: 15.00 }} }}
    workspaces:
      ws_123:
        api_keys_sha256: [ "{key_hash(CLIENT_KEY)}" ]
    auth:
      jwt:
        algorithms: [HS256]
        hs256_secret_env: PERPETUO_JWT_SECRET
    """


def browser_ready():
    """Skips (only) when the browser is not there; installs the pinned driver."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (scripts/test installs Debian's chromium)")
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node/npm are not installed (scripts/test installs them)")
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=BROWSER_DIR, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, "npm ci in tests/browser failed:\n" + r.stderr


def make_calls(gw):
    """A few real calls of both wire formats, streamed and not, one failing."""
    n = 0
    for i in range(8):
        body = {"model": "gpt-4o", "stream": bool(i % 2), "max_tokens": 4 + 3 * i,
                "messages": [{"role": "user", "content": "dashboard " * (5 + i)}]}
        headers = {"x-mock-cached-tokens": "4", "x-mock-latency-ms": str(20 + 10 * i)}
        if i == 7:
            headers["x-mock-fault"] = "500"
        r = gw.post("/v1/chat/completions", body, key=CLIENT_KEY, headers=headers)
        assert r.status_code == (500 if i == 7 else 200), r.text
        n += 1
    for i in range(5):
        body = {"model": "claude-sonnet", "max_tokens": 16 + 8 * i, "stream": i == 4,
                "messages": [{"role": "user", "content": "chart me " * (10 + i)}]}
        headers = {"x-mock-latency-ms": str(120 + 40 * i)}
        if i == 3:
            headers["x-mock-fault"] = "429"
        r = gw.post("/v1/messages", body, headers={"x-api-key": CLIENT_KEY,
                                                   "anthropic-version": "2023-06-01", **headers})
        assert r.status_code == (429 if i == 3 else 200), r.text
        n += 1
    return n


def test_dashboard_in_a_real_browser(gateway_factory, mock, redis_server):
    browser_ready()
    gw = gateway_factory(yaml_text(mock.url), redis_url=redis_server.url, locations=LOCATIONS,
                         env={"PROVIDER_KEY": "sk-p", "PERPETUO_JWT_SECRET": SECRET}).start()

    page = requests.get(gw.url + "/dashboard", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    with open(DASHBOARD_FILE, "rb") as f:
        assert page.content == f.read(), "the served page is not dashboard/index.html"

    calls = make_calls(gw)
    totals = wait_for_requests(redis_server.client(), calls)
    assert totals.get("req") == calls, totals
    logs = requests.get(gw.url + "/workspaces/ws_123/logs?limit=20", timeout=10,
                        headers={"Authorization": "Bearer " + mint_jwt(SECRET, ["ws_123"])})
    assert len(logs.json()["logs"]) == calls

    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "dashboard.png")
    run_browser(gw, shot)
    assert os.path.getsize(shot) > 10000

    # Redis gone: the page says so instead of drawing stale or empty charts
    redis_server.stop()
    time.sleep(0.3)
    run_browser(gw, os.path.join(ARTIFACTS, "dashboard-503.png"), DASHBOARD_EXPECT_ERROR="503")


def run_browser(gw, shot, **env):
    if os.path.exists(shot):
        os.remove(shot)
    r = subprocess.run(["node", "dashboard.spec.mjs", gw.url, "ws_123",
                        mint_jwt(SECRET, ["ws_123"]), shot, "/dashboard"],
                       cwd=BROWSER_DIR, capture_output=True, text=True, timeout=180,
                       env={**os.environ, **env})
    if r.returncode == 3:
        pytest.skip("chromium cannot be launched here: " + r.stderr.strip()[-500:])
    assert r.returncode == 0, f"browser test failed:\n{r.stderr}\n{r.stdout}"
    assert os.path.exists(shot)
