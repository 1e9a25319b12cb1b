"""A request body without a Content-Length (chunked) is read here, up to the limit, before
Flask sees it: Werkzeug would silently cut it at the limit (and the app would answer "bad
JSON"), where the right answer is 413, the same as for a declared length over the limit."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from gateway.errors import PayloadTooLarge

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_TOO_LARGE = orjson.dumps(PayloadTooLarge().to_dict())


class ChunkedBodyLimit:
    def __init__(self, app: WsgiApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if (
            environ.get("CONTENT_LENGTH")
            or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        ):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(self.limit + 1)
        if len(body) > self.limit:
            start_response(
                "413 Request Entity Too Large",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(_TOO_LARGE))),
                    ("Connection", "close"),
                ],
            )
            return [_TOO_LARGE]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)
