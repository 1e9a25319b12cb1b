"""Every error from the gateway's own endpoints is ``{"error": {"code", "message"}}`` JSON."""

from __future__ import annotations

import logging
import re

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from gateway.errors import GatewayError, PayloadTooLarge, UpstreamError, error_json
from gateway.web.message_pages import message_page, wants_html

log = logging.getLogger("gateway.web")


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "error"


def error_response(error: GatewayError) -> Response:
    if wants_html():
        detail = ""
        if isinstance(error, UpstreamError):  # which site, which call, what went wrong
            detail = " · ".join(v for v in (error.site, error.method, error.cause) if v)
        page = message_page(error.status, error.code, error.message, detail=detail)
        page.headers.update(error.response_headers())
        return page  # type: ignore[return-value]
    response = Response(error_json(error), status=error.status, mimetype="application/json")
    response.headers.update(error.response_headers())
    return response


def register_error_handlers(app: Flask) -> None:
    # Upstream failures are logged where they happen (site, API method, URL, cause).
    @app.errorhandler(GatewayError)
    def gateway_error(error: GatewayError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if error.code == PayloadTooLarge.status:  # one code for 413, chunked or not
            return error_response(PayloadTooLarge())
        message = error.description or error.name
        if wants_html():
            return message_page(error.code or 500, _snake(error.name), message)  # type: ignore[return-value]
        plain = GatewayError(message, code=_snake(error.name))
        plain.status = error.code or 500  # type: ignore[misc]  # werkzeug's own status
        return error_response(plain)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.error("unhandled error", exc_info=error)
        return error_response(GatewayError())
