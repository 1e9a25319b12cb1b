"""One signed HTTP session per 23 site: OAuth 1.0a, timeouts, retries, envelope -> data | error.

Every failure leaves this module as a gateway UpstreamError; callers never see ``requests``.
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
from requests_oauthlib import OAuth1

from gateway import metrics
from gateway.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.settings import SiteSettings

log = logging.getLogger("gateway.upstream")

_METHOD_RE = re.compile(r"^[a-z0-9-]+(/[a-z0-9-]+){0,3}$")
MAX_BODY_BYTES = 4 * 1024 * 1024

Params = Mapping[str, str | int]


@dataclass(frozen=True)
class ApiResponse:
    """A successful (``status == "ok"``) answer, either envelope style."""

    method: str
    envelope: Mapping[str, Any]

    @property
    def permission_level(self) -> str:
        return str(self.envelope.get("permission_level", ""))

    def payload(self, legacy_key: str) -> Any:
        """The payload: ``data`` (api/2) or the legacy key (``photos``, ``sessiontoken``)."""
        if "data" in self.envelope:
            return self.envelope["data"]
        if legacy_key in self.envelope:
            return self.envelope[legacy_key]
        raise UpstreamBadResponse(f"The video site's answer to {self.method} had no {legacy_key}.")

    def items(self, legacy_key: str) -> list[Mapping[str, Any]]:
        """The payload as a list of objects (a lone object becomes a list of one)."""
        value = self.payload(legacy_key)
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise UpstreamBadResponse(f"The video site's {legacy_key} list was not a list.")
        return value


class TwentyThreeClient:
    """Signed calls to one site's API with its privileged (super) credentials."""

    def __init__(
        self,
        site: SiteSettings,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 5.0,
        attempts: int = 2,
        api2: bool = False,
        pool_size: int = 32,
    ) -> None:
        self.site = site
        self.timeout = (connect_timeout, read_timeout)
        self.attempts = max(1, attempts)
        self.base = f"{site.url}/api/2/" if api2 else f"{site.url}/api/"
        self._legacy = not api2
        self._auth = OAuth1(
            site.consumer_key,
            client_secret=site.consumer_secret,
            resource_owner_key=site.access_token,
            resource_owner_secret=site.access_token_secret,
            signature_method="HMAC-SHA1",
            signature_type="AUTH_HEADER",
            realm=f"{site.url}/",
        )
        self._session = requests.Session()
        self._session.trust_env = False  # no proxies or .netrc from the environment
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = "23-gateway/0.1"

    def close(self) -> None:
        self._session.close()

    def call(self, method: str, params: Params | None = None, *, read: bool = True) -> ApiResponse:
        """Call ``method``. Reads go as signed GETs and are retried on connection errors and 5xx;
        anything else (``read=False``) is one signed POST, never retried."""
        if not _METHOD_RE.fullmatch(method):
            raise ValueError(f"not a 23 API method name: {method!r}")
        fields: dict[str, str] = {k: str(v) for k, v in (params or {}).items()}
        if self._legacy:
            fields.update(format="json", raw="1")
        started = time.perf_counter()
        outcome = "ok"
        try:
            attempt = 0
            while True:
                attempt += 1
                try:
                    return self._once(method, fields, read)
                except UpstreamUnavailable:
                    if not read or attempt >= self.attempts:
                        raise
                    time.sleep(0.05 * 2**attempt + random.uniform(0, 0.05))  # noqa: S311
        except UpstreamRejected as exc:
            outcome = exc.upstream_code
            raise
        except UpstreamError as exc:
            outcome = exc.code
            raise
        finally:
            elapsed = time.perf_counter() - started
            metrics.UPSTREAM_CALLS.labels(self.site.name, method, outcome).inc()
            metrics.UPSTREAM_SECONDS.labels(self.site.name, method).observe(elapsed)
            log.debug(
                "23 call",
                extra={
                    "site": self.site.name,
                    "api_method": method,
                    "outcome": outcome,
                    "ms": round(elapsed * 1000, 1),
                },
            )

    def _once(self, method: str, fields: dict[str, str], read: bool) -> ApiResponse:
        url = self.base + method
        try:
            if read:
                response = self._session.get(
                    url,
                    params=fields,
                    auth=self._auth,
                    timeout=self.timeout,
                    stream=True,
                    allow_redirects=False,
                )
            else:
                # POST: 23 ignores the query string, so everything goes in the signed form body.
                response = self._session.post(
                    url,
                    data=fields,
                    auth=self._auth,
                    timeout=self.timeout,
                    stream=True,
                    allow_redirects=False,
                )
            with response:
                body = _read_capped(response)
        except requests.Timeout:
            raise UpstreamTimeout() from None
        except requests.RequestException:  # refused, reset, TLS failure, broken chunking
            raise UpstreamUnavailable() from None
        return _parse(method, response.status_code, body)


def _read_capped(response: requests.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise UpstreamBadResponse("The video site's answer was too large.")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(method: str, status: int, body: bytes) -> ApiResponse:
    """Apply the rule "success only if HTTP is 2xx AND status == ok"."""
    if status >= 500:
        raise UpstreamUnavailable(f"The video site answered HTTP {status}.")
    try:
        envelope = json.loads(body)
    except ValueError:
        raise UpstreamBadResponse() from None
    if not isinstance(envelope, dict) or "status" not in envelope:
        raise UpstreamBadResponse()
    if envelope["status"] != "ok":
        code = envelope.get("code") or envelope.get("error_code") or ""
        raise UpstreamRejected(str(code)[:64], str(envelope.get("message", ""))[:300])
    if not 200 <= status < 300:
        raise UpstreamBadResponse(f"The video site answered HTTP {status} with status ok.")
    return ApiResponse(method=method, envelope=envelope)
