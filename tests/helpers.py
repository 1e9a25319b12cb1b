"""Shared test helpers: live loopback servers and settings built for them."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from gateway.devsite.catalog import DEMO_READ, DEMO_SUPER
from gateway.loader import parse_settings
from gateway.settings import Settings, SiteSettings
from tests.processes import end, spawn

TEST_SECRET = "test-secret-key-0123456789abcdef"


class LiveServer:
    """A real threaded HTTP server on 127.0.0.1 with a free port."""

    def __init__(self, app: Flask, port: int = 0) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A free port below the kernel's ephemeral range (32768+ here), so that no outgoing
    connection of another process takes it between this choice and its server's bind."""
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 32000)  # noqa: S311 - a port, not a secret
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # a crowded range: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Devsite(LiveServer):
    """The emulated 23 site, with its test controls."""

    def post_json(self, path: str, body: dict[str, Any]) -> None:
        req = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(req, timeout=5).read()

    def mode(self, mode: str, seconds: float = 3.0) -> None:
        self.post_json("/_devsite/mode", {"mode": mode, "seconds": seconds})

    def reset(self) -> None:
        self.post_json("/_devsite/reset", {})

    def calls(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.url + "/_devsite/calls", timeout=5) as resp:
            calls: list[dict[str, Any]] = json.load(resp)
            return calls

    @property
    def state(self) -> Any:
        return self.app.config["DEVSITE_STATE"]

    @property
    def photos(self) -> dict[int, Any]:
        photos: dict[int, Any] = self.app.extensions["devsite"].photos
        return photos

    def put_photo(self, photo_id: int, **changes: Any) -> None:
        """Add or change a video on the emulated site (``new_token=True`` re-tokens it)."""
        self.post_json("/_devsite/photos", {"photo_id": photo_id, **changes})

    def delete_photo(self, photo_id: int) -> None:
        req = urllib.request.Request(f"{self.url}/_devsite/photos/{photo_id}", method="DELETE")
        urllib.request.urlopen(req, timeout=5).read()

    def photo_list_pages(self) -> list[int]:
        """The pages of the full listing (no photo_id) fetched since the last reset, in order."""
        return [
            int(c["page"])
            for c in self.calls()
            if c.get("method") == "photo/list" and "photo_id" not in c["params"] and "page" in c
        ]

    @classmethod
    def for_gateway(cls, gateway: str, site: str, **options: Any) -> Devsite:
        """An emulated 23 site whose remote login URL is ``site``'s sign-in on ``gateway``."""
        from gateway.devsite import DevsiteOptions, create_devsite

        login = f"{gateway}/sso/{site}/login"
        return cls(create_devsite(DevsiteOptions(remote_login_url=login, **options)))


def site_table(
    url: str, creds: tuple[str, str, str, str] = DEMO_SUPER, **extra: Any
) -> dict[str, Any]:
    """A site's table for the emulated site. Tests look videos up on demand unless they ask
    for ``catalogue="sync"`` (a background sync would add calls to their call counts)."""
    key, secret, token, token_secret = creds
    return {
        "url": url,
        "consumer_key": key,
        "consumer_secret": secret,
        "access_token": token,
        "access_token_secret": token_secret,
        "catalogue": "on_demand",
        **extra,
    }


def site_settings(
    name: str,
    url: str,
    consumer_key: str = "k",
    consumer_secret: str = "s",
    access_token: str = "t",
    access_token_secret: str = "ts",
    **extra: Any,
) -> SiteSettings:
    """One site's settings, validated as the config file's table would be."""
    table = {
        "url": url,
        "consumer_key": consumer_key,
        "consumer_secret": consumer_secret,
        "access_token": access_token,
        "access_token_secret": access_token_secret,
        **extra,
    }
    return SiteSettings.model_validate(table).named(name)


def make_settings(sites: dict[str, dict[str, Any]], **sections: Any) -> Settings:
    gateway = {
        "public_url": "http://127.0.0.1:8000",
        "secret_key": TEST_SECRET,
        "upstream_connect_timeout": 1.0,
        "upstream_read_timeout": 1.5,
        **sections.pop("gateway", {}),
    }
    return parse_settings({"gateway": gateway, "sites": sites, **sections}, env={})


__all__ = [
    "DEMO_READ",
    "DEMO_SUPER",
    "Devsite",
    "LiveServer",
    "make_settings",
    "site_settings",
    "site_table",
]


class ServedGateway:
    """``gateway serve`` (or gunicorn with gunicorn.conf.py) as a real process on a free port,
    with a config file written for the test; its output is kept for the test to read."""

    def __init__(
        self,
        config_text: str,
        tmp: Any,
        *,
        server: str = "gunicorn",
        env: dict[str, str] | None = None,
    ) -> None:
        import os
        import subprocess
        import sys
        from pathlib import Path

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = Path(tmp) / "gateway.toml"
        config.write_text(config_text)
        self.log_path = Path(tmp) / f"{server}.log"
        bin_dir = Path(sys.executable).parent
        full_env = {**os.environ, "GATEWAY_CONFIG": str(config), **(env or {})}
        if server == "gunicorn-conf":
            full_env["GATEWAY_BIND"] = f"127.0.0.1:{self.port}"
            command = [str(bin_dir / "gunicorn"), "app:app", "-c", "gunicorn.conf.py"]
        else:
            command = [str(bin_dir / "gateway"), "serve", "--host", "127.0.0.1"]
            command += ["--port", str(self.port)]
        self._log = self.log_path.open("w")
        root = Path(__file__).resolve().parent.parent
        self.proc = spawn(
            command, cwd=root, env=full_env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait()

    def _wait(self) -> None:
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited: {self.output()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the gateway did not start: {self.output()[-2000:]}")

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        end(self.proc, timeout=15)
        self._log.close()


def forget_state(app: Any) -> None:
    """A fresh start for a long-lived test gateway: its store and every first-level cache."""
    from gateway.store import MemoryStore

    services = app.extensions["gateway.runtime"]
    if isinstance(services.store, MemoryStore):
        services.store.clear()  # a Redis store is flushed by whoever owns the database
    for cache in services.caches.values():
        cache.forget_all()


def wait_for_a_fresh_minute(seconds_needed: float) -> None:
    """Budgets that refill at each wall-clock minute (cold lookups) make a test flaky when it
    straddles a minute boundary: start it early enough in a minute to finish within it."""
    left = 60 - time.time() % 60
    if left < seconds_needed:
        time.sleep(left + 0.05)


def wait_for_a_fresh_second(seconds_needed: float = 0.5) -> None:
    """The same for limits counted per second (pingbacks, API keys' rate_limit)."""
    left = 1 - time.time() % 1
    if left < seconds_needed:
        time.sleep(left + 0.01)


@contextlib.contextmanager
def records_of(logger: str) -> Iterator[list[logging.LogRecord]]:
    """The records a gateway logger emits while the block runs, read from the logger itself:
    the gateway's loggers do not propagate to pytest's root handler once the JSON writer is
    set up, so ``caplog`` sees them only by test order."""
    seen: list[logging.LogRecord] = []
    catcher = logging.Handler()
    catcher.emit = seen.append  # type: ignore[method-assign]
    target = logging.getLogger(logger)
    target.addHandler(catcher)
    try:
        yield seen
    finally:
        target.removeHandler(catcher)


def first_sync(catalogue: Any, seconds: float = 60) -> None:
    """Wait for a catalogue's start-up sync (its first version)."""
    deadline = time.monotonic() + seconds
    while not catalogue.state(fresh=True).version:
        assert time.monotonic() < deadline, "the start-up sync did not complete"
        time.sleep(0.05)


@contextlib.contextmanager
def serving(settings: Settings, port: int, devsite: Devsite, synced: str = "") -> Iterator[Flask]:
    """The gateway for ``settings`` behind a real server on ``port``, once ``synced``'s
    catalogue (if named) has its first version; afterwards its runtime, the server and the
    emulated site are stopped."""
    from gateway import create_app

    app = create_app(settings)
    server = LiveServer(app, port)
    runtime = app.extensions["gateway.runtime"]
    try:
        if synced:
            first_sync(runtime.catalogues[synced])
        yield app
    finally:
        runtime.close()
        server.stop()
        devsite.stop()


ROOT = Path(__file__).resolve().parent.parent
GATEWAY_CLI = str(Path(sys.executable).parent / "gateway")


def gateway_cli(
    *args: str, env: dict[str, str] | None = None, only_env: bool = False, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``gateway <args>`` as an operator runs it, from the repository's root: ``env`` on top
    of this process's environment, or (``only_env``) instead of it."""
    environment = (env or {}) if only_env else {**os.environ, **(env or {})}
    return subprocess.run(
        [GATEWAY_CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=environment,
        check=False,
    )
