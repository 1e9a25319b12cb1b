"""The one way the 23 client and the bearer exchange reach 23 over HTTP: a request with
timeouts and no redirects, its body read up to a cap, and every failure as a gateway
UpstreamError (``timeout``, or unavailable with a short cause: ``dns``, ``refused``, ``tls``...).
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import requests

from gateway import tracing
from gateway.errors import UpstreamBadResponse, UpstreamTimeout, UpstreamUnavailable

MAX_BODY_BYTES = 4 * 1024 * 1024


def send(session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    """``session.request`` with the body already read (``response.content``), capped."""
    kwargs["headers"] = tracing.inject(dict(kwargs.get("headers") or {}))  # traceparent
    try:
        response = session.request(method, url, stream=True, allow_redirects=False, **kwargs)
        with response:
            response._content = read_capped(response)
    except requests.Timeout:
        raise UpstreamTimeout(cause="timeout") from None
    except requests.RequestException as exc:  # refused, reset, TLS failure, broken chunking
        raise UpstreamUnavailable(cause=failure_cause(exc)) from None
    return response


def read_capped(response: requests.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise UpstreamBadResponse("The video site's answer was too large.", cause="too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def failure_cause(exc: BaseException) -> str:
    """A short class for a failed connection: ``dns``, ``refused``, ``tls``, ``reset``..."""
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:  # walk requests -> urllib3 -> socket
        seen.add(id(node))
        if isinstance(node, requests.exceptions.SSLError | ssl.SSLError):
            return "tls"
        if isinstance(node, socket.gaierror) or "NameResolution" in type(node).__name__:
            return "dns"
        if isinstance(node, ConnectionRefusedError):
            return "refused"
        if isinstance(node, ConnectionResetError):
            return "reset"
        if isinstance(node, requests.exceptions.ChunkedEncodingError):
            return "broken_body"
        nxt = node.__cause__ or node.__context__
        if nxt is None and node.args and isinstance(node.args[0], BaseException):
            nxt = node.args[0]
        if nxt is None:
            reason = getattr(node, "reason", None)
            nxt = reason if isinstance(reason, BaseException) else None
        node = nxt
    return "connection"
