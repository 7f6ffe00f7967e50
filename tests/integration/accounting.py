"""Reads what the gateway wrote to Redis, for comparison with what the mock
provider reported."""

import time


def workspace_totals(r, workspace="ws_123"):
    """Sums the per-day, per-provider counters of a workspace."""
    totals = {}
    for key in r.scan_iter(f"pp:{{{workspace}}}:d:*:p"):
        for field, value in r.hgetall(key).items():
            metric = field.rsplit(":", 1)[1]
            totals[metric] = totals.get(metric, 0) + int(value)
    return totals


def log_size(r, workspace="ws_123"):
    return r.zcard(f"pp:{{{workspace}}}:log")


def wait_for_requests(r, expected, workspace="ws_123", timeout=20.0):
    """Waits until the workspace's counters have `expected` requests."""
    deadline = time.time() + timeout
    totals = {}
    while time.time() < deadline:
        try:
            totals = workspace_totals(r, workspace)
            if totals.get("req", 0) >= expected:
                time.sleep(0.3)  # anything more would be a double count
                return workspace_totals(r, workspace)
        except Exception:  # redis restarting
            pass
        time.sleep(0.1)
    return totals
