"""Which HTTP server should run the gateway? All of them measured in one run on this machine.

For gunicorn with gthread workers and gunicorn with gevent workers, each with one worker
process as the in-process store requires:

* a bare Flask JSON view (the server's own ceiling),
* the gateway's /healthz, a mint of 1 cached id, a mint of 100 cached ids,
* /healthz while 64 clients trickle their headers a byte a second.

Printed: req/s per server, and the ratios the gateway's goals are stated in:
mint ÷ bare Flask on the same server (goal >= 0.8), healthz with 64 slow clients ÷ without
(goal >= 0.5).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import common

SERVERS = ("gunicorn-gthread", "gunicorn-gevent")
ROUNDS = 3


def gateway_command(server: str, port: int) -> tuple[list[str], dict[str, str]]:
    env = {"GATEWAY_BIND": f"127.0.0.1:{port}", "GATEWAY_WORKER_CLASS": server.split("-")[1]}
    return [str(common.BIN / "gunicorn"), "app:app", "-c", "gunicorn.conf.py"], env


def bare_command(server: str, port: int, folder: Path) -> list[str]:
    worker = server.split("-")[1]
    empty = folder / "bare.conf.py"  # not the repository's gunicorn.conf.py
    empty.write_text("")
    return [
        str(common.BIN / "gunicorn"),
        "bench.bare_app:app",
        "-k",
        worker,
        "-w",
        "1",
        "--threads",
        "8",
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "-c",
        str(empty),
    ]


def measure(server: str, folder: Path, devsite_port: int) -> dict[str, float]:
    """Both apps run side by side and are measured in turns (best of ``ROUNDS`` each), so a
    noisy moment on the machine does not land on one side of a ratio only."""
    figures: dict[str, float] = {}
    bare_port, port = common.free_port(), common.free_port()
    config = common.gateway_config(folder, port, devsite_port)
    command, env = gateway_command(server, port)
    log = folder / f"{server}.log"
    with (
        common.process(bare_command(server, bare_port, folder)),
        common.process(command, log, {**env, "GATEWAY_CONFIG": str(config)}),
    ):
        bare, base = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{port}"
        common.wait(f"{bare}/healthz")
        common.wait(f"{base}/healthz")
        batch_ids = list(range(2001, 2101))
        common.mint_once(base, batch_ids)
        common.mint_once(base, [1001])
        url = f"{base}/api/v1/sites/demo/tokens"
        single = common.post_script(folder, "single", {"photo_ids": [1001]})
        figures["bare"] = figures["mint"] = 0.0
        for _ in range(ROUNDS):
            figures["bare"] = max(figures["bare"], common.wrk(f"{bare}/healthz"))
            figures["mint"] = max(figures["mint"], common.wrk(url, single))
        figures["healthz"] = common.wrk(f"{base}/healthz")
        figures["batch"] = (
            common.wrk(url, common.post_script(folder, "batch", {"photo_ids": batch_ids})) * 100
        )
        figures["slow"] = common.healthz_under_slow_clients(base, port)
    return figures


def main() -> None:
    common.need_wrk()
    folder = Path(tempfile.mkdtemp(prefix="gw-bench-servers-"))
    results = {}
    with common.devsite() as devsite_port:
        for server in SERVERS:
            results[server] = measure(server, folder, devsite_port)
    print(
        "server              bare flask   healthz  mint 1 id  mint 100 (tokens/s)  healthz+64 slow"
    )
    for server, f in results.items():
        print(
            f"{server:<18} {f['bare']:11,.0f} {f['healthz']:9,.0f} {f['mint']:10,.0f}"
            f" {f['batch']:20,.0f} {f['slow']:16,.0f}"
        )
    print()
    for server, f in results.items():
        print(
            f"{server:<18} mint / bare flask = {f['mint'] / f['bare']:.2f} (goal >= 0.8)   "
            f"healthz with 64 slow clients / without = {f['slow'] / f['healthz']:.2f} (goal >= 0.5)"
        )
    best = max(
        results,
        key=lambda s: (results[s]["slow"] / results[s]["healthz"] >= 0.5, results[s]["mint"]),
    )
    print(f"\nfastest server that survives slow clients: {best}")
    print("`gateway serve` runs: gunicorn-gevent")


if __name__ == "__main__":
    main()
