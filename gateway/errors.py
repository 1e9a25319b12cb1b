"""The gateway's exception tree: every error a client sees is one (code, status, message).

Instances carry typed context (``retry_after``, an upstream failure's site, method and cause),
never a loose dict of headers: the web layer turns context into headers and log fields.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar

import orjson


class GatewayError(Exception):
    """An error with a stable snake_case code, an HTTP status and a human sentence.

    A subclass says its status and code in its header and, unless it sets ``default_message``
    itself, its docstring is the sentence a client reads when the raise gives none::

        class Gone(GatewayError, status=410, code="gone"):
            \"\"\"This video has been removed.\"\"\"
    """

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "The gateway could not handle this request."

    def __init_subclass__(cls, *, status: int = 0, code: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.status = status or cls.status
        cls.code = code or cls.code
        if "default_message" not in vars(cls) and cls.__doc__:
            cls.default_message = " ".join(cls.__doc__.split())

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code  # type: ignore[misc]  # per-instance override of the class default
        self._headers: dict[str, str] = {}
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}

    def response_headers(self) -> dict[str, str]:
        """HTTP headers this error asks for (``Retry-After``, ``WWW-Authenticate``, ``Allow``)."""
        return self._headers


class BadRequest(GatewayError, status=400, code="bad_request"):
    """The request is malformed."""


class Unauthorized(GatewayError, status=401, code="unauthorized"):
    """Authentication is required."""

    def __init__(
        self, message: str | None = None, *, code: str | None = None, challenge: str = ""
    ) -> None:
        super().__init__(message, code=code)
        if challenge:  # a WWW-Authenticate value, when the caller can answer one
            self._headers["WWW-Authenticate"] = challenge


class Forbidden(GatewayError, status=403, code="forbidden"):
    """You are not allowed to do this."""


class NotFound(GatewayError, status=404, code="not_found"):
    """There is nothing here."""


class MethodNotAllowed(GatewayError, status=405, code="method_not_allowed"):
    """The method is not allowed for the requested URL."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__()
        self._headers["Allow"] = ", ".join(allowed)


class PayloadTooLarge(GatewayError, status=413, code="payload_too_large"):
    """The request body is too large."""


class UnsupportedMediaType(GatewayError, status=415, code="unsupported_media_type"):
    """The request body must be JSON (Content-Type: application/json)."""


class TooManyRequests(GatewayError, status=429, code="rate_limited"):
    """Too many requests; slow down."""

    def __init__(
        self, message: str | None = None, *, code: str | None = None, retry_after: int = 1
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = max(1, retry_after)  # seconds; the Retry-After header says it too
        self._headers["Retry-After"] = str(self.retry_after)


class ServiceUnavailable(GatewayError, status=503, code="unavailable"):
    """This service is unavailable right now. Please try again shortly."""


# Upstream (23 API) failures. Raised only by gateway.twentythree; web code maps them.


class UpstreamError(GatewayError):
    """The 23 site did not give a usable answer.

    ``site``, ``method`` and ``cause`` say which site, which API call and what went wrong
    (``refused``, ``dns``, ``tls``, ``timeout``, ``http_503``, ``bad_response``, a 23 code...),
    so an operator reading one log line knows where to look.
    """

    status = 502
    code = "upstream_error"
    default_message = "The video site did not answer properly."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        site: str = "",
        method: str = "",
        cause: str = "",
    ) -> None:
        super().__init__(message, code=code)
        self.site = site
        self.method = method
        self.cause = cause

    def located(self, site: str, method: str) -> UpstreamError:
        """This error, now knowing the site and API method it came from."""
        self.site = self.site or site
        self.method = self.method or method
        return self

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        detail = {"site": self.site, "api_method": self.method, "cause": self.cause}
        body["error"].update({k: v for k, v in detail.items() if v})
        return body


class UpstreamUnavailable(UpstreamError):
    """Connection refused or reset, DNS or TLS failure, or HTTP 5xx."""

    code = "upstream_unavailable"
    default_message = "The video site is unavailable."


class UpstreamTimeout(UpstreamError, status=504, code="upstream_timeout"):
    """The video site did not answer in time."""


class UpstreamBadResponse(UpstreamError):
    """A body that is not the JSON envelope we asked for."""

    code = "upstream_bad_response"
    default_message = "The video site sent an answer the gateway could not read."


class UpstreamRejected(UpstreamError):
    """23 answered ``status=error``; ``upstream_code`` is 23's own error code."""

    code = "upstream_rejected"
    default_message = "The video site refused the request."

    def __init__(
        self, upstream_code: str, upstream_message: str = "", *, site: str = "", method: str = ""
    ) -> None:
        self.upstream_code = upstream_code or "unknown"
        self.upstream_message = upstream_message
        super().__init__(
            f"The video site refused the request ({self.upstream_code}).",
            site=site,
            method=method,
            cause=self.upstream_code,
        )

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["error"]["upstream_code"] = self.upstream_code
        return body


# The one serializer of errors: every JSON error the gateway answers, from Flask or from the
# plain WSGI paths in front of it, is made here.


def error_json(error: GatewayError) -> bytes:
    """``{"error": {"code", "message", ...}}`` as bytes."""
    return orjson.dumps(error.to_dict())


def status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def json_error_headers(error: GatewayError, body: bytes) -> list[tuple[str, str]]:
    """Content type and length, and whatever the error asks for (Retry-After, Allow...)."""
    return [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        *error.response_headers().items(),
    ]
