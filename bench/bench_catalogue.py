"""First mints with a synced catalogue against the same mints looked up on demand, in one run.

The emulated site lists 5,000 extra videos. Two gateways (default server, one worker) serve
it: one with ``catalogue = "sync"`` (the default), one with ``catalogue = "on_demand"``. Each
mints every video once, in calls of 100 ids, after a restart (every id cold in the process),
then five calls of 100 unknown ids. Printed: the time of the start-up sync, tokens per second
for first mints on each and their ratio, and the upstream calls each made (counted by the
emulated site).
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import BIN, devsite, free_port, gateway_config, mint_once, process, wait

VIDEOS = 5000
FIRST = 2001


def calls(devsite_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{devsite_port}/_devsite/calls") as response:
        return len(json.load(response))


def reset(devsite_port: int) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{devsite_port}/_devsite/reset", data=b"{}", method="POST"
    )
    urllib.request.urlopen(request).read()


def synced(base: str, seconds: float = 120) -> float:
    """Wait for the start-up sync; its duration as the gateway reports it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(f"{base}/metrics").read().decode()
        for line in text.splitlines():
            if line.startswith('gateway_catalogue_sync_seconds{site="demo"}'):
                return float(line.split()[-1])
        time.sleep(0.2)
    raise SystemExit("the catalogue did not sync")


def first_mints(base: str, devsite_port: int) -> tuple[float, int, float, int]:
    """(tokens/s of first mints, their upstream calls, seconds for 500 unknown, their calls)."""
    reset(devsite_port)
    ids = list(range(FIRST, FIRST + VIDEOS))
    started = time.perf_counter()
    for i in range(0, VIDEOS, 100):
        mint_once(base, ids[i : i + 100])
    rate = VIDEOS / (time.perf_counter() - started)
    cold_calls = calls(devsite_port)
    reset(devsite_port)
    started = time.perf_counter()
    for batch in range(5):
        body = mint_once(base, list(range(900_000 + batch * 100, 900_100 + batch * 100)))
        assert b"no_such_photo" in body
    unknown_seconds = time.perf_counter() - started
    return rate, cold_calls, unknown_seconds, calls(devsite_port)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, devsite(VIDEOS) as devsite_port:
        figures = {}
        for mode in ("sync", "on_demand"):
            port = free_port()
            config = gateway_config(
                Path(tmp),
                port,
                devsite_port,
                site_extra=f'catalogue = "{mode}"',
                key_extra="cold_lookups_per_minute = 0",
            )
            base = f"http://127.0.0.1:{port}"
            command = [str(BIN / "gateway"), "serve", "--host", "127.0.0.1", "--port", str(port)]
            with process(command, Path(tmp) / f"{mode}.log", {"GATEWAY_CONFIG": str(config)}):
                wait(f"{base}/healthz")
                sync_seconds = synced(base) if mode == "sync" else 0.0
                figures[mode] = (sync_seconds, *first_mints(base, devsite_port))
        sync_s, sync_rate, sync_calls, sync_unknown, sync_unknown_calls = figures["sync"]
        _, od_rate, od_calls, od_unknown, od_unknown_calls = figures["on_demand"]
        print(f"catalogue: {VIDEOS + 5} videos synced at start-up in {sync_s:.2f} s")
        print(
            f"first mints of {VIDEOS} videos, 100 ids a call: sync {sync_rate:,.0f} tokens/s "
            f"({sync_calls} calls to 23), on_demand {od_rate:,.0f} tokens/s ({od_calls} calls)"
            f" -> ratio {sync_rate / od_rate:.1f}"
        )
        print(
            f"500 unknown ids in 5 calls: sync {sync_unknown * 1000:.0f} ms ({sync_unknown_calls}"
            f" calls), on_demand {od_unknown * 1000:.0f} ms ({od_unknown_calls} calls)"
        )


if __name__ == "__main__":
    main()
