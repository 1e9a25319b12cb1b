"""The emulated site's request log as the gateway's JSON lines (werkzeug's own is coloured text)."""

from __future__ import annotations

import logging
from typing import Any

from werkzeug.serving import WSGIRequestHandler

log = logging.getLogger("gateway.devsite")


class JsonRequestHandler(WSGIRequestHandler):
    """One JSON line per request: method, path, status and size; no query string, since the
    emulated API's queries carry OAuth signatures and session tokens."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = getattr(self, "path", "")
        log.info(
            "request",
            extra={
                "method": getattr(self, "command", ""),
                "path": path.split("?", 1)[0],
                "status": int(code) if str(code).isdigit() else str(code),
                "bytes": int(size) if str(size).isdigit() else None,
                "client": self.address_string(),
            },
        )

    def log_error(self, format: str, *args: Any) -> None:
        log.warning(format % args if args else format, extra={"client": self.address_string()})

    def log_message(self, format: str, *args: Any) -> None:
        log.info(format % args if args else format, extra={"client": self.address_string()})
