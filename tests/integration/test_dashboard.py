"""The operator dashboard in a real browser: Debian's chromium, driven by
playwright-core (tests/browser), opens the page a `perpetuo_dashboard`
location serves, against a gateway with Redis, analytics and JWT that has
just served real calls. The screenshot is kept at
tests/integration/artifacts/dashboard.png (and the error states in
dashboard-401.png and dashboard-503.png).

dashboard/grafana.json is checked here too: by name against the metric
families the module exports, and each query in a real Prometheus (Debian's)
scraping the same gateway's perpetuo_metrics location."""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import requests

from accounting import wait_for_requests
from conftest import CLIENT_KEY, key_hash
from harness import PROXY_PARAMS, ROOT, free_port, mint_jwt, stop, wait_port

BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
DASHBOARD_FILE = os.path.join(ROOT, "dashboard", "index.html")
ARTIFACTS = os.path.join(os.path.dirname(__file__), "artifacts")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SECRET = "dashboard-test-secret-0123456789"

LOCATIONS = [
    "location /v1/ { perpetuo_gateway; include %s; }" % PROXY_PARAMS,
    "location /workspaces/ { perpetuo_analytics; }",
    "location = /dashboard { perpetuo_dashboard; }",
    "location = /metrics { perpetuo_metrics; }",
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


@pytest.fixture
def served(gateway_factory, mock, redis_server):
    """A gateway with Redis, analytics, JWT, the dashboard and the metrics
    locations, that has served make_calls() and written them to Redis."""
    gw = gateway_factory(yaml_text(mock.url), redis_url=redis_server.url, locations=LOCATIONS,
                         env={"PROVIDER_KEY": "sk-p", "PERPETUO_JWT_SECRET": SECRET}).start()
    calls = make_calls(gw)
    totals = wait_for_requests(redis_server.client(), calls)
    assert totals.get("req") == calls, totals
    return gw


def test_dashboard_in_a_real_browser(served, redis_server):
    browser_ready()
    gw = served
    page = requests.get(gw.url + "/dashboard", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    with open(DASHBOARD_FILE, "rb") as f:
        assert page.content == f.read(), "the served page is not dashboard/index.html"
    logs = requests.get(gw.url + "/workspaces/ws_123/logs?limit=20", timeout=10,
                        headers={"Authorization": "Bearer " + mint_jwt(SECRET, ["ws_123"])})
    assert len(logs.json()["logs"]) == 13

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


# ---- dashboard/grafana.json

GRAFANA_FILE = os.path.join(ROOT, "dashboard", "grafana.json")
COUNTERS_AND_GAUGES = {
    "perpetuo_requests_total", "perpetuo_cost_usd_total", "perpetuo_tokens_total",
    "perpetuo_provider_errors_total", "perpetuo_failovers_total", "perpetuo_circuit_breaker_state",
    "perpetuo_circuit_breaker_opens_total", "perpetuo_provider_in_flight",
    "perpetuo_redis_dropped_records_total", "perpetuo_redis_queue_records", "perpetuo_redis_connected",
}
HISTOGRAMS = {
    "gen_ai_client_token_usage", "gen_ai_client_operation_duration_seconds",
    "gen_ai_server_time_to_first_token_seconds", "perpetuo_gateway_overhead_seconds",
}
EXPORTED = COUNTERS_AND_GAUGES | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "inf", "nan"}


def grafana():
    with open(GRAFANA_FILE) as f:
        return json.load(f)


def all_panels(dash):
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def exprs(dash):
    return [(p["title"], t["expr"]) for p in all_panels(dash) for t in p.get("targets", [])]


def metric_names(expr):
    """The metric names an expression selects: identifiers outside strings,
    label matchers, range selectors and grouping clauses, not called."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    e = re.sub(r"\$\w+", "", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = m.group(0)
        if e[m.end():].lstrip().startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def base_name(name):
    for h in HISTOGRAMS:
        if name.startswith(h + "_"):
            return h
    return name


def grafana_queries(dash, rate_interval="$__rate_interval", rng="$__range"):
    """(title, expr) with Grafana's variables replaced as given, for All."""
    out = []
    for title, expr in exprs(dash):
        e = expr.replace("$__rate_interval", rate_interval).replace("$__range", rng)
        for var in ("workspace", "provider", "model"):
            e = e.replace("$" + var, ".*")
        out.append((title, e))
    return out


def test_grafana_dashboard_is_valid_and_uses_only_exported_metrics():
    r = subprocess.run([sys.executable, "-m", "json.tool", GRAFANA_FILE], capture_output=True)
    assert r.returncode == 0, r.stderr
    dash = grafana()
    assert dash["uid"] == "perpetuo" and dash["title"] == "PERPETUO"
    assert dash["schemaVersion"] >= 38
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert set(variables) >= {"datasource", "workspace", "provider", "model"}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"

    panels = list(all_panels(dash))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for p in panels:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        if p["type"] == "row":
            continue
        assert p["type"] in ("timeseries", "stat", "state-timeline"), p["title"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]

    used = set()
    for title, expr in exprs(dash):
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr}"
        assert names <= EXPORTED, f"{title}: {sorted(names - EXPORTED)} are not exported"
        used |= {base_name(n) for n in names}
    for name in ("workspace", "provider", "model"):
        query = variables[name]["query"]["query"]
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        assert m and m.group(2) == name, query
        assert metric_names(m.group(1)) == {"perpetuo_requests_total"}, query
    # every family the module exports is on the dashboard somewhere
    assert used == COUNTERS_AND_GAUGES | HISTOGRAMS, sorted((COUNTERS_AND_GAUGES | HISTOGRAMS) - used)
    # and the panels the operators asked for are there
    titles = " | ".join(p["title"].lower() for p in panels)
    for words in ("requests/s", "tokens/s", "cost per hour by provider", "cost per hour by workspace",
                  "time to first token", "error rate", "failovers", "circuit breaker",
                  "in-flight", "gateway overhead", "redis link", "queued", "dropped"):
        assert words in titles, words


def test_grafana_queries_select_what_the_module_exports(served):
    """Every query of the dashboard against the gateway's own /metrics: in a
    real Prometheus when Debian's is installed, else by name against the
    exposition text."""
    text = requests.get(served.url + "/metrics", timeout=10).text
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    assert families >= COUNTERS_AND_GAUGES | HISTOGRAMS, \
        sorted((COUNTERS_AND_GAUGES | HISTOGRAMS) - families)
    if not shutil.which("prometheus"):
        pytest.skip("prometheus is not installed: queries checked by name only")

    port = free_port()
    workdir = os.path.join(served.dir, "prometheus")
    os.makedirs(workdir)
    with open(os.path.join(workdir, "prometheus.yml"), "w") as f:
        f.write(f"""
global: {{ scrape_interval: 1s, evaluation_interval: 1s }}
scrape_configs:
  - job_name: perpetuo
    static_configs: [ {{ targets: ["127.0.0.1:{served.port}"] }} ]
""")
    proc = subprocess.Popen(
        ["prometheus", "--config.file=" + os.path.join(workdir, "prometheus.yml"),
         "--storage.tsdb.path=" + os.path.join(workdir, "data"),
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "prometheus.log"), "ab"))
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_port(port, proc, timeout=30)
        deadline = time.time() + 30     # it listens before its storage is open
        while requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=5).status_code != 200:
            assert time.time() < deadline and proc.poll() is None, "prometheus is not ready"
            time.sleep(0.2)

        def query(expr):
            r = requests.get(api + "/query", params={"query": expr}, timeout=10).json()
            assert r["status"] == "success", f"{expr}: {r}"
            return r["data"]["result"]

        # calls between scrapes, so that rates have something to show
        deadline = time.time() + 30
        while time.time() < deadline and not query("count_over_time(perpetuo_requests_total[1m]) >= 3"):
            time.sleep(0.5)
        make_calls(served)
        time.sleep(3)
        dash = grafana()
        empty = []
        for title, expr in grafana_queries(dash, rate_interval="15s", rng="1m"):
            if not query(expr):
                empty.append(f"{title}: {expr}")
        assert not empty, "queries that select nothing:\n" + "\n".join(empty)
        for name in ("workspace", "provider", "model"):
            values = requests.get(f"{api}/label/{name}/values",
                                  params={"match[]": "perpetuo_requests_total"}, timeout=10).json()
            assert values["data"], name
        # numbers that mean something: the calls just made
        [rps] = query(dict(grafana_queries(dash, "15s", "1m"))["Requests/s"])
        assert float(rps["value"][1]) > 0
        cost = query(dict(grafana_queries(dash, "15s", "1m"))["Cost per hour by provider"])
        assert {c["metric"]["provider"] for c in cost} == {"openai", "anthropic"}
    finally:
        stop(proc)
