"""The visitor's hot path: ``/embed`` (identity from a trusted proxy's headers -> policy ->
access rules -> mint -> 302) against ``/healthz`` on the same server, measured in turns in
one run (best of ``ROUNDS`` each), on ``gateway serve``'s default server (gunicorn with one
gevent worker, as the in-process store requires).

Printed: req/s of each, and ``/embed ÷ /healthz`` (goal >= 0.8).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import BIN, devsite, free_port, gateway_config, need_wrk, process, wait, wrk

ROUNDS = 3


def config(folder: Path, port: int, devsite_port: int) -> Path:
    """The demo site behind a trusted proxy's identity, with an access rule to apply."""
    site = """identity = "proxy"
allow_email_domains = ["example.com"]
catalogue = "on_demand"

[[sites.demo.rules]]
tag = "premium"
allow_email_domains = ["example.com"]

[identity.proxy]
type = "header"
"""
    trusted = 'trusted_proxies = ["127.0.0.1/32"]'
    return gateway_config(folder, port, devsite_port, site_extra=site, gateway_extra=trusted)


def header_script(folder: Path) -> str:
    path = folder / "visitor.lua"
    path.write_text('wrk.headers["X-Forwarded-Email"] = "ada@example.com"\n')
    return str(path)


def main() -> None:
    need_wrk()
    with tempfile.TemporaryDirectory() as tmp, devsite() as devsite_port:
        folder = Path(tmp)
        port = free_port()
        env = {"GATEWAY_CONFIG": str(config(folder, port, devsite_port))}
        command = [str(BIN / "gateway"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        with process(command, folder / "gateway.log", env):
            base = f"http://127.0.0.1:{port}"
            wait(f"{base}/healthz")
            script = header_script(folder)
            embed = f"{base}/embed/demo/1001"
            wrk(embed, script)  # warm: the photo is cached from here on
            healthz = best_embed = 0.0
            for _ in range(ROUNDS):
                healthz = max(healthz, wrk(f"{base}/healthz"))
                best_embed = max(best_embed, wrk(embed, script))
    print(f"/healthz          {healthz:10.0f} req/s")
    print(f"/embed (302)      {best_embed:10.0f} req/s")
    print(f"/embed / /healthz {best_embed / healthz:10.2f}   (goal >= 0.8)")


if __name__ == "__main__":
    main()
