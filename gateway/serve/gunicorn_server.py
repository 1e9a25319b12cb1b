"""gunicorn, as the design card names it: ``gunicorn app:app -c gunicorn.conf.py`` and
``gateway serve --server gunicorn``.

Its worker class is gevent: each connection is a greenlet, so clients that trickle their
headers or bodies hold nothing that others need (gthread ties a thread to every request
still being read; eight slow clients stop it). gthread is the fallback without gevent.
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn.glogging import Logger

from gateway.serve.access import log_access
from gateway.serve.counts import Counts, worker_class, worker_counts


def gunicorn_options(shared_store: bool, bind: str = "0.0.0.0:8000") -> dict[str, Any]:
    """Options for one logical gateway (see ``worker_counts``). ``GATEWAY_WORKER_CLASS``
    picks another worker class (``gthread``), for comparison."""
    counts: Counts = worker_counts(shared_store)
    options: dict[str, Any] = {
        "bind": bind,
        "workers": counts.workers,
        "worker_class": worker_class(),
        "threads": counts.threads,
        "worker_connections": 1000,
        "timeout": 30,  # a worker silent this long is restarted; 23 calls time out long before
        "graceful_timeout": 20,
        "keepalive": 5,
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "accesslog": "-",
        "errorlog": "-",
        "logger_class": "gateway.serve.gunicorn_server.JsonAccessLogger",
        "proc_name": "23-gateway",
    }
    if _has_setting("control_socket_disable"):
        # gunicorn >= 24 opens a control socket under $HOME by default; a gateway needs none,
        # and a container's home is often read-only.
        options["control_socket_disable"] = True
    if counts.workers > 1:
        options["child_exit"] = _mark_worker_dead
    options["when_ready"] = _hup_reloads_workers_in_place
    options["post_worker_init"] = _reload_on_hup
    return options


def _hup_reloads_workers_in_place(server: Any) -> None:
    """gunicorn's own SIGHUP restarts every worker, and with it the in-process store (its
    sessions, revocations, markers). Instead, each worker reloads itself (live_reload)."""
    import signal

    def forward() -> None:
        server.log.info("SIGHUP: each worker reloads the configuration in place")
        for pid in list(server.WORKERS):
            os.kill(pid, signal.SIGHUP)

    server.handle_hup = forward


def _reload_on_hup(worker: Any) -> None:
    from gateway.live_reload import install

    app = worker.wsgi
    install(app, app.extensions["gateway.runtime"].settings.source)


def _has_setting(name: str) -> bool:
    from gunicorn.config import KNOWN_SETTINGS

    return any(setting.name == name for setting in KNOWN_SETTINGS)


def _mark_worker_dead(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


class JsonAccessLogger(Logger):  # type: ignore[misc]
    """gunicorn's logs as the gateway's JSON lines: access lines and its own error log."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        from gateway.logs import JsonFormatter

        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not getattr(self, "access_log_enabled", bool(self.cfg.accesslog)):
            return
        log_access(
            remote=environ.get("REMOTE_ADDR", ""),
            method=environ.get("REQUEST_METHOD", ""),
            path=environ.get("PATH_INFO", ""),
            status=resp.status_code,
            size=getattr(resp, "sent", 0),
            seconds=request_time.total_seconds(),
            request_id=next((v for k, v in resp.headers if k.lower() == "x-request-id"), ""),
            user_agent=environ.get("HTTP_USER_AGENT", ""),
        )


def patch_for_gevent() -> None:
    """gevent must patch the standard library before anything imports ssl or sockets (the
    settings pull in requests); gunicorn's own patch in the worker would come too late."""
    if worker_class() == "gevent":
        from gevent import monkey

        monkey.patch_all()


def run_gunicorn(config_file: str, bind: str, shared_store: bool) -> None:
    from gunicorn.app.base import BaseApplication

    from gateway.loader import load_settings

    options = gunicorn_options(shared_store, bind)

    class GatewayServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from gateway import create_app

            return create_app(load_settings(config_file))

    os.environ["GATEWAY_CONFIG"] = config_file
    GatewayServer().run()
