#!/usr/bin/python3
"""Analytics at scale: seeds one workspace with a million log entries and 90
days of buckets for 20 provider/model pairs through the real write path,
then measures each endpoint's latency (wrk, one connection) through nginx.
Usage: tests/bench/analytics_bench.py [--records N] [--duration S]"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import ROOT, Gateway, MockProvider, Redis, mint_jwt  # noqa: E402

SEED = os.path.join(ROOT, "build", "tests", "bench", "perpetuo_seed")
TARGET_P99_MS = 10.0
ENDPOINTS = [
    "usage",
    "usage/by-provider?days=30",
    "logs?page=1&limit=50",
    "logs?provider=provider_1&limit=50",
    "logs?model=model_3&page=20&limit=50",
    "logs?provider=provider_1&status=500&limit=50",
    "logs?start_date=2020-01-01&end_date=2099-01-01&limit=1000",
    "performance/latency?days=90",
    "performance/errors?days=90",
]


def wrk_latency(url, token, seconds, workdir):
    script = os.path.join(workdir, "auth.lua")
    with open(script, "w") as f:
        f.write(f'wrk.headers["Authorization"] = "Bearer {token}"\n')
    out = subprocess.run(["wrk", "-t1", "-c1", f"-d{seconds}s", "--latency", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx answers from {url}:\n{out}")

    def ms(label):
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(\w+)", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return ms("50"), ms("99"), rps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=3)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="perpetuo-analytics-bench-")
    redis = Redis(workdir).start()
    mock = MockProvider(workdir).start()
    gw = None
    try:
        subprocess.run([SEED, str(redis.port), "ws_big", str(args.records), "90", "20"], check=True)
        yaml = f"""
        providers:
          p: {{ kind: openai_compatible, base_url: {mock.url} }}
        models:
          m: [ {{ provider: p, model: m, price: {{ input_per_mtok: 1, output_per_mtok: 1 }} }} ]
        auth:
          jwt: {{ algorithms: [HS256], hs256_secret_env: JWT_SECRET }}
        analytics:
          retention_days: 91
        """
        gw = Gateway(os.path.join(workdir, "gw"), yaml, env={"JWT_SECRET": "bench-secret"},
                     workers=1, redis_url=redis.url,
                     locations=["location /workspaces/ { perpetuo_analytics; }"]).start()
        token = mint_jwt("bench-secret", ["ws_big"])
        print(f"\nanalytics latency, {args.records} log entries, 90 days x 20 provider/model "
              f"pairs, 1 connection, {args.duration}s each (target p99 < {TARGET_P99_MS} ms)")
        print(f"{'endpoint':58} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
        worst = 0.0
        for path in ENDPOINTS:
            p50, p99, rps = wrk_latency(f"{gw.url}/workspaces/ws_big/{path}", token,
                                        args.duration, workdir)
            worst = max(worst, p99)
            print(f"{path:58} {p50:8.2f} {p99:8.2f} {rps:8.0f}")
        print(f"worst p99: {worst:.2f} ms ({'within' if worst < TARGET_P99_MS else 'OVER'} "
              f"the {TARGET_P99_MS} ms target)")
    finally:
        if gw is not None:
            gw.stop()
        mock.stop()
        redis.stop()


if __name__ == "__main__":
    main()
