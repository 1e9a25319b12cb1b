"""Mint endpoint throughput against /healthz on the same gunicorn setup, in one run.

Starts the emulated 23 site and `gateway serve` (one gthread worker, as the in-process store
requires), warms the photo cache, then drives each endpoint with wrk over loopback:

* mint (1 cached id) req/s / healthz req/s            (goal >= 0.85)
* batch mint (100 ids) tokens/s / raw HMAC-SHA1 tokens/s (goal >= 0.25)

Only ratios are meaningful: both sides are measured on this machine in this run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from gateway.devsite.catalog import DEMO_SUPER

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DURATION = os.environ.get("BENCH_DURATION", "5s")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "16")
KEY = secrets.token_urlsafe(24)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def wrk(url: str, script: str | None = None) -> float:
    """Requests per second wrk measured (one thread; the server gets the other core)."""
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} error responses from {url}:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def post_script(folder: str, name: str, body: dict[str, object]) -> str:
    path = Path(folder) / f"{name}.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {KEY}"\n'
    )
    return str(path)


def raw_hmac_rate(n: int = 200_000) -> float:
    key, msg, sha1 = secrets.token_hex(16).encode(), b"expire1800000000photo_id1001", hashlib.sha1
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            hmac.new(key, msg, sha1).hexdigest()
        best = min(best, time.perf_counter() - started)
    return n / best


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: run `make bench` (it installs it)")
    devsite_port, gateway_port = free_port(), free_port()
    folder = tempfile.mkdtemp(prefix="gw-bench-")
    config = Path(folder) / "gateway.toml"
    config.write_text(f"""
[gateway]
public_url = "http://127.0.0.1:{gateway_port}"
secret_key = "{secrets.token_urlsafe(32)}"
log_level = "warning"

[sites.demo]
url = "http://127.0.0.1:{devsite_port}"
consumer_key = "{DEMO_SUPER[0]}"
consumer_secret = "{DEMO_SUPER[1]}"
access_token = "{DEMO_SUPER[2]}"
access_token_secret = "{DEMO_SUPER[3]}"

[api_keys.bench]
key_sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"
sites = ["demo"]
""")
    env = {**os.environ, "GATEWAY_CONFIG": str(config)}
    procs = [
        subprocess.Popen(
            [str(BIN / "gateway"), "devsite", "--port", str(devsite_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        # Access and audit lines go to a file, as they would to a log shipper.
        subprocess.Popen(
            [str(BIN / "gateway"), "serve", "--host", "127.0.0.1", "--port", str(gateway_port)],
            env=env,
            cwd=ROOT,
            stdout=open(Path(folder) / "gateway.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        base = f"http://127.0.0.1:{gateway_port}"
        wait(f"http://127.0.0.1:{devsite_port}/_devsite/calls")
        wait(f"{base}/healthz")
        single = post_script(folder, "single", {"photo_ids": [1001], "ttl": 3600})
        batch_ids = list(range(2001, 2101))  # 100 distinct videos
        batch = post_script(folder, "batch", {"photo_ids": batch_ids, "ttl": 3600})
        mint_url = f"{base}/api/v1/sites/demo/tokens"
        request = urllib.request.Request(
            mint_url,
            data=json.dumps({"photo_ids": batch_ids}).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
        )
        urllib.request.urlopen(request, timeout=10).read()  # warm the photo cache

        healthz = wrk(f"{base}/healthz")
        mint = wrk(mint_url, single)
        batch_rps = wrk(mint_url, batch)
        raw = raw_hmac_rate()
        print(f"healthz:               {healthz:10,.0f} req/s")
        print(
            f"mint, 1 cached id:     {mint:10,.0f} req/s   ratio to healthz {mint / healthz:.2f}"
            "  (goal >= 0.85)"
        )
        print(
            f"batch mint, 100 ids:   {batch_rps * 100:10,.0f} tokens/s ({batch_rps:,.0f} req/s)"
            f"   ratio to raw HMAC-SHA1 {batch_rps * 100 / raw:.2f}  (goal >= 0.25)"
        )
        print(f"raw HMAC-SHA1:         {raw:10,.0f} tokens/s (one core, same run)")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
