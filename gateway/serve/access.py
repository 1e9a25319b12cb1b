"""One JSON access line per request, whichever server runs the app, through the gateway's
own log queue (so no request waits on a write). The query string is left out on purpose: it
can carry tokens, JWTs and return URLs; so is a pingback URL's key (``/pingback/<site>/***``)."""

from __future__ import annotations

import logging
import re

_PINGBACK_KEY = re.compile(r"^(/pingback/[^/]+/)[^/]+")
access_log = logging.getLogger("gateway.access")


def log_access(
    *,
    remote: str,
    method: str,
    path: str,
    status: int,
    size: int,
    seconds: float,
    request_id: str,
    user_agent: str,
) -> None:
    access_log.info(
        "access",
        extra={
            "remote": remote,
            "method": method,
            "path": _PINGBACK_KEY.sub(r"\1***", path),
            "status": status,
            "bytes": size,
            "ms": round(seconds * 1000, 2),
            "request_id": request_id,
            "user_agent": user_agent[:200],
        },
    )
