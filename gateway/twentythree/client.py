"""One signed HTTP session per 23 site: OAuth 1.0a or bearer tokens, timeouts, retries, both
dialects, envelope -> data | error.

``api_version = 2`` (23 today): ``<url>/api/2/<method>``, every method as a GET (the verbs of
23's OpenAPI file for the methods the gateway uses), typed JSON under ``data``, failures as
HTTP statuses with the code in the body. ``api_version = 1``: the legacy
``<url>/api/<method>?format=json&raw``, writes as POSTs, everything a string, errors on HTTP
200. Every failure leaves this module as a gateway UpstreamError; callers never see
``requests``.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests_oauthlib import OAuth1

from gateway import metrics, tracing
from gateway.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from gateway.settings import SiteSettings
from gateway.store import Store
from gateway.telemetry import Telemetry
from gateway.twentythree import transport
from gateway.twentythree.bearer import BearerTokens

log = logging.getLogger("gateway.upstream")

# 23's documented error codes (reference §1.6): anything else is counted as "other", so a
# misbehaving site cannot grow the metrics' label set without bound.
KNOWN_CODES = frozenset(
    {
        "couldnt_create_album",
        "couldnt_create_user",
        "couldnt_update_album",
        "error_processing_upload",
        "invalid_album",
        "invalid_album_token",
        "invalid_input",
        "invalid_photo_token",
        "invalid_signature",
        "invalid_token",
        "invalid_type",
        "missing_authentication",
        "no_file",
        "no_such_album",
        "no_such_photo",
        "no_such_object",
        "no_such_tag",
        "no_such_user",
        "permission_denied",
        "token_required",
        "user_already_exists",
    }
)

_METHOD_RE = re.compile(r"^[a-z0-9-]+(/[a-z0-9-]+){0,3}$")

Params = Mapping[str, str | int]


@dataclass(frozen=True)
class ApiResponse:
    """A successful (``status == "ok"``) answer, either envelope style."""

    method: str
    envelope: Mapping[str, Any]
    site: str = ""

    @property
    def permission_level(self) -> str:
        return str(self.envelope.get("permission_level", ""))

    def payload(self, legacy_key: str) -> Any:
        """The payload: ``data`` (api/2) or the legacy key (``photos``, ``sessiontoken``)."""
        if "data" in self.envelope:
            return self.envelope["data"]
        if legacy_key in self.envelope:
            return self.envelope[legacy_key]
        raise UpstreamBadResponse(
            f"The video site's answer to {self.method} had no {legacy_key}.",
            site=self.site,
            method=self.method,
            cause="no_payload",
        )

    def items(self, legacy_key: str) -> list[Mapping[str, Any]]:
        """The payload as a list of objects (a lone object becomes a list of one)."""
        value = self.payload(legacy_key)
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise UpstreamBadResponse(
                f"The video site's {legacy_key} list was not a list.",
                site=self.site,
                method=self.method,
                cause="bad_payload",
            )
        return value


class _Bearer(AuthBase):
    """``Authorization: Bearer <token>`` with the site's current bearer token."""

    def __init__(self, tokens: BearerTokens) -> None:
        self.tokens = tokens

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.tokens.current()}"
        return r


class TwentyThreeClient:
    """Signed calls to one site's API with its privileged (super) credentials."""

    def __init__(
        self,
        site: SiteSettings,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 5.0,
        attempts: int = 2,
        pool_size: int = 32,
        telemetry: Telemetry | None = None,
        store: Store | None = None,
    ) -> None:
        self.site = site
        self._telemetry = telemetry
        self.timeout = (connect_timeout, read_timeout)
        self.attempts = max(1, attempts)
        self.api2 = site.api_version == 2
        self.base = f"{site.url}/api/2/" if self.api2 else f"{site.url}/api/"
        self._session = requests.Session()
        self._session.trust_env = False  # no proxies or .netrc from the environment
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = "23-gateway/0.1"
        self.bearer = (
            BearerTokens(site, store, self._session, self.timeout) if site.bearer else None
        )
        # The signer on every call (public: the signing tests use it).
        self.auth: AuthBase = (
            _Bearer(self.bearer)
            if self.bearer
            else OAuth1(
                site.consumer_key,
                client_secret=site.consumer_secret.get_secret_value(),
                resource_owner_key=site.access_token,
                resource_owner_secret=site.access_token_secret.get_secret_value(),
                signature_method="HMAC-SHA1",
                signature_type="AUTH_HEADER",
                realm=f"{site.url}/",
            )
        )

    def close(self) -> None:
        self._session.close()

    def call(self, method: str, params: Params | None = None, *, read: bool = True) -> ApiResponse:
        """Call ``method``. Reads go as signed GETs and are retried on connection errors and 5xx;
        anything else (``read=False``) is one signed POST, never retried."""
        if not _METHOD_RE.fullmatch(method):
            raise ValueError(f"not a 23 API method name: {method!r}")
        fields: dict[str, str] = {k: str(v) for k, v in (params or {}).items()}
        if not self.api2:
            fields.update(format="json", raw="1")
        started = time.perf_counter()
        outcome = "ok"
        traced = tracing.span(
            f"23 {method}", client=True, **{"gateway.site": self.site.name, "rpc.method": method}
        )
        traced.__enter__()
        try:
            attempt = 0
            while True:
                attempt += 1
                try:
                    return self._once(method, fields, read, self.site.name)
                except UpstreamUnavailable:
                    if not read or attempt >= self.attempts:
                        raise
                    time.sleep(0.05 * 2**attempt + random.uniform(0, 0.05))  # noqa: S311
        except UpstreamError as exc:
            exc.located(self.site.name, method)
            outcome = exc.code
            if isinstance(exc, UpstreamRejected):
                outcome = exc.upstream_code if exc.upstream_code in KNOWN_CODES else "other"
            # An unknown photo is an answer, not a failure; everything else is worth a warning.
            level = logging.INFO if outcome == "no_such_photo" else logging.WARNING
            log.log(
                level,
                "upstream failure",
                extra={
                    "site": self.site.name,
                    "api_method": method,
                    "url": self.base + method,  # never the query: it can carry a token
                    "cause": exc.cause,
                    "code": exc.code,
                },
            )
            raise
        finally:
            tracing.annotate(**{"gateway.outcome": outcome})
            traced.__exit__(None, None, None)
            elapsed = time.perf_counter() - started
            metrics.UPSTREAM_CALLS.labels(self.site.name, method, outcome).inc()
            metrics.UPSTREAM_SECONDS.labels(self.site.name, method).observe(elapsed)
            if self._telemetry is not None:
                self._record(outcome, elapsed)
            log.debug(
                "23 call",
                extra={
                    "site": self.site.name,
                    "api_method": method,
                    "outcome": outcome,
                    "ms": round(elapsed * 1000, 1),
                },
            )

    def _record(self, outcome: str, elapsed: float) -> None:
        assert self._telemetry is not None
        site = self.site.name
        self._telemetry.count(site, "upstream_calls")
        if outcome not in ("ok", "no_such_photo"):  # an unknown photo is an answer
            self._telemetry.count(site, "upstream_errors")
        self._telemetry.observe_ms(site, "upstream_ms", elapsed * 1000)

    def _once(self, method: str, fields: dict[str, str], read: bool, site: str) -> ApiResponse:
        status, body, sent = self._send(method, fields, read)
        if status == 401 and self.bearer is not None:
            self.bearer.rejected(sent)  # expired or revoked early: a new one, once
            status, body, _ = self._send(method, fields, read)
        return _parse(method, status, body, site)

    def _send(self, method: str, fields: dict[str, str], read: bool) -> tuple[int, bytes, str]:
        """(HTTP status, body, the bearer token sent). On /api/2 every call is a GET with its
        query signed; legacy writes are POSTs with everything in the signed form body (23
        ignores a POST's query string)."""
        get = read or self.api2
        response = transport.send(
            self._session,
            "GET" if get else "POST",
            self.base + method,
            params=fields if get else None,
            data=None if get else fields,
            auth=self.auth,
            timeout=self.timeout,
        )
        body = response.content
        if self.bearer is None:
            return response.status_code, body, ""
        sent = response.request.headers.get("Authorization", "")
        text = sent.decode() if isinstance(sent, bytes) else str(sent)
        return response.status_code, body, text.removeprefix("Bearer ")


def _parse(method: str, status: int, body: bytes, site: str = "") -> ApiResponse:
    """Apply the rule "success only if HTTP is 2xx AND status == ok". A 5xx is "unavailable"
    with 23's own code from the body when it sends one (api/2 does)."""
    if status >= 500:
        code = _error_code(body)
        raise UpstreamUnavailable(
            f"The video site answered HTTP {status}" + (f" ({code})." if code else "."),
            cause=code or f"http_{status}",
        )
    try:
        envelope = json.loads(body)
    except ValueError:
        raise UpstreamBadResponse(cause="not_json" if status < 300 else f"http_{status}") from None
    if not isinstance(envelope, dict) or "status" not in envelope:
        raise UpstreamBadResponse(cause="no_envelope")
    if envelope["status"] != "ok":
        code = envelope.get("code") or envelope.get("error_code") or ""
        raise UpstreamRejected(str(code)[:64], str(envelope.get("message", ""))[:300])
    if not 200 <= status < 300:
        raise UpstreamBadResponse(
            f"The video site answered HTTP {status} with status ok.", cause=f"http_{status}"
        )
    return ApiResponse(method=method, envelope=envelope, site=site)


def _error_code(body: bytes) -> str:
    """23's error code in a failure's body, or ""."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return ""
    code = envelope.get("code") if isinstance(envelope, dict) else None
    return code[:64] if isinstance(code, str) and re.fullmatch(r"[a-z0-9_]{1,64}", code) else ""
