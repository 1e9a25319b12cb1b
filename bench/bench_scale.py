"""Scaling out: a Redis store with two workers against the in-process store with one, and a
pingback crossing instances. Measured in one run on this machine:

* single-mint req/s and 100-id batch tokens/s, Redis + 2 workers ÷ in-process + 1 worker
  (goal >= 1.6 each: a warm mint touches no network, so workers add throughput);
* two instances on one Redis: a pingback on A, then B's mints: B re-reads the photo from 23
  exactly once, within 1 s (goal).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import common

BATCH = list(range(2001, 2101))


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: run `make test-deps`")
    port = common.free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def gateway(folder: Path, devsite_port: int, store: str, workers: int) -> Iterator[str]:
    port = common.free_port()
    config = common.gateway_config(folder, port, devsite_port, store=store)
    command = [str(common.BIN / "gateway"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    env = {"GATEWAY_CONFIG": str(config), "GATEWAY_WORKERS": str(workers)}
    with common.process(command, folder / f"gateway-{port}.log", env):
        base = f"http://127.0.0.1:{port}"
        common.wait(f"{base}/healthz")
        for _ in range(2 * workers):  # every worker's first level warm, whichever answers
            common.mint_once(base, BATCH)
            common.mint_once(base, [1001])
        yield base


def throughput(folder: Path, base: str) -> tuple[float, float]:
    url = f"{base}/api/v1/sites/demo/tokens"
    single = common.post_script(folder, "single", {"photo_ids": [1001]})
    batch = common.post_script(folder, "batch", {"photo_ids": BATCH})
    return (
        max(common.wrk(url, single) for _ in range(2)),
        max(common.wrk(url, batch) for _ in range(2)) * 100,
    )


def photo_calls(devsite_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{devsite_port}/_devsite/calls") as answer:
        calls = json.load(answer)
    return sum(1 for c in calls if c.get("method") == "photo/list" and "photo_id" in c["params"])


def pingback_crossing(folder: Path, devsite_port: int, store: str) -> tuple[int, float]:
    """(re-reads from 23 by B after A's pingback, seconds until B's first re-read)."""
    with gateway(folder, devsite_port, store, 1) as a, gateway(folder, devsite_port, store, 1) as b:
        before = photo_calls(devsite_port)
        urllib.request.urlopen(
            urllib.request.Request(f"{a}/pingback/demo?type=photo&photo_id=1001", method="POST")
        ).read()
        sent = time.monotonic()
        seen = 0.0
        while time.monotonic() - sent < 2.0:
            common.mint_once(b, [1001])
            if not seen and photo_calls(devsite_port) > before:
                seen = time.monotonic() - sent
            time.sleep(0.01)
        return photo_calls(devsite_port) - before, seen


def main() -> None:
    common.need_wrk()
    folder = Path(tempfile.mkdtemp(prefix="gw-bench-scale-"))
    with common.devsite() as devsite_port, redis_server() as store:
        with gateway(folder, devsite_port, "", 1) as base:
            memory = throughput(folder, base)
        with gateway(folder, devsite_port, store, 2) as base:
            shared = throughput(folder, base)
        rereads, seen = pingback_crossing(folder, devsite_port, store)
    for name, (single, batch) in (
        ("in-process, 1 worker", memory),
        ("Redis, 2 workers", shared),
    ):
        print(f"{name:<22} mint {single:8,.0f} req/s   batch {batch:10,.0f} tokens/s")
    print(
        f"Redis 2 workers / in-process 1 worker: single mint {shared[0] / memory[0]:.2f}, "
        f"batch {shared[1] / memory[1]:.2f}   (goal >= 1.6 each)"
    )
    print(
        f"pingback on A, mints on B: {rereads} re-read(s) of the photo, the first after "
        f"{seen * 1000:.0f} ms   (goal: exactly 1, within 1000 ms)"
    )


if __name__ == "__main__":
    main()
