"""gunicorn access log as one JSON object a line. The query string is left out on purpose:
it can carry tokens, JWTs and return URLs."""

from __future__ import annotations

import json
import time
from typing import Any

from gunicorn.glogging import Logger


class JsonAccessLogger(Logger):  # type: ignore[misc]
    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not getattr(self, "access_log_enabled", bool(self.cfg.accesslog)):
            return
        headers = {str(k).lower(): v for k, v in resp.headers}
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "logger": "gateway.access",
            "remote": environ.get("REMOTE_ADDR", ""),
            "method": environ.get("REQUEST_METHOD", ""),
            "path": environ.get("PATH_INFO", ""),
            "status": resp.status_code,
            "bytes": getattr(resp, "sent", 0),
            "ms": round(request_time.total_seconds() * 1000, 2),
            "request_id": headers.get("x-request-id", ""),
            "user_agent": environ.get("HTTP_USER_AGENT", "")[:200],
        }
        self.access_log.info(json.dumps(entry, separators=(",", ":")))
