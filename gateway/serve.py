"""Production serving with gunicorn: the one place that decides workers, threads and timeouts.

``gateway serve`` and ``gunicorn app:app -c gunicorn.conf.py`` both use these options.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

log = logging.getLogger("gateway.serve")


def gunicorn_options(shared_store: bool, bind: str = "0.0.0.0:8000") -> dict[str, Any]:
    """Options for one logical gateway.

    With the in-process store, single-use state and caches live in one process, so there is
    exactly one worker process with many threads. With a shared (Redis) store, workers scale
    with the CPUs. ``GATEWAY_WORKERS`` and ``GATEWAY_THREADS`` override the counts.
    """
    cpus = os.cpu_count() or 1
    workers = int(os.environ.get("GATEWAY_WORKERS") or (2 * cpus + 1 if shared_store else 1))
    if workers > 1 and not shared_store:
        log.warning('several workers need [store] url = "redis://..."; running one worker')
        workers = 1
    threads = int(os.environ.get("GATEWAY_THREADS") or max(8, 4 * cpus))
    options: dict[str, Any] = {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 30,  # a worker silent this long is restarted; 23 calls time out long before
        "graceful_timeout": 20,
        "keepalive": 5,
        "accesslog": "-",
        "errorlog": "-",
        "logger_class": "gateway.accesslog.JsonAccessLogger",
        "proc_name": "23-gateway",
    }
    if _has_setting("control_socket_disable"):
        # gunicorn >= 24 opens a control socket under $HOME by default; a gateway needs none,
        # and a container's home is often read-only.
        options["control_socket_disable"] = True
    if workers > 1:
        # prometheus-client aggregates the workers' metrics through files in this folder.
        # It must be set before any worker imports prometheus_client.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="gw-metrics-"))
        options["child_exit"] = _mark_worker_dead
    return options


def _has_setting(name: str) -> bool:
    from gunicorn.config import KNOWN_SETTINGS

    return any(setting.name == name for setting in KNOWN_SETTINGS)


def _mark_worker_dead(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def run(config_file: str, bind: str) -> None:
    """Run gunicorn in this process with the gateway app (``gateway serve``)."""
    from gunicorn.app.base import BaseApplication

    from gateway.settings import load_settings, load_settings_or_exit

    settings = load_settings_or_exit(config_file)  # fail fast, before gunicorn starts
    os.environ["GATEWAY_CONFIG"] = config_file
    options = gunicorn_options(bool(settings.store.url), bind)

    class GatewayServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from gateway import create_app

            return create_app(load_settings(config_file))

    GatewayServer().run()
