"""Real processes for integration tests: redis-server, the mock provider and
nginx with the built module, each on a free loopback port, each stopped by
PID. Nothing here is mocked but the LLM providers, which speak the real wire
formats."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import textwrap
import time

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# scripts/sanitize-integration points these at an ASan+UBSan build of the module.
MODULE = os.environ.get("PERPETUO_MODULE") or \
    os.path.join(ROOT, "ngx_build", "objs", "ngx_http_perpetuo_module.so")
MOCK = os.path.join(ROOT, "build", "tests", "mock", "mock_provider")
PROXY_PARAMS = os.path.join(ROOT, "perpetuo_proxy_params")
NGINX = "/usr/sbin/nginx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


def stop(proc, sig=signal.SIGTERM, timeout=10.0):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def key_hash(key):
    return hashlib.sha256(key.encode()).hexdigest()


class Redis:
    """A redis-server of the test's own. `durable` fsyncs every write to an
    append-only file, so a SIGKILL and restart lose nothing."""

    def __init__(self, workdir, durable=False):
        self.port = free_port()
        self.dir = workdir
        self.durable = durable
        self.proc = None

    def start(self):
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.durable else \
            ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", *aof, "--dir", self.dir, "--daemonize", "no"],
            stdout=open(os.path.join(self.dir, "redis.log"), "ab"), stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)
        return self

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def client(self):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    def stop(self):
        stop(self.proc)

    def kill(self):
        self.proc.kill()
        self.proc.wait()


class MockProvider:
    def __init__(self, workdir, *args):
        self.workdir = workdir
        self.args = list(args)
        self.proc = None
        self.port = None

    def start(self):
        self.proc = subprocess.Popen([MOCK, "--port", "0", *self.args], stdout=subprocess.PIPE,
                                     stderr=open(os.path.join(self.workdir, "mock.log"), "ab"),
                                     text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            raise RuntimeError(f"mock provider did not start: {line}")
        self.port = int(line[1])
        return self

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def requests(self):
        return requests.get(self.url + "/_mock/requests", timeout=5).json()

    def stats(self):
        return requests.get(self.url + "/_mock/stats", timeout=5).json()

    def reset(self):
        requests.delete(self.url + "/_mock/requests", timeout=5)
        requests.delete(self.url + "/_mock/stats", timeout=5)

    def configure(self, **settings):
        requests.post(self.url + "/_mock/config", json=settings, timeout=5).raise_for_status()

    def stop(self):
        stop(self.proc)


ACCESS_LOG_FORMAT = (
    "escape=json '{\"status\":\"$status\",\"record_status\":\"$perpetuo_status\","
    "\"provider\":\"$perpetuo_provider\","
    "\"model\":\"$perpetuo_model\",\"workspace\":\"$perpetuo_workspace\","
    "\"request_id\":\"$perpetuo_request_id\",\"prompt_tokens\":\"$perpetuo_prompt_tokens\","
    "\"completion_tokens\":\"$perpetuo_completion_tokens\","
    "\"total_tokens\":\"$perpetuo_total_tokens\",\"cost\":\"$perpetuo_cost\","
    "\"estimated\":\"$perpetuo_tokens_estimated\",\"strategy\":\"$perpetuo_strategy\","
    "\"request_time\":\"$request_time\"}'"
)


class Gateway:
    """nginx with the module, configured from a YAML text and location blocks."""

    def __init__(self, workdir, yaml_text, env=None, workers=2, locations=None, http_extra="",
                 redis_url=None, worker_connections=1024):
        self.dir = workdir
        self.port = free_port()
        self.yaml_text = yaml_text
        self.env = dict(env or {})
        self.workers = workers
        self.locations = locations or [
            "location /v1/ { perpetuo_gateway; include %s; }" % PROXY_PARAMS]
        self.http_extra = http_extra
        self.redis_url = redis_url
        self.worker_connections = worker_connections
        self.proc = None
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def error_log(self):
        return os.path.join(self.dir, "logs", "error.log")

    @property
    def access_log(self):
        return os.path.join(self.dir, "logs", "access.log")

    def write(self):
        with open(os.path.join(self.dir, "perpetuo.yaml"), "w") as f:
            f.write(textwrap.dedent(self.yaml_text))
        env_lines = "\n".join(f"env {name};" for name in self.env)
        redis = f"perpetuo_redis {self.redis_url};" if self.redis_url else ""
        locations = "\n        ".join(self.locations)
        conf = f"""
load_module {MODULE};
worker_processes {self.workers};
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.error_log} info;
{env_lines}
worker_rlimit_nofile {self.worker_connections * 2 + 64};
events {{ worker_connections {self.worker_connections}; }}
http {{
    access_log off;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    perpetuo_config {self.dir}/perpetuo.yaml;
    perpetuo_zone perpetuo 4m;
    {redis}
    log_format perpetuo_json {ACCESS_LOG_FORMAT};
    {self.http_extra}
    server {{
        listen 127.0.0.1:{self.port};
        access_log {self.access_log} perpetuo_json;
        {locations}
    }}
}}
"""
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(conf)

    def command(self, *extra):
        return [NGINX, "-p", self.dir, "-c", os.path.join(self.dir, "nginx.conf"), *extra]

    def test_config(self):
        """Runs nginx -t; returns (ok, output)."""
        self.write()
        r = subprocess.run(self.command("-t"), env=self.nginx_env(), capture_output=True,
                           text=True)
        return r.returncode == 0, r.stderr + r.stdout

    def nginx_env(self):
        env = {**os.environ, **self.env}
        if os.environ.get("PERPETUO_NGINX_PRELOAD"):  # the ASan runtime, for nginx alone
            env["LD_PRELOAD"] = os.environ["PERPETUO_NGINX_PRELOAD"]
        return env

    def start(self):
        self.write()
        env = self.nginx_env()
        self.proc = subprocess.Popen(self.command(), env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "nginx.stderr"), "ab"))
        wait_port(self.port, self.proc)
        return self

    def worker_rss_kb(self):
        """Resident memory of each worker process, in KiB."""
        children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        rss = []
        for pid in children:
            with open(f"/proc/{pid}/status") as f:
                rss += [int(line.split()[1]) for line in f if line.startswith("VmRSS:")]
        return rss

    def reload(self):
        self.write()
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        stop(self.proc, signal.SIGQUIT, timeout=15)
        self.check_error_log()

    def check_error_log(self):
        if not os.path.exists(self.error_log):
            return
        with open(self.error_log) as f:
            bad = [line for line in f
                   if "[alert]" in line or "[emerg]" in line or "[crit]" in line
                   or "exited on signal" in line or "Sanitizer" in line
                   or "runtime error:" in line]
        assert not bad, "nginx error log has:\n" + "".join(bad)

    def access_records(self):
        if not os.path.exists(self.access_log):
            return []
        with open(self.access_log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def post(self, path, body, key=None, headers=None, stream=False, timeout=30):
        h = {"Content-Type": "application/json"}
        if key is not None:
            h["Authorization"] = f"Bearer {key}"
        h.update(headers or {})
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return requests.post(self.url + path, data=data, headers=h, stream=stream,
                             timeout=timeout)


def sse_events(text):
    """Splits an SSE body into (event, data) pairs (LF framing, as the mocks send)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        kind, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        events.append((kind, "\n".join(data)))
    return events


def workdir(prefix="perpetuo-it-"):
    return tempfile.mkdtemp(prefix=prefix)


def mint_jwt(secret, workspaces, ttl=3600, claim="workspaces", **extra):
    """An HS256 token as an identity provider would issue it."""
    import base64
    import hmac

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    payload = {claim: workspaces, "iat": now, "exp": now + ttl, **extra}
    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + \
        b64(json.dumps(payload).encode())
    sig = hmac.new(secret.encode(), signing_input.encode(), "sha256").digest()
    return signing_input + "." + b64(sig)
