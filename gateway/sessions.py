"""The gateway's own visitor session: a signed cookie, so a second site or the embed and
protection endpoints know the visitor without another trip to the identity provider.

Signed with itsdangerous (the first ``secret_key`` signs, all verify), with an idle and an
absolute lifetime. It holds the identity only; nothing in it is secret.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from gateway.identity.base import Identity

COOKIE = "gw_session"
REFRESH_AFTER = 60  # seconds: re-issue the cookie at most once a minute to slide idle expiry


def serializer(secret_keys: Sequence[str], salt: str) -> URLSafeSerializer:
    """itsdangerous signs with the *last* key of a list; ours signs with the first."""
    return URLSafeSerializer(list(reversed(secret_keys)), salt=salt)


@dataclass(frozen=True)
class VisitorSession:
    identity: Identity
    issued_at: int
    seen_at: int


class SessionCodec:
    def __init__(self, secret_keys: Sequence[str], idle: int, max_age: int) -> None:
        self._signer = serializer(secret_keys, "gateway-session")
        self.idle = idle
        self.max_age = max_age

    def dump(self, session: VisitorSession) -> str:
        return self._signer.dumps(
            {"i": session.identity.to_json(), "t": session.issued_at, "s": session.seen_at}
        )

    def load(self, cookie: str | None, now: float | None = None) -> VisitorSession | None:
        """The session in a cookie, or None when absent, forged, idle too long or too old."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            data = self._signer.loads(cookie)
            session = VisitorSession(Identity.from_json(data["i"]), int(data["t"]), int(data["s"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
        now = time.time() if now is None else now
        if now - session.seen_at > self.idle or now - session.issued_at > self.max_age:
            return None
        return session

    def new(self, identity: Identity, now: float | None = None) -> VisitorSession:
        stamp = int(time.time() if now is None else now)
        return VisitorSession(identity, stamp, stamp)

    def touched(self, session: VisitorSession, now: float | None = None) -> VisitorSession | None:
        """A refreshed session when the cookie is due for re-issue (sliding idle expiry)."""
        stamp = int(time.time() if now is None else now)
        if stamp - session.seen_at < REFRESH_AFTER:
            return None
        return VisitorSession(session.identity, session.issued_at, stamp)
