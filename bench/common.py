"""What every benchmark here shares: free ports, processes on loopback, wrk, slow clients.

Benchmarks print ratios measured in one run on this machine; absolute numbers mean little.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from gateway.devsite.catalog import DEMO_SUPER

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DURATION = os.environ.get("BENCH_DURATION", "5s")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "16")
KEY = secrets.token_urlsafe(24)


def need_wrk() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: run `make bench` (it installs it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def wrk(url: str, script: str | None = None, threads: int = 2) -> float:
    """Requests per second wrk measured (two threads: one would cap a two-worker server)."""
    cmd = ["wrk", f"-t{threads}", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} error responses from {url}:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def post_script(folder: str | Path, name: str, body: dict[str, object]) -> str:
    path = Path(folder) / f"{name}.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {KEY}"\n'
    )
    return str(path)


def mint_once(base: str, photo_ids: list[int]) -> bytes:
    """One mint call (to warm the photo cache); the answer's body."""
    request = urllib.request.Request(
        f"{base}/api/v1/sites/demo/tokens",
        data=json.dumps({"photo_ids": photo_ids}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body: bytes = response.read()
        return body


def gateway_config(
    folder: Path,
    gateway_port: int,
    devsite_port: int,
    store: str = "",  # [store] url; empty: the in-process store
    site_extra: str = "",  # more TOML lines for [sites.demo]
    key_extra: str = "",  # ... for [api_keys.bench]
    gateway_extra: str = "",  # ... for [gateway]
) -> Path:
    """A gateway configuration for one demo site on the emulated 23 site, and one API key."""
    config = folder / f"gateway-{gateway_port}.toml"
    config.write_text(f"""
[gateway]
public_url = "http://127.0.0.1:{gateway_port}"
secret_key = "{secrets.token_urlsafe(32)}"
{gateway_extra}
log_level = "warning"

[store]
url = "{store}"

[sites.demo]
url = "http://127.0.0.1:{devsite_port}"
consumer_key = "{DEMO_SUPER[0]}"
consumer_secret = "{DEMO_SUPER[1]}"
access_token = "{DEMO_SUPER[2]}"
access_token_secret = "{DEMO_SUPER[3]}"
{site_extra}

[api_keys.bench]
key_sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"
sites = ["demo"]
{key_extra}
""")
    return config


@contextmanager
def process(
    command: list[str], log: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A process for the length of a block; its output to ``log`` (as to a log shipper)."""
    out = log.open("w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()  # type: ignore[union-attr]


@contextmanager
def devsite(extra_photos: int = 200) -> Iterator[int]:
    port = free_port()
    command = [str(BIN / "gateway"), "devsite", "--port", str(port)]
    with process([*command, "--extra-photos", str(extra_photos)]):
        wait(f"http://127.0.0.1:{port}/_devsite/calls")
        yield port


@contextmanager
def slow_clients(port: int, count: int = 64) -> Iterator[None]:
    """``count`` clients trickling a request's headers a byte a second, never finishing."""
    stop = threading.Event()
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(sock)

    def drip() -> None:
        while not stop.wait(1.0):
            for sock in socks:
                with suppress(OSError):
                    sock.sendall(b"a")

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    time.sleep(1.5)
    try:
        yield
    finally:
        stop.set()
        for sock in socks:
            sock.close()


def healthz_under_slow_clients(base: str, port: int) -> float:
    """/healthz req/s while 64 slow clients are attached (0 when it stops answering)."""
    with slow_clients(port):
        try:
            return wrk(f"{base}/healthz")
        except subprocess.CalledProcessError:
            return 0.0
