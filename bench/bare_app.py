"""A bare Flask JSON view: the yardstick the gateway's endpoints are divided by, on the same
server and worker setup."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")
