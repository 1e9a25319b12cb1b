"""The gateway's exception tree: every error a client sees is one (code, status, message)."""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    """An error with a stable snake_case code, an HTTP status and a human sentence."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "The gateway could not handle this request."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code  # type: ignore[misc]  # per-instance override of the class default
        self.headers = headers or {}
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(GatewayError):
    status = 400
    code = "bad_request"
    default_message = "The request is malformed."


class Unauthorized(GatewayError):
    status = 401
    code = "unauthorized"
    default_message = "Authentication is required."


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"
    default_message = "You are not allowed to do this."


class NotFound(GatewayError):
    status = 404
    code = "not_found"
    default_message = "There is nothing here."


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload_too_large"
    default_message = "The request body is too large."


class UnsupportedMediaType(GatewayError):
    status = 415
    code = "unsupported_media_type"
    default_message = "The request body must be JSON (Content-Type: application/json)."


class TooManyRequests(GatewayError):
    status = 429
    code = "rate_limited"
    default_message = "Too many requests; slow down."


# Upstream (23 API) failures. Raised only by gateway.twentythree.client; web code maps them.


class UpstreamError(GatewayError):
    """The 23 site did not give a usable answer."""

    status = 502
    code = "upstream_error"
    default_message = "The video site did not answer properly."


class UpstreamUnavailable(UpstreamError):
    """Connection refused or reset, or HTTP 5xx."""

    code = "upstream_unavailable"
    default_message = "The video site is unavailable."


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"
    default_message = "The video site did not answer in time."


class UpstreamBadResponse(UpstreamError):
    """A body that is not the JSON envelope we asked for."""

    code = "upstream_bad_response"
    default_message = "The video site sent an answer the gateway could not read."


class UpstreamRejected(UpstreamError):
    """23 answered ``status=error``; ``upstream_code`` is 23's own error code."""

    code = "upstream_rejected"
    default_message = "The video site refused the request."

    def __init__(self, upstream_code: str, upstream_message: str = "") -> None:
        self.upstream_code = upstream_code or "unknown"
        self.upstream_message = upstream_message
        super().__init__(f"The video site refused the request ({self.upstream_code}).")

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["error"]["upstream_code"] = self.upstream_code
        return body
