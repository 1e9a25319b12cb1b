"""Sign-ins a browser has in flight with a provider that sends it away (OIDC, SAML): a signed,
short-lived cookie of their states, the newest few kept (one per tab), single use enforced by
the provider against the store."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from flask import Request
from itsdangerous import BadSignature, SignatureExpired
from werkzeug.wrappers import Response

from gateway.cookies import Cookie, CookieJar
from gateway.signing import timed_serializer

STATE_MAX_AGE = 600  # seconds a visitor may spend at the provider
MAX_PENDING = 3  # sign-ins in flight per browser (several tabs)


class PendingStates:
    def __init__(
        self, cookies: CookieJar, cookie: Cookie, secret_keys: Sequence[str], salt: str
    ) -> None:
        self._cookies = cookies
        self._cookie = cookie
        self._signer = timed_serializer(secret_keys, salt)

    def read(self, request: Request) -> dict[str, dict[str, Any]]:
        """The browser's sign-ins in flight, by state (forged or expired cookies: none)."""
        try:
            raw = self._cookies.get(request, self._cookie)
            data = self._signer.loads(raw, max_age=STATE_MAX_AGE)
        except (BadSignature, SignatureExpired):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict) and "t" in v}

    def add(self, request: Request, response: Response, key: str, entry: dict[str, Any]) -> None:
        """One more sign-in in flight, set on ``response`` (the oldest beyond MAX_PENDING go)."""
        in_flight = self.read(request)
        in_flight[key] = {**entry, "t": int(time.time())}
        newest = sorted(in_flight.items(), key=lambda kv: kv[1]["t"])[-MAX_PENDING:]
        self._cookies.set(response, self._cookie, self._signer.dumps(dict(newest)), STATE_MAX_AGE)
