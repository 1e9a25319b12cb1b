"""Mint endpoint throughput against /healthz and a raw HMAC on the same server, in one run.

Starts the emulated 23 site and `gateway serve` (its default server, one worker, as the
in-process store requires), warms the photo cache, then drives each endpoint with wrk over
loopback:

* mint (1 cached id) req/s / healthz req/s
* batch mint (100 ids) tokens/s / raw HMAC-SHA1 tokens/s on one core (goal >= 0.25)

Only ratios are meaningful: both sides are measured on this machine in this run.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import tempfile
import time
from pathlib import Path

from bench import common


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
    common.need_wrk()
    raw_before = raw_hmac_rate()  # on a quiet machine, before any server runs
    folder = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    with common.devsite() as devsite_port:
        port = common.free_port()
        config = common.gateway_config(folder, port, devsite_port)
        command = [str(common.BIN / "gateway"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        with common.process(command, folder / "gateway.log", {"GATEWAY_CONFIG": str(config)}):
            base = f"http://127.0.0.1:{port}"
            common.wait(f"{base}/healthz")
            batch_ids = list(range(2001, 2101))  # 100 distinct videos
            common.mint_once(base, batch_ids)  # warm the photo cache
            common.mint_once(base, [1001])
            url = f"{base}/api/v1/sites/demo/tokens"
            healthz = common.wrk(f"{base}/healthz")
            mint = common.wrk(
                url, common.post_script(folder, "single", {"photo_ids": [1001], "ttl": 3600})
            )
            batch_rps = common.wrk(
                url, common.post_script(folder, "batch", {"photo_ids": batch_ids})
            )
    raw = max(raw_before, raw_hmac_rate())  # the faster of two: the stricter ratio
    print(f"healthz:               {healthz:10,.0f} req/s")
    print(f"mint, 1 cached id:     {mint:10,.0f} req/s   ratio to healthz {mint / healthz:.2f}")
    print(
        f"batch mint, 100 ids:   {batch_rps * 100:10,.0f} tokens/s ({batch_rps:,.0f} req/s)"
        f"   ratio to raw HMAC-SHA1 {batch_rps * 100 / raw:.2f}  (goal >= 0.25)"
    )
    print(f"raw HMAC-SHA1:         {raw:10,.0f} tokens/s (one core, same run)")


if __name__ == "__main__":
    main()
