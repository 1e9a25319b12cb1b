"""Structured JSON logs with the current request id, and the audit trail."""

from __future__ import annotations

import atexit
import contextvars
import logging
import logging.handlers
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import orjson

from gateway import tracing

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
# Who else hears each audit line in this request (the console's telemetry); set per request.
audit_sink_var: contextvars.ContextVar[Callable[[str, dict[str, Any]], None] | None] = (
    contextvars.ContextVar("audit_sink", default=None)
)

audit_log = logging.getLogger("gateway.audit")

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is logged.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line. Anything passed as ``extra=`` becomes a field."""

    _second = -1
    _stamp = ""

    def _timestamp(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:  # strftime once a second, not once a line
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in fields.keys() - _STANDARD:
            if not key.startswith("_"):
                entry[key] = fields[key]
        if record.exc_text:
            entry["exc"] = record.exc_text
        elif record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class _StampRequestId(logging.Filter):
    """Copies the request id onto the record in the request's own thread (the writer thread
    has no request context)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id and "request_id" not in record.__dict__:
            record.request_id = request_id
            for key, value in tracing.ids().items():  # a log line leads to its trace
                setattr(record, key, value)
        return True


class _Enqueue(logging.handlers.QueueHandler):
    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # Keep the record's fields for the JSON formatter; only resolve the message and
        # render any traceback now, while the objects are still alive.
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record


class _Writer:
    """The one thread that formats and writes log lines. It takes whatever has queued up
    since its last write and writes it at once: one write and flush per burst, not per line
    (under load a mint's audit line and access line cost one system call between them)."""

    _STOP = None
    _BURST = 1024

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord | None], stream: TextIO):
        self._records = records
        self._stream = stream
        self._formatter = JsonFormatter()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then end (at exit)."""
        self._records.put(self._STOP)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        records, formatter = self._records, self._formatter
        while True:
            record = records.get()
            burst: list[str] = []
            stopping = False
            while record is not None:
                try:
                    burst.append(formatter.format(record) + "\n")
                except Exception:  # one unprintable record must not stop the logs
                    burst.append('{"level":"error","msg":"unformattable log record"}\n')
                if len(burst) >= self._BURST:
                    break
                try:
                    record = records.get_nowait()
                except queue.Empty:
                    break
            else:
                stopping = True
            if burst:
                try:
                    self._stream.write("".join(burst))
                    self._stream.flush()
                except (OSError, ValueError):
                    pass  # stdout closed or full: nothing better to do with a log line
            if stopping:
                return


_listener: _Writer | None = None


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Send every ``gateway.*`` log to stdout as one JSON object a line (idempotent).

    Request threads only enqueue records; one writer thread formats and writes them, so no
    request waits on another's write. The audit trail is kept whatever the level.
    """
    global _listener
    root = logging.getLogger("gateway")
    root.setLevel(level.upper())
    audit_log.setLevel(logging.INFO)
    logging.getLogger("gateway.access").setLevel(logging.INFO)  # on/off is gunicorn's accesslog
    if _listener is not None:
        return
    # The JSON lines carry none of these: skip finding the caller's frame, thread and process
    # names for every record (a measurable share of a mint's audit line).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    records: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
    handler = _Enqueue(records)
    handler.addFilter(_StampRequestId())
    root.addHandler(handler)
    root.propagate = False
    _listener = _Writer(records, stream or sys.stdout)
    _listener.start()
    atexit.register(_listener.stop)  # drains what is queued


def audit(event: str, **fields: Any) -> None:
    """One audit line: who got what (never a token or secret: callers pass only safe fields)."""
    audit_log.info(event, extra={"audit": event, **fields})
    sink = audit_sink_var.get()
    if sink is not None:
        sink(event, fields)
