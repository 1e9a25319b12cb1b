"""Live reload: the configuration file read again while the gateway serves.

``SIGHUP`` to ``gateway serve`` (or to gunicorn run with ``gunicorn.conf.py``) no longer
restarts the workers, which would drop the in-process store's sessions, revocations and
single-use markers: the master passes the signal on, and each worker reloads itself. With
``[gateway] watch_config = true`` each worker also notices a changed file by itself (a mounted
Kubernetes ConfigMap). A reload reads and validates the file first; a broken one is refused
(its problems in the log, ``gateway_config_reloads_total{outcome="refused"}``) and the last
good configuration goes on serving. A good one builds a new runtime beside the old one on the
same store and swaps it: requests in flight finish on the runtime they started with (web
pins it per request), the old one lets go of its threads and connections a little later.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from flask import Flask
from prometheus_client import Counter

from gateway.loader import load_settings
from gateway.logs import configure_logging
from gateway.runtime import GatewayRuntime
from gateway.settings import ConfigError

log = logging.getLogger("gateway.reload")

RELOADS = Counter("gateway_config_reloads_total", "Configuration reloads by outcome", ["outcome"])
RETIRE_AFTER = 30.0  # seconds the replaced runtime stays open for requests still using it
WATCH_EVERY = 2.0  # seconds between looks at the file with watch_config


class LiveReload:
    """Swaps one app's runtime for one built from the config file again."""

    def __init__(self, app: Flask, path: str) -> None:
        self._app = app
        self._path = path
        self._lock = threading.Lock()
        self._digest = _digest(path)

    @property
    def runtime(self) -> GatewayRuntime:
        found: GatewayRuntime = self._app.extensions["gateway.runtime"]
        return found

    def reload(self, why: str) -> bool:
        """Read, validate and swap; False (and the old one keeps serving) when refused."""
        with self._lock:
            self._digest = _digest(self._path)
            try:
                settings = load_settings(self._path)
                new = self.runtime.successor(settings)
            except ConfigError as exc:
                return _refused(why, exc.problems)
            except (ValueError, OSError) as exc:
                return _refused(why, [str(exc)])
            old = self.runtime
            new.start()
            self._app.extensions["gateway.runtime"] = new
            configure_logging(settings.gateway.log_level)
            retire = threading.Timer(RETIRE_AFTER, old.close)
            retire.daemon = True
            retire.start()
        RELOADS.labels("ok").inc()
        log.info(
            "configuration reloaded",
            extra={"why": why, "sites": sorted(settings.sites), "file": self._path},
        )
        return True

    def changed(self) -> bool:
        return _digest(self._path) != self._digest

    def run(self, wake: threading.Event) -> None:
        """For the life of the process: reload when woken (SIGHUP) and, while the serving
        configuration says ``watch_config``, whenever the file changes."""
        while True:
            woken = wake.wait(WATCH_EVERY)
            wake.clear()
            why = "SIGHUP" if woken else ""
            if not woken and self.runtime.settings.gateway.watch_config and self.changed():
                why = "the file changed"
            if not why:
                continue
            try:
                self.reload(why)
            except Exception as exc:  # never lose the reloader: the next signal tries again
                # The type only: a driver's message may carry a URL with its password.
                _refused(why, [f"the new runtime could not be built ({type(exc).__name__})"])


def _refused(why: str, problems: list[str]) -> bool:
    RELOADS.labels("refused").inc()
    log.error(
        "configuration reload refused; the last good configuration keeps serving",
        extra={"why": why, "problems": problems},
    )
    return False


def _digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def install(app: Flask, path: str) -> LiveReload:
    """Reload on SIGHUP in this process (a gunicorn worker), and on file changes while the
    configuration asks for it."""
    live = LiveReload(app, path)
    app.extensions["gateway.reload"] = live
    wake = threading.Event()

    def on_hup(signum: int, frame: Any) -> None:
        wake.set()  # only this in a signal handler (gevent's loop callback may not block)

    threading.Thread(target=live.run, args=(wake,), name="config-reload", daemon=True).start()
    signal.signal(signal.SIGHUP, on_hup)
    return live
