"""granian, ``gateway serve --server granian``: HTTP parsed in Rust on an event loop,
the app on a bounded thread pool behind ``bridge.RsgiBridge`` (bodies read before a thread
is taken). Measured against gunicorn in ``bench/bench_servers.py``."""

from __future__ import annotations

import os
from typing import Any

from gateway.serve.counts import worker_counts

HEADER_READ_TIMEOUT_MS = 10_000  # a client that has not sent its headers by then is dropped


def _log_config() -> dict[str, Any]:
    """granian's own log lines as the gateway's JSON lines."""
    json_handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stdout",
    }
    return {
        "formatters": {"json": {"()": "gateway.logs.JsonFormatter"}},
        "handlers": {"console": json_handler, "access": json_handler},
        "loggers": {
            "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def rsgi_app() -> Any:
    """The factory each granian worker calls: the gateway app from $GATEWAY_CONFIG, bridged."""
    from gateway import create_app
    from gateway.loader import load_settings
    from gateway.serve.bridge import RsgiBridge

    threads = int(os.environ.get("GATEWAY_THREADS") or 8)
    return RsgiBridge(create_app(load_settings()), threads=threads)


def run_granian(config_file: str, host: str, port: int, shared_store: bool) -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    counts = worker_counts(shared_store)
    os.environ["GATEWAY_CONFIG"] = config_file
    os.environ["GATEWAY_THREADS"] = str(counts.threads)
    Granian(
        "gateway.serve.granian_server:rsgi_app",
        address=host,
        port=port,
        interface=Interfaces.RSGI,
        factory=True,
        workers=counts.workers,
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_MS),
        websockets=False,
        log_dictconfig=_log_config(),
        log_access=False,  # the bridge writes the gateway's own access lines
        respawn_failed_workers=True,
    ).serve()
