"""gunicorn access log as one JSON object a line, through the gateway's own log queue (so no
request thread waits on a write). The query string is left out on purpose: it can carry
tokens, JWTs and return URLs."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger

access_log = logging.getLogger("gateway.access")


class JsonAccessLogger(Logger):  # type: ignore[misc]
    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not getattr(self, "access_log_enabled", bool(self.cfg.accesslog)):
            return
        request_id = next((v for k, v in resp.headers if k.lower() == "x-request-id"), "")
        access_log.info(
            "access",
            extra={
                "remote": environ.get("REMOTE_ADDR", ""),
                "method": environ.get("REQUEST_METHOD", ""),
                "path": environ.get("PATH_INFO", ""),
                "status": resp.status_code,
                "bytes": getattr(resp, "sent", 0),
                "ms": round(request_time.total_seconds() * 1000, 2),
                "request_id": request_id,
                "user_agent": environ.get("HTTP_USER_AGENT", "")[:200],
            },
        )
