"""Granian's RSGI interface -> the gateway's WSGI app, with the request body read first.

Granian parses requests in Rust on an event loop, so a client that trickles its headers costs
no Python thread (and is cut off after the header read timeout). Its plain WSGI interface
still hands a slow *body* to a blocking thread, which the app then waits on. This bridge
reads the whole body on the event loop first (at most ``MAX_BODY`` bytes, at most
``BODY_TIMEOUT`` seconds), and only then runs the app on a thread of a bounded pool, so no
slow client ever holds a thread that others need. Answers are buffered: the gateway's are
small.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gateway import MAX_BODY
from gateway.errors import BadRequest, GatewayError, PayloadTooLarge, error_json
from gateway.serve.access import log_access
from gateway.web.bodylimit import BODY_TIMEOUT, DRAIN_LIMIT, RequestTimeout

log = logging.getLogger("gateway.serve")

_JSON = [("content-type", "application/json"), ("cache-control", "no-store")]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _split_host(address: str) -> tuple[str, str]:
    host, _, port = address.rpartition(":")
    return (host.strip("[]") or address), port


class RsgiBridge:
    """An RSGI application serving a WSGI app from a thread pool."""

    def __init__(self, app: WsgiApp, threads: int = 8) -> None:
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsgi")

    def __rsgi_del__(self, loop: Any) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return  # no websockets here
        started = time.perf_counter()
        headers = scope.headers
        body = b""
        if "content-length" in headers or "transfer-encoding" in headers:
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or len(length) > 12):
                invalid = BadRequest("Content-Length must be a whole number.")
                return self._answer(proto, scope, started, invalid)
            if length is not None and int(length) > MAX_BODY:
                if int(length) <= DRAIN_LIMIT:  # read and dropped, so closing does not reset
                    with contextlib.suppress(TimeoutError, OverflowError):
                        async with asyncio.timeout(BODY_TIMEOUT):
                            await self._read(proto, keep=0)
                return self._too_large(proto, scope, started)
            try:
                async with asyncio.timeout(BODY_TIMEOUT):  # no extra task, unlike wait_for
                    body = await (proto() if length is not None else self._read(proto))
            except TimeoutError:
                return self._answer(proto, scope, started, RequestTimeout())
            except OverflowError:
                return self._too_large(proto, scope, started)
        loop = asyncio.get_running_loop()
        status, out_headers, out = await loop.run_in_executor(self.pool, self._call, scope, body)
        proto.response_bytes(status, out_headers, out)
        self._log(scope, status, len(out), started, out_headers)

    @staticmethod
    async def _read(proto: Any, keep: int = MAX_BODY) -> bytes:
        """The body, or OverflowError past ``keep`` bytes, raised only once the rest has been
        read and dropped (up to DRAIN_LIMIT): a connection closed with unread data is reset,
        and a client still sending would see the reset instead of its 413."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in proto:
            size += len(chunk)
            if size > DRAIN_LIMIT:
                break
            if size <= keep:
                chunks.append(chunk)
        if size > keep:
            raise OverflowError
        return b"".join(chunks)

    def _too_large(self, proto: Any, scope: Any, started: float) -> None:
        self._answer(proto, scope, started, PayloadTooLarge())

    def _answer(self, proto: Any, scope: Any, started: float, error: GatewayError) -> None:
        body = error_json(error)
        headers = [*_JSON, *error.response_headers().items(), ("connection", "close")]
        proto.response_bytes(error.status, headers, body)
        self._log(scope, error.status, len(body), started, [])

    def _log(
        self, scope: Any, status: int, size: int, started: float, headers: list[tuple[str, str]]
    ) -> None:
        request_id = next((v for k, v in headers if k.lower() == "x-request-id"), "")
        log_access(
            remote=_split_host(scope.client)[0],
            method=scope.method,
            path=scope.path,
            status=status,
            size=size,
            seconds=time.perf_counter() - started,
            request_id=request_id,
            user_agent=scope.headers.get("user-agent", ""),
        )

    def environ(self, scope: Any, body: bytes) -> dict[str, Any]:
        server, port = _split_host(scope.server)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": scope.method,
            "SCRIPT_NAME": "",
            # RSGI gives the path percent-decoded; WSGI wants those bytes as latin-1 (PEP 3333).
            "PATH_INFO": scope.path.encode("utf-8", "surrogateescape").decode("latin-1"),
            "QUERY_STRING": scope.query_string,
            "SERVER_NAME": server,
            "SERVER_PORT": port,
            "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
            "REMOTE_ADDR": _split_host(scope.client)[0],
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in scope.headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ[key] = value
            elif key not in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
                key = "HTTP_" + key
                if key in environ:  # a repeated header: one value, as RFC 9110 allows
                    value = environ[key] + ("; " if key == "HTTP_COOKIE" else ", ") + value
                environ[key] = value
        if "HTTP_HOST" not in environ and scope.authority:
            environ["HTTP_HOST"] = scope.authority
        return environ

    def _call(self, scope: Any, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
            started[:] = [int(status.split(" ", 1)[0]), headers]

        try:
            result = self.app(self.environ(scope, body), start_response)
            try:
                out = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:  # the app handles its own errors; this is the bridge failing
            log.exception("request failed in the server bridge")
            return 500, list(_JSON), error_json(GatewayError())
        return started[0], started[1], out
