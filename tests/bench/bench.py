#!/usr/bin/python3
"""PERPETUO benchmark: the gateway against plain nginx doing the same proxying
to the same mock provider, so the difference is the module's cost.

Everything runs on free loopback ports and is stopped by PID at the end, also
on Ctrl-C and errors. Run through scripts/bench."""

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402  free ports and readiness, shared with the tests
from harness import free_port  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULE = os.path.join(ROOT, "ngx_build", "objs", "ngx_http_perpetuo_module.so")
MOCK = os.path.join(ROOT, "build", "tests", "mock", "mock_provider")
PROXY_PARAMS = os.path.join(ROOT, "perpetuo_proxy_params")
LUA = os.path.join(ROOT, "tests", "bench", "chat.lua")
NGINX = "/usr/sbin/nginx"
KEY = "sk-perpetuo-bench"
KEY_ENV = "PERPETUO_BENCH_PROVIDER_KEY"
SCENARIOS = {"chat": False, "stream": True}
WARMUP_S = 2
# The accounting script (module/core/accounting_script.cpp) stores each call's
# log entry with one HSET, so HSET calls count records; commandstats also
# counts the calls a script makes.
RECORD_COMMAND = "hset"
TICK = os.sysconf("SC_CLK_TCK")

running = []  # (Popen, stop signal), stopped in reverse order


class Failure(Exception):
    pass


def spawn(name, cmd, workdir, cpus=None, stop_signal=signal.SIGTERM, **kw):
    # Own session: Ctrl-C reaches only us, so shutdown order stays ours.
    log = os.path.join(workdir, name + ".log")
    kw.setdefault("stdout", open(log, "ab"))
    proc = subprocess.Popen(pinned(cmd, cpus), stderr=open(log, "ab"),
                            start_new_session=True, **kw)
    running.append((proc, stop_signal))
    return proc


def pinned(cmd, cpus):
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


def stop_all():
    while running:
        proc, sig = running.pop()
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_port(port, proc, what):
    try:
        harness.wait_port(port, proc)
    except RuntimeError as e:
        raise Failure(f"{what}: {e}") from None


class Nginx:
    """One nginx instance. Every target is built here, so worker count,
    logging and temp paths cannot differ between them."""

    def __init__(self, label, workdir, args, server, main="", http="", env=None):
        self.label = label
        self.dir = os.path.join(workdir, label)
        self.error_log = os.path.join(self.dir, "error.log")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1/chat/completions"
        self.redis_port = None
        os.makedirs(self.dir)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""{main}
worker_processes {args.workers};
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.error_log} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    {http}
    server {{
        listen 127.0.0.1:{self.port};
        {server}
    }}
}}
""")
        cmd = [NGINX, "-p", self.dir, "-c", conf]
        env = {**os.environ, **(env or {})}
        check = subprocess.run([*cmd, "-t"], env=env, capture_output=True, text=True)
        if check.returncode != 0:
            raise Failure(f"{label}: nginx -t failed:\n{check.stderr}")
        self.proc = spawn(label, cmd, workdir, args.pin.get("nginx"), signal.SIGQUIT, env=env)
        wait_port(self.port, self.proc, label)


def cpu_snapshot():
    """{pid: (ppid, CPU seconds so far, all threads)} for every process, plus
    "irq", time in interrupts (loopback TCP is mostly processed in softirq,
    charged to no process), and "busy", the whole box's non-idle time."""
    with open("/proc/stat") as f:
        ticks = [int(t) for t in f.readline().split()[1:9]]
    snap = {"irq": (None, (ticks[5] + ticks[6]) / TICK),
            "busy": (None, (sum(ticks) - ticks[3] - ticks[4]) / TICK)}
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            snap[int(p)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
        except (OSError, ValueError):
            pass
    return snap


def others_cpu(before, after, wall, wrk_s=0):
    """CPU used by work the bench did not start, % of one core: the box's busy
    time less ours, so that short-lived compilers count too."""
    ours = {os.getpid(), "irq"} | {p.pid for p, _ in running}
    ours |= {pid for pid, (ppid, _) in after.items() if ppid in ours}  # nginx workers
    mine = sum(s - before[pid][1] for pid, (_, s) in after.items() if pid in ours and pid in before)
    busy = after["busy"][1] - before["busy"][1]
    return max(0.0, 100 * (busy - mine - wrk_s) / wall)


def wait_quiet(budget, threshold=25):
    """Waits while other work, a compiler say, holds a good part of a core: on
    2 cores it would decide the numbers more than the module. budget is a
    one-item list, the seconds of waiting left for the whole bench."""
    told = False
    while budget[0] > 0:
        before = cpu_snapshot()
        time.sleep(1)
        busy = others_cpu(before, cpu_snapshot(), 1)
        if busy < threshold:
            return
        if not told:
            print(f"  (waiting: other processes use {busy:.0f}% of a core)", flush=True)
            told = True
        budget[0] -= 1


def redis_calls(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "commandstats"],
                         capture_output=True, text=True, check=True).stdout
    calls = {name: int(n) for name, n in re.findall(r"cmdstat_([^:]+):calls=(\d+)", out)}
    calls.pop("info", None)  # ours
    return calls


def redis_settle(port, quiet_s=1.0, limit_s=60):
    """Waits until Redis gets no more commands (the gateway has written what
    it queued), so no backlog spills into the next run; returns the counts."""
    calls, since, deadline = redis_calls(port), time.monotonic(), time.monotonic() + limit_s
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.2)
        now = redis_calls(port)
        if now != calls:
            calls, since = now, time.monotonic()
    return calls


def run_wrk(target, stream, seconds, args, helpers):
    """One wrk run: its BENCH numbers plus CPU use, % of one core, of the
    target's workers, of the helpers ({name: pid}), of wrk, and of processes
    that are not ours (other work on this box skews a run; it shows here)."""
    cmd = pinned(["wrk", "-t1", f"-c{args.connections}", f"-d{seconds}s", "-s", LUA, target.url,
                  "--", KEY, "1" if stream else "0"], args.pin.get("wrk"))
    redis_before = redis_calls(target.redis_port) if target.redis_port else None
    before = cpu_snapshot()
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    wall = time.monotonic() - start
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = cpu_snapshot()
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH ")), None)
    if out.returncode != 0 or line is None:
        raise Failure(f"wrk failed against {target.label}:\n{out.stdout}{out.stderr}")
    r = json.loads(line[6:])
    r["errors"] = {k: r[k] for k in ("connect", "read", "write", "timeout", "status") if r[k]}
    if target.redis_port:
        during = redis_calls(target.redis_port)
        settled = redis_settle(target.redis_port)
        base = redis_before.get(RECORD_COMMAND, 0)
        r["records_per_s"] = (during.get(RECORD_COMMAND, 0) - base) / wall
        r["records"] = settled.get(RECORD_COMMAND, 0) - base
        r["commands"] = sorted(k for k in settled if settled[k] != redis_before.get(k))

    used = {pid: s - before[pid][1] for pid, (_, s) in after.items() if pid in before}
    wrk_s = (wrk_after.ru_utime + wrk_after.ru_stime - wrk_before.ru_utime - wrk_before.ru_stime)
    groups = {"nginx": [pid for pid, (ppid, _) in after.items() if ppid == target.proc.pid]}
    groups.update({name: [pid] for name, pid in helpers.items()}, irq=["irq"])
    r["cpu"] = {k: 100 * sum(used.get(p, 0) for p in pids) / wall for k, pids in groups.items()}
    r["cpu"]["wrk"] = 100 * wrk_s / wall
    r["cpu"]["other"] = others_cpu(before, after, wall, wrk_s)
    r["us_per_req"] = 1e6 * sum(used.get(p, 0) for p in groups["nginx"]) / r["requests"]
    return r


def chat_once(target, stream):
    """One request outside wrk: checks the target returns a real completion,
    which wrk cannot see (it only counts statuses)."""
    body = json.dumps({"model": "gpt-4o", "max_tokens": 16, "stream": stream,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(target.url, data=body, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read().decode()
    except OSError as e:
        raise Failure(f"{target.label}: chat call failed: {e}")
    marker = "data: [DONE]" if stream else '"chat.completion"'
    if marker not in text:
        raise Failure(f"{target.label}: no {marker} in the answer:\n{text[:500]}")


def plain_proxy_params():
    """perpetuo_proxy_params minus what needs the module's variables, so plain
    nginx proxies with exactly the gateway's settings, whatever they become."""
    keep = []
    with open(PROXY_PARAMS) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line and "$perpetuo_" not in line and not line.startswith("proxy_ssl"):
                keep.append(line)
    return "\n        ".join(keep)


def gateway_yaml(workdir, mock_port):
    path = os.path.join(workdir, "perpetuo.yaml")
    with open(path, "w") as f:
        f.write(f"""providers:
  mock: {{ kind: openai, base_url: "http://127.0.0.1:{mock_port}", api_key_env: {KEY_ENV}, keepalive: 32 }}
models:
  gpt-4o:
    - {{ provider: mock, model: gpt-4o-2024-08-06,
        price: {{ input_per_mtok: 2.50, output_per_mtok: 10.00 }} }}
workspaces:
  ws_bench:
    api_keys_sha256: [ "{hashlib.sha256(KEY.encode()).hexdigest()}" ]
""")
    return path


def start_targets(workdir, args):
    """Returns the nginx targets (plain first) and the helper PIDs to watch."""
    # Private copies: a concurrent scripts/build must not swap binaries mid-run.
    module = shutil.copy(MODULE, os.path.join(workdir, "module.so"))
    mock_bin = shutil.copy(MOCK, os.path.join(workdir, "mock_provider"))
    # One mock loop per nginx worker, so the mock scales with what it serves.
    mock = spawn("mock", [mock_bin, "--port", "0", "--threads", str(args.workers)], workdir,
                 args.pin.get("mock"), stdout=subprocess.PIPE, text=True)
    line = mock.stdout.readline().split()
    if len(line) != 2 or line[0] != "PORT":
        raise Failure(f"mock provider did not start: {line}")
    mock_port = int(line[1])
    helpers = {"mock": mock.pid}

    plain = Nginx("nginx", workdir, args,
                  http=f"upstream mock {{ server 127.0.0.1:{mock_port}; keepalive 32; }}",
                  server=f"location /v1/ {{\n        proxy_pass http://mock;\n"
                         f"        {plain_proxy_params()}\n        }}")
    gateway = dict(main=f"load_module {module};\nenv {KEY_ENV};",
                   http=f"perpetuo_config {gateway_yaml(workdir, mock_port)};\n"
                        f"    perpetuo_zone perpetuo 4m;",
                   server=f"location /v1/ {{ perpetuo_gateway; include {PROXY_PARAMS}; }}",
                   env={KEY_ENV: "sk-mock-provider"})
    targets = [plain, Nginx("gateway", workdir, args, **gateway)]

    if args.redis is not False:
        port = free_port()
        redis = spawn("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", workdir],
                      workdir, args.pin.get("mock"))
        wait_port(port, redis, "redis-server")
        gateway["http"] += f"\n    perpetuo_redis redis://127.0.0.1:{port};"
        try:
            targets.append(Nginx("gateway+redis", workdir, args, **gateway))
            targets[-1].redis_port = port
            helpers["redis"] = redis.pid
        except Failure as e:
            if args.redis or 'unknown directive "perpetuo_redis"' not in str(e):
                raise
            print("note: this build does not accept perpetuo_redis: no Redis row")
    return targets, helpers


def measure(targets, helpers, args):
    """Returns (results[scenario][label] = runs, runs with failed requests).
    Targets alternate within each repetition, in reversed order every other
    one, so drift on this shared box hits every target alike."""
    results = {s: {t.label: [] for t in targets} for s in SCENARIOS}
    failed = []
    quiet_budget = [args.max_wait]
    for rep in range(args.reps):
        for scenario, stream in SCENARIOS.items():
            for t in (targets if rep % 2 == 0 else targets[::-1]):
                watch = {k: v for k, v in helpers.items() if k != "redis" or t.redis_port}
                if rep == 0:
                    warm = run_wrk(t, stream, WARMUP_S, args, watch)
                    warm["label"] = f"{scenario}/{t.label} warm-up"
                    failed += [warm] if warm["errors"] else []
                wait_quiet(quiet_budget)
                r = run_wrk(t, stream, args.duration, args, watch)
                r["label"] = f"{scenario}/{t.label} run {rep + 1}"
                failed += [r] if r["errors"] else []
                results[scenario][t.label].append(r)
                print(f"  run {rep + 1}/{args.reps} {scenario:6} {t.label:14}"
                      f"{r['rps']:8.0f} req/s  p50 {r['p50_us'] / 1000:5.2f}  "
                      f"p99 {r['p99_us'] / 1000:6.2f} ms  {r['us_per_req']:5.1f} us/req  cpu% "
                      + " ".join(f"{k} {v:.0f}" for k, v in r["cpu"].items())
                      + (f"  ERRORS {r['errors']}" if r["errors"] else ""), flush=True)
    return results, failed


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def report(results, targets, args):
    labels = [t.label for t in targets]
    print(f"\nMedian of {args.reps} run(s) per target and scenario, {args.duration} s each, "
          f"targets interleaved, after a {WARMUP_S} s warm-up.")
    print("us/req: CPU time of the nginx worker(s) per request (user+sys, not softirq); "
          "the gap\nbetween the two is the module's cost, and moves less with contention "
          "than req/s.\n")
    print(f"{'':23}{'------- req/s -------':>24}  {'-- p50 ms --':>13}  {'-- p99 ms --':>13}"
          f"  {'-- us/req --':>13}")
    print(f"{'scenario':8} {'gateway':14}  {'nginx':>7} {'gateway':>8} {'ratio':>6}  "
          + "  ".join(f"{'nginx':>6} {'gw':>6}" for _ in range(3)))
    for scenario in SCENARIOS:
        plain = results[scenario][labels[0]]
        for label in labels[1:]:
            gw = results[scenario][label]
            pairs = [f"{med(plain, key) / scale:6.{d}f} {med(gw, key) / scale:6.{d}f}"
                     for key, scale, d in (("p50_us", 1000, 2), ("p99_us", 1000, 2),
                                           ("us_per_req", 1, 1))]
            print(f"{scenario:8} {label:14}  {med(plain, 'rps'):7.0f} {med(gw, 'rps'):8.0f} "
                  f"{med(gw, 'rps') / med(plain, 'rps'):6.2f}  " + "  ".join(pairs))

    print("\nCPU during the measured runs, % of one core (median; 'other' = what "
          "the bench did not start):")
    for scenario in SCENARIOS:
        for label in labels:
            runs = results[scenario][label]
            print(f"  {scenario:8} {label:14} " + "  ".join(
                f"{k} {statistics.median(r['cpu'][k] for r in runs):5.1f}" for k in runs[0]["cpu"]))
    busiest = max(r["cpu"]["other"] for s in results.values() for runs in s.values() for r in runs)
    if busiest > 10:
        print(f"  !! other processes used up to {busiest:.0f}% of a core during a run: "
              "numbers are noisy, rerun on a quiet box")

    redis_target = next((t for t in targets if t.redis_port), None)
    if redis_target:
        print(f"\nRedis accounting by {redis_target.label} (records = {RECORD_COMMAND} calls; "
              "'kept' = records once the gateway's queue drained, per request served):")
        for scenario in SCENARIOS:
            runs = results[scenario][redis_target.label]
            if not any(r["records"] for r in runs):
                names = sorted({c for r in runs for c in r["commands"]}) or ["none"]
                print(f"  {scenario:8} no records seen (commands: {', '.join(names)}): "
                      "accounting into Redis is not active in this build")
                continue
            kept = statistics.median(r["records"] / r["requests"] for r in runs)
            print(f"  {scenario:8} {med(runs, 'records_per_s'):7.0f} records/s written during "
                  f"the runs, for {med(runs, 'rps'):.0f} req/s; kept {100 * kept:.1f}%"
                  + ("" if kept > 0.999 else "  !! records lost: see the error log"))
        print(f"  keys in Redis after the bench: {redis_target.redis_keys}")


def check_logs(targets):
    """Prints what the error logs hold; returns the count of error-or-worse
    lines. Run after nginx stopped, so shutdown problems count too."""
    bad = 0
    for t in targets:
        with open(t.error_log) as f:
            lines = f.read().splitlines()
        worst = [l for l in lines if re.search(r"\[(error|crit|alert|emerg)\]|exited on signal", l)]
        warns = [l for l in lines if "[warn]" in l]
        print(f"  {t.label:14} {len(worst)} error-or-worse, {len(warns)} warn lines  "
              f"({t.error_log})")
        for l in (worst + warns)[:8]:
            print("      " + l)
        bad += len(worst)
    return bad


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="smoke check: one 3 s run each")
    p.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    p.add_argument("--connections", type=int, default=32, help="wrk connections")
    p.add_argument("--workers", type=int, default=1, help="nginx worker_processes, all targets")
    p.add_argument("--reps", type=int, default=3, help="runs per target and scenario (median)")
    p.add_argument("--redis", action=argparse.BooleanOptionalAction, default=None,
                   help="also bench the gateway with perpetuo_redis "
                        "(default: when the build accepts it)")
    p.add_argument("--max-wait", type=int, default=300, metavar="SECONDS",
                   help="at most this long in all, wait for other busy processes to calm "
                        "down before a run (--quick: 30)")
    p.add_argument("--pin", default="", metavar="nginx=1,mock=0,wrk=1",
                   help="taskset CPU lists by role (redis goes with mock); default: none")
    args = p.parse_args()
    args.pin = dict(role.split("=", 1) for role in args.pin.split(",") if role)
    if set(args.pin) - {"nginx", "mock", "wrk"}:
        p.error("--pin roles are nginx, mock and wrk")
    if args.quick:
        args.duration, args.reps, args.max_wait = 3, 1, min(args.max_wait, 30)
    for path in (MODULE, MOCK):
        if not os.path.exists(path):
            raise Failure(f"{path} is missing: run scripts/build")

    version = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip()
    print(f"PERPETUO bench: nproc {os.cpu_count()}, {version.replace('nginx version: ', '')}, "
          f"wrk -t1 -c{args.connections}, {args.workers} nginx worker(s) per target, "
          f"access_log off, pinning: {args.pin or 'none'}")
    print(f"module {MODULE} built {time.ctime(os.path.getmtime(MODULE))}")
    workdir = tempfile.mkdtemp(prefix="perpetuo-bench-")
    print(f"configs and logs in {workdir}")
    targets = []
    try:
        targets, helpers = start_targets(workdir, args)
        for t in targets:
            for stream in SCENARIOS.values():
                chat_once(t, stream)
        results, failed = measure(targets, helpers, args)
        for t in targets:  # read before redis-server stops
            if t.redis_port:
                t.redis_keys = subprocess.run(["redis-cli", "-p", str(t.redis_port), "dbsize"],
                                              capture_output=True, text=True).stdout.strip()
    finally:
        stop_all()
        for copy in ("module.so", "mock_provider"):  # keep configs and logs only
            if os.path.exists(os.path.join(workdir, copy)):
                os.remove(os.path.join(workdir, copy))
    report(results, targets, args)
    print("\nnginx error logs:")
    bad = check_logs(targets)
    if failed:
        print("\n!!! FAILED REQUESTS (wrk counts status >= 400 and socket errors):")
        for r in failed:
            print(f"!!!   {r['label']}: {r['errors']} of {r['requests']} requests")
    if failed or bad:
        print("\nbench: FAILED (see above)")
        return 1
    print("\nbench: ok")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    except Failure as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
