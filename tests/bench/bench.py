#!/usr/bin/python3
"""PERPETUO benchmark: the gateway against plain nginx doing the same proxying
to the same mock provider, so the difference is the module's cost.

Everything runs on free loopback ports and is stopped by PID at the end, also
on Ctrl-C and errors. Run through scripts/bench; --help lists the options."""

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
# Commands a client issues to set up or inspect a connection, not records.
NOT_RECORDS = {"info", "ping", "hello", "auth", "select", "client", "command", "config",
               "dbsize", "multi", "exec", "script", "quit"}
TICK = os.sysconf("SC_CLK_TCK")

running = []  # (Popen, stop signal), stopped in reverse order


class Failure(Exception):
    pass


def spawn(name, cmd, workdir, stop_signal=signal.SIGTERM, cpus=None, **kw):
    # Own session: Ctrl-C reaches only us, so shutdown order stays ours.
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    kw.setdefault("stdout", open(os.path.join(workdir, name + ".log"), "ab"))
    proc = subprocess.Popen(cmd, stderr=open(os.path.join(workdir, name + ".log"), "ab"),
                            start_new_session=True, **kw)
    running.append((proc, stop_signal))
    return proc


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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    for _ in range(200):
        if proc.poll() is not None:
            raise Failure(f"{what} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise Failure(f"{what}: nothing listening on {port}")


class Nginx:
    """One nginx instance. Both targets are built here, so worker count,
    logging and temp paths cannot differ between them."""

    def __init__(self, label, workdir, args, server, main="", http="", env=None):
        self.label = label
        self.dir = os.path.join(workdir, label)
        self.error_log = os.path.join(self.dir, "error.log")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1/chat/completions"
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
        self.proc = spawn(label, cmd, workdir, signal.SIGQUIT, args.cpus_server, env=env)
        wait_port(self.port, self.proc, label)

    def workers(self):
        return children(self.proc.pid)


def children(ppid):
    pids = []
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and int(stat_fields(int(p))[1]) == ppid:
                pids.append(int(p))
        except OSError:
            pass
    return pids


def stat_fields(pid):
    """Fields of /proc/PID/stat after the command name: [state, ppid, ...]."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        fields = stat_fields(pid)
        total += int(fields[11]) + int(fields[12])  # utime + stime, all threads
    return total / TICK


def redis_records(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "commandstats"],
                         capture_output=True, text=True, check=True).stdout
    calls = {}
    for name, n in re.findall(r"cmdstat_([^:]+):calls=(\d+)", out):
        if name.split("|")[0] not in NOT_RECORDS:
            calls[name] = int(n)
    return calls


def run_wrk(target, stream, seconds, args, watched):
    """One wrk run; returns its BENCH numbers plus CPU use (% of one core) of
    the watched processes, so a saturated mock or wrk shows up in the output."""
    cmd = ["wrk", "-t1", f"-c{args.connections}", f"-d{seconds}s", "-s", LUA, target.url,
           "--", KEY, "1" if stream else "0"]
    if args.cpus_load:
        cmd = ["taskset", "-c", args.cpus_load, *cmd]
    before = {k: cpu_seconds(pids) for k, pids in watched.items()}
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    wall = time.monotonic() - start
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH ")), None)
    if out.returncode != 0 or line is None:
        raise Failure(f"wrk failed against {target.label}:\n{out.stdout}{out.stderr}")
    r = json.loads(line[6:])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["cpu"] = {k: 100 * (cpu_seconds(pids) - before[k]) / wall for k, pids in watched.items()}
    r["cpu"]["wrk"] = 100 * (wrk_after.ru_utime + wrk_after.ru_stime
                             - wrk_before.ru_utime - wrk_before.ru_stime) / wall
    r["errors"] = {k: r[k] for k in ("connect", "read", "write", "timeout", "status") if r[k]}
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
    """Returns the nginx targets (plain first) and the processes to watch."""
    # Private copies: a concurrent scripts/build must not swap binaries mid-run.
    module = shutil.copy(MODULE, os.path.join(workdir, "module.so"))
    mock_bin = shutil.copy(MOCK, os.path.join(workdir, "mock_provider"))
    # One mock loop per nginx worker, so the mock scales with what it serves.
    mock = spawn("mock", [mock_bin, "--port", "0", "--threads", str(args.workers)], workdir,
                 cpus=args.cpus_load, stdout=subprocess.PIPE, text=True)
    line = mock.stdout.readline().split()
    if len(line) != 2 or line[0] != "PORT":
        raise Failure(f"mock provider did not start: {line}")
    mock_port = int(line[1])
    watched = {"mock": [mock.pid]}

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
                      workdir, cpus=args.cpus_load)
        wait_port(port, redis, "redis-server")
        gateway["http"] += f"\n    perpetuo_redis redis://127.0.0.1:{port};"
        try:
            targets.append(Nginx("gateway+redis", workdir, args, **gateway))
            targets[-1].redis_port = port
            watched["redis"] = [redis.pid]
        except Failure as e:
            if args.redis or 'unknown directive "perpetuo_redis"' not in str(e):
                raise
            print("note: this build does not accept perpetuo_redis: no Redis row")
    return targets, watched


def measure(targets, watched, args):
    """results[scenario][label] = list of runs. Targets alternate within each
    repetition, in reversed order every other one, so drift on this shared box
    hits every target alike."""
    results = {s: {t.label: [] for t in targets} for s in SCENARIOS}
    failed = []  # runs with failed requests, warm-ups included
    for rep in range(args.reps):
        for scenario, stream in SCENARIOS.items():
            for t in (targets if rep % 2 == 0 else targets[::-1]):
                procs = {**watched, "nginx": t.workers()}
                if t.label != "gateway+redis":
                    procs.pop("redis", None)
                if rep == 0:
                    warm = run_wrk(t, stream, WARMUP_S, args, procs)
                    warm["label"] = f"{scenario}/{t.label} warm-up"
                    failed += [warm] if warm["errors"] else []
                before = redis_records(t.redis_port) if hasattr(t, "redis_port") else None
                r = run_wrk(t, stream, args.duration, args, procs)
                if before is not None:
                    after = redis_records(t.redis_port)
                    r["records"] = {k: v - before.get(k, 0) for k, v in after.items()
                                    if v != before.get(k, 0)}
                print(f"  run {rep + 1}/{args.reps} {scenario:6} {t.label:14} "
                      f"{r['rps']:9.0f} req/s  p50 {r['p50_us'] / 1000:6.2f} ms  "
                      f"p99 {r['p99_us'] / 1000:6.2f} ms  cpu% "
                      + " ".join(f"{k} {v:.0f}" for k, v in sorted(r["cpu"].items()))
                      + (f"  ERRORS {r['errors']}" if r["errors"] else ""), flush=True)
                r["label"] = f"{scenario}/{t.label} run {rep + 1}"
                failed += [r] if r["errors"] else []
                results[scenario][t.label].append(r)
    return results, failed


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def report(results, targets, args):
    labels = [t.label for t in targets]
    ms = lambda runs: f"{med(runs, 'p50_us') / 1000:6.2f} / {med(runs, 'p99_us') / 1000:6.2f}"
    print(f"\nMedian of {args.reps} interleaved run(s) of {args.duration} s per target "
          f"and scenario, after a {WARMUP_S} s warm-up; p50 / p99 latency in ms.\n")
    print(f"{'scenario':8} {'gateway':14} {'nginx req/s':>11} {'gateway req/s':>13} "
          f"{'ratio':>6}   {'nginx p50 / p99':>15}   {'gateway p50 / p99':>17}")
    for scenario in SCENARIOS:
        plain = results[scenario][labels[0]]
        for label in labels[1:]:
            gw = results[scenario][label]
            print(f"{scenario:8} {label:14} {med(plain, 'rps'):11.0f} {med(gw, 'rps'):13.0f} "
                  f"{med(gw, 'rps') / med(plain, 'rps'):6.2f}   {ms(plain):>15}   {ms(gw):>17}")

    print("\nCPU during the measured runs, % of one core (median):")
    for scenario in SCENARIOS:
        for label in labels:
            runs = results[scenario][label]
            cpu = {k: statistics.median(r["cpu"][k] for r in runs) for k in runs[0]["cpu"]}
            print(f"  {scenario:8} {label:14} "
                  + "  ".join(f"{k} {v:5.1f}" for k, v in sorted(cpu.items())))

    if "gateway+redis" in labels:
        print("\nRedis (gateway+redis), commands other than connection setup:")
        for scenario in SCENARIOS:
            runs = results[scenario]["gateway+redis"]
            counts = [sum(r["records"].values()) for r in runs]
            if not any(counts):
                print(f"  {scenario:8} no Redis writes seen during the runs: "
                      "accounting into Redis is not active in this build")
                continue
            per_s = statistics.median(c / (r["duration_us"] / 1e6) for c, r in zip(counts, runs))
            per_req = statistics.median(c / r["requests"] for c, r in zip(counts, runs))
            names = sorted({k for r in runs for k in r["records"]})
            print(f"  {scenario:8} {per_s:9.0f} commands/s, {per_req:.2f} per request "
                  f"({', '.join(names)})")
        print(f"  keys in Redis after the bench: {targets[-1].redis_keys}")


def check_logs(targets):
    """Returns the count of bad lines after printing them; run after nginx stopped
    so shutdown problems count too."""
    bad = 0
    for t in targets:
        with open(t.error_log) as f:
            lines = f.read().splitlines()
        worst = [l for l in lines if re.search(r"\[(error|crit|alert|emerg)\]|exited on signal", l)]
        warns = [l for l in lines if "[warn]" in l]
        print(f"  {t.label:14} error log: {len(worst)} error-or-worse, {len(warns)} warn "
              f"lines ({t.error_log})")
        for l in (worst + warns)[:8]:
            print("      " + l)
        bad += len(worst)
    return bad


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="smoke check: one 3 s run each")
    p.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--workers", type=int, default=1, help="nginx worker_processes, both targets")
    p.add_argument("--reps", type=int, default=3, help="runs per target and scenario (median)")
    p.add_argument("--redis", action=argparse.BooleanOptionalAction, default=None,
                   help="also bench the gateway with perpetuo_redis "
                        "(default: when the build accepts it)")
    p.add_argument("--cpus-server", metavar="LIST", default=None,
                   help="taskset CPU list for both nginx (default: no pinning)")
    p.add_argument("--cpus-load", metavar="LIST", default=None,
                   help="taskset CPU list for wrk, the mock and redis (default: no pinning)")
    args = p.parse_args()
    if args.quick:
        args.duration, args.reps = 3, 1
    for path in (MODULE, MOCK):
        if not os.path.exists(path):
            raise Failure(f"{path} is missing: run scripts/build")

    version = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip()
    print(f"PERPETUO bench: nproc {os.cpu_count()}, {version}, wrk -t1 -c{args.connections}, "
          f"{args.workers} nginx worker(s), access_log off, pinning "
          f"{'nginx=' + str(args.cpus_server) + ' load=' + str(args.cpus_load) if args.cpus_server or args.cpus_load else 'none'}")
    print(f"module {MODULE} ({time.ctime(os.path.getmtime(MODULE))})")
    workdir = tempfile.mkdtemp(prefix="perpetuo-bench-")
    print(f"logs and configs in {workdir}")
    targets = []
    try:
        targets, watched = start_targets(workdir, args)
        for t in targets:
            for stream in SCENARIOS.values():
                chat_once(t, stream)
        results, failed = measure(targets, watched, args)
        for t in targets[2:]:  # read before redis-server stops
            t.redis_keys = subprocess.run(["redis-cli", "-p", str(t.redis_port), "dbsize"],
                                          capture_output=True, text=True).stdout.strip()
    finally:
        stop_all()
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
