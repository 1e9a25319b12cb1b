"""Bearer credentials for a site configured with ``api_token``, got the way 23's own
twentythree-cli gets them: ``GET /api/2/user/tokens?cross_sites_p=1`` with
``Authorization: Bearer <api_token>`` lists a short-lived bearer token (``bearer_token``,
``expiration_time``) per site the API token opens; the entry whose ``domain`` is the site's
is used on every call as ``Authorization: Bearer <bearer_token>``.

One token serves the whole gateway: it is kept in the shared store (encrypted with a key
derived from the api_token, so the store alone does not hand it out), and only one process
exchanges at a time (a store lock), so a fleet does not stampede the exchange. A token is
replaced once less than a quarter of its life (at most a minute) is left, and at once when
23 answers 401 to it.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamUnavailable,
)
from gateway.settings import SiteSettings
from gateway.store import StateFull, Store, StoreUnavailable
from gateway.twentythree import transport

log = logging.getLogger("gateway.upstream")

EXCHANGE = "user/tokens"
REFRESH_SHARE = 0.25  # replace a token once this share of its life is left...
REFRESH_AT_MOST = 60.0  # ...or this many seconds, whichever is less
EXCHANGE_WAIT = 10.0  # seconds a process waits for another one's exchange
EXCHANGE_BACKOFF = 5.0  # seconds a failed exchange (or a token refused at once) is not retried
LONGEST = 366 * 86400.0  # an expiration_time further off than this is not believed


class CredentialsRefused(UpstreamError):
    """23 refused the api_token at the exchange: never a verdict on the call that needed it
    (a photo lookup must not read "no such photo" into it)."""

    code = "upstream_credentials_refused"
    default_message = "The video site refused the gateway's API token."


@dataclass(frozen=True)
class BearerToken:
    value: str
    expires: float  # Unix seconds
    obtained: float

    def fresh(self, now: float) -> bool:
        left = self.expires - now
        margin = min(REFRESH_AT_MOST, (self.expires - self.obtained) * REFRESH_SHARE)
        return left > margin

    def __repr__(self) -> str:  # never the token itself
        return f"BearerToken(expires={self.expires:.0f})"


class BearerTokens:
    """The current bearer token of one site, shared through the store."""

    def __init__(
        self,
        site: SiteSettings,
        store: Store | None,
        session: requests.Session,
        timeout: tuple[float, float],
    ) -> None:
        self._site = site
        self._store = store
        self._session = session
        self._timeout = timeout
        self._key = f"bearer:{site.name}"
        api_token = site.api_token.get_secret_value()
        self._api_token = api_token
        self._box = Fernet(_box_key(api_token))
        self._local: BearerToken | None = None
        self._lock = threading.Lock()
        self._failed: tuple[float, UpstreamError] | None = None  # (until, why)

    def current(self) -> str:
        """A bearer token with life left in it, exchanging for a new one when needed."""
        now = time.time()
        token = self._local
        if token is not None and token.fresh(now):
            return token.value
        with self._lock:
            token = self._shared()
            if token is None or not token.fresh(time.time()):
                token = self._renew_unless_failing(stale=token)
            self._local = token
            return token.value

    def _renew_unless_failing(self, stale: BearerToken | None) -> BearerToken:
        """A new token, unless an exchange failed moments ago: then that failure again (no
        exchange per call while 23 refuses the api_token or is down)."""
        if self._failed is not None and time.time() < self._failed[0]:
            raise copy.copy(self._failed[1])
        try:
            return self._renew(stale=stale)
        except UpstreamError as exc:
            self._failed = (time.time() + EXCHANGE_BACKOFF, exc)
            raise

    def rejected(self, value: str) -> None:
        """23 answered 401 to ``value``: forget it here and in the store (unless another
        process already put a newer one there). A token refused moments after it was got
        means the exchange hands out tokens 23 does not take: wait before the next one."""
        with self._lock:
            local = self._local
            if local is not None and local.value == value:
                self._local = None
                if time.time() - local.obtained < EXCHANGE_BACKOFF:
                    refused = CredentialsRefused(
                        cause="token_refused", site=self._site.name, method=EXCHANGE
                    )
                    self._failed = (time.time() + EXCHANGE_BACKOFF, refused)
            shared = self._shared()
            if shared is not None and shared.value == value and self._store is not None:
                with contextlib.suppress(StoreUnavailable):
                    self._store.delete(self._key)

    # ------------------------------------------------------------------ the store

    def _shared(self) -> BearerToken | None:
        if self._store is None:
            return self._local
        try:
            raw = self._store.get(self._key)
        except StoreUnavailable:
            return self._local
        if not isinstance(raw, str):
            return None
        try:
            data = json.loads(self._box.decrypt(raw.encode()))
            return BearerToken(str(data["t"]), float(data["e"]), float(data["o"]))
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None  # another api_token's, or damaged: exchange again

    def _keep(self, token: BearerToken) -> None:
        if self._store is None:
            return
        sealed = self._box.encrypt(
            json.dumps({"t": token.value, "e": token.expires, "o": token.obtained}).encode()
        ).decode()
        with contextlib.suppress(StoreUnavailable, StateFull):  # else this process keeps its own
            self._store.set(self._key, sealed, ttl=max(1.0, token.expires - time.time()))

    def _renew(self, stale: BearerToken | None) -> BearerToken:
        """One exchange for the whole gateway: whoever holds the lock exchanges, the others
        wait and read what it stored."""
        if self._store is None:
            return self._exchange()
        try:
            with self._store.lock(f"lock:{self._key}", ttl=EXCHANGE_WAIT, wait=EXCHANGE_WAIT):
                found = self._shared()
                if found is not None and found.fresh(time.time()) and found != stale:
                    return found
                token = self._exchange()
                self._keep(token)
                return token
        except StoreUnavailable:
            return self._exchange()

    # ------------------------------------------------------------------ the exchange

    def _exchange(self) -> BearerToken:
        url = f"{self._site.url}/api/2/{EXCHANGE}"
        try:
            response = transport.send(
                self._session,
                "GET",
                url,
                params={"cross_sites_p": 1},
                headers={"Authorization": f"Bearer {self._api_token}"},
                timeout=self._timeout,
            )
        except UpstreamError as exc:
            raise exc.located(self._site.name, EXCHANGE) from None
        body = response.content
        token = self._read(response.status_code, body)
        log.info(
            "bearer token exchanged",
            extra={"site": self._site.name, "api_method": EXCHANGE, "expires": token.expires},
        )
        return token

    def _read(self, status: int, body: bytes) -> BearerToken:
        where = {"site": self._site.name, "method": EXCHANGE}
        try:
            envelope = json.loads(body)
        except ValueError:
            raise UpstreamBadResponse(cause=f"http_{status}", **where) from None
        if not isinstance(envelope, dict):
            raise UpstreamBadResponse(cause="no_envelope", **where)
        code = envelope.get("code")
        cause = code[:64] if isinstance(code, str) and code.isidentifier() else f"http_{status}"
        if status >= 500:
            raise UpstreamUnavailable(cause=cause, **where)
        if status >= 400 or envelope.get("status") != "ok":
            raise CredentialsRefused(cause=cause, **where)
        entry = _entry_for(envelope.get("data"), self._site.url)
        if entry is None:
            raise UpstreamBadResponse(
                "The api_token opens no site with this site's domain.", cause="no_token", **where
            )
        value, expires = entry.get("bearer_token"), _when(entry.get("expiration_time"))
        if not isinstance(value, str) or not value or expires is None:
            raise UpstreamBadResponse(cause="bad_token", **where)
        now = time.time()
        if expires <= now:
            raise UpstreamBadResponse("The bearer token had expired.", cause="expired", **where)
        return BearerToken(value, expires, now)


def _entry_for(data: Any, site_url: str) -> Mapping[str, Any] | None:
    """The token listed for the site's own domain (with its port, on a test site)."""
    entries = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
    parts = urlsplit(site_url)
    wanted = {parts.netloc.lower(), (parts.hostname or "").lower()}
    for entry in entries:
        if isinstance(entry, dict) and str(entry.get("domain", "")).lower() in wanted:
            return entry
    return None


def _when(value: Any) -> float | None:
    """``expiration_time`` as Unix seconds: a number, digits, or an ISO 8601 time; None for
    anything else, or for a time not within a year from now."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = float(value.strip()) if len(value.strip()) < 16 else None
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        seconds = moment.timestamp() if moment.tzinfo else None
    if seconds is None or not math.isfinite(seconds):
        return None
    return seconds if seconds - time.time() <= LONGEST else None


def _box_key(api_token: str) -> bytes:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"23-gateway bearer", info=b"store"
    ).derive(api_token.encode())
    return base64.urlsafe_b64encode(derived)
