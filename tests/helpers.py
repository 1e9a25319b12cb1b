"""Shared test helpers: live loopback servers and settings built for them."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from gateway.devsite.catalog import DEMO_READ, DEMO_SUPER
from gateway.settings import Settings, parse_settings

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
    import socket

    with socket.socket() as sock:
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
        return {p.photo_id: p for p in self.app.config["DEVSITE_OPTIONS"].photos}


def site_table(
    url: str, creds: tuple[str, str, str, str] = DEMO_SUPER, **extra: Any
) -> dict[str, Any]:
    key, secret, token, token_secret = creds
    return {
        "url": url,
        "consumer_key": key,
        "consumer_secret": secret,
        "access_token": token,
        "access_token_secret": token_secret,
        **extra,
    }


def make_settings(sites: dict[str, dict[str, Any]], **sections: Any) -> Settings:
    gateway = {
        "public_url": "http://127.0.0.1:8000",
        "secret_key": TEST_SECRET,
        "upstream_connect_timeout": 1.0,
        "upstream_read_timeout": 1.5,
        **sections.pop("gateway", {}),
    }
    return parse_settings({"gateway": gateway, "sites": sites, **sections}, env={})


__all__ = ["DEMO_READ", "DEMO_SUPER", "Devsite", "LiveServer", "make_settings", "site_table"]
