"""Structured JSON logs with the current request id, and the audit trail."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any, TextIO

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

audit_log = logging.getLogger("gateway.audit")

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is logged.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Send every ``gateway.*`` log to stdout as one JSON object a line (idempotent).
    The audit trail is always kept, whatever the level."""
    root = logging.getLogger("gateway")
    root.setLevel(level.upper())
    audit_log.setLevel(logging.INFO)
    if not any(getattr(h, "_gateway_json", False) for h in root.handlers):
        handler = logging.StreamHandler(stream or sys.stdout)
        handler.setFormatter(JsonFormatter())
        handler._gateway_json = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False


def audit(event: str, **fields: Any) -> None:
    """One audit line: who got what (never a token or secret: callers pass only safe fields)."""
    audit_log.info(event, extra={"audit": event, **fields})
