"""Every request body is read here, whole, before the app sees it:

* more than the limit is 413, declared (Content-Length) or not (chunked). Werkzeug would cut
  a chunked body at the limit silently, and the app would answer "bad JSON";
* under gevent (gunicorn's worker), a body not complete within ``BODY_TIMEOUT`` seconds is
  408 and the connection is closed: a client trickling its body holds a greenlet for at most
  that long. (gunicorn already gives a client ``keepalive`` seconds to send its headers.)
* a refused body is still read and thrown away, up to ``DRAIN_LIMIT`` bytes and within
  ``BODY_TIMEOUT``, *after* the answer has been sent (as nginx's lingering close does): a
  socket closed with unread data in it is reset, and a client still sending would see the
  reset instead of its 413.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from gateway.errors import (
    BadRequest,
    GatewayError,
    PayloadTooLarge,
    error_json,
    json_error_headers,
    status_line,
)
from gateway.web.fastpath import WsgiApp

BODY_TIMEOUT = 10.0  # seconds for a whole request body
DRAIN_LIMIT = 16 * 1024 * 1024  # bytes of a refused body read and discarded before closing
DRAIN_CHUNK = 64 * 1024


class RequestTimeout(GatewayError, status=408, code="request_timeout"):
    """The request body was not sent in time."""


def _deadline() -> Any:
    """A gevent.Timeout when this process runs on gevent, else None (a blocking read is
    bounded by the server's socket timeout instead)."""
    try:
        from gevent import Timeout, monkey
    except ImportError:
        return None
    return Timeout if monkey.is_module_patched("socket") else None


class RequestBodies:
    def __init__(self, app: WsgiApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._timeout = _deadline()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        declared = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not declared and not chunked:
            return self.app(environ, start_response)
        stream = environ["wsgi.input"]
        try:
            if declared and not declared.isdigit():
                raise BadRequest(
                    "Content-Length must be a whole number.", code="invalid_content_length"
                )
            if declared and int(declared) > self.limit:
                raise PayloadTooLarge()
            body = self._read(stream, int(declared) if declared else None)
        except PayloadTooLarge as error:
            unread = int(declared) if declared else DRAIN_LIMIT
            return _ThenDrain(_refuse(start_response, error), stream, unread, self._timeout)
        except GatewayError as error:
            return _refuse(start_response, error)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)

    def _read(self, stream: Any, length: int | None) -> bytes:
        if self._timeout is None:
            return self._read_all(stream, length)
        with self._timeout(BODY_TIMEOUT, RequestTimeout()):
            return self._read_all(stream, length)

    def _read_all(self, stream: Any, length: int | None) -> bytes:
        want = self.limit + 1 if length is None else length
        chunks: list[bytes] = []
        got = 0
        while got < want:
            chunk = stream.read(want - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > self.limit:
            raise PayloadTooLarge()
        return b"".join(chunks)


def _refuse(start_response: Callable[..., Any], error: GatewayError) -> list[bytes]:
    body = error_json(error)
    headers = json_error_headers(error, body)
    headers.append(("Connection", "close"))  # the rest of this body is not worth reading
    start_response(status_line(error.status), headers)
    return [body]


class _ThenDrain:
    """The refusal's body; when the server is done sending it, the rest of the request body
    is read and discarded (bounded in bytes and time), so that closing the connection then
    does not reset it under the client (WSGI servers call ``close`` after the last write)."""

    def __init__(self, body: list[bytes], stream: Any, unread: int, timeout: Any) -> None:
        self._body = body
        self._stream = stream
        self._unread = unread
        self._timeout = timeout

    def __iter__(self) -> Any:
        return iter(self._body)

    def close(self) -> None:
        if self._unread > DRAIN_LIMIT:
            return  # too much to be worth reading: the client may see a reset
        try:
            if self._timeout is None:
                self._drain()
            else:
                with self._timeout(BODY_TIMEOUT, False):  # False: give up quietly
                    self._drain()
        except Exception:  # the answer is out; a client gone away just ends the drain
            return

    def _drain(self) -> None:
        left = DRAIN_LIMIT
        while left > 0:
            chunk = self._stream.read(min(DRAIN_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
