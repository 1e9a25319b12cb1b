"""The gateway's signed, revocable sessions: visitors' (``gw_session``) and the operator
console's (``gw_admin``), one codec and one revocation scheme with a salt and a store kind each.

The cookie is signed with itsdangerous (the first ``secret_key`` signs, all verify), with an
idle and an absolute lifetime. It holds a random session id and the identity, nothing secret.
Logout records the id as revoked in the shared store (every worker and instance sees it) until
the session could have expired anyway, so a copy of the cookie taken before logout is
worthless afterwards. An IdP's back-channel logout revokes by the IdP's session id or subject:
every gateway session issued before that moment for it is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature

from gateway.identity.base import Identity
from gateway.signing import serializer
from gateway.store import StateFull, Store, StoreUnavailable, refused

COOKIE = "gw_session"
CONSOLE_AGE = 8 * 3600  # seconds from a console sign-in
CONSOLE_IDLE = 15 * 60  # seconds without a console request
DEVICE_LIMIT = "device_limit"  # a session signed out by a newer device of the same person
PERSON_INDEX = 50  # index entries kept per person (sign-ins and "last seen" updates)
REFRESH_AFTER = 60  # seconds: re-issue the cookie at most once a minute to slide idle expiry
MAX_COOKIE = 4096


@dataclass(frozen=True)
class SignedSession:
    """Who signed in (as the provider vouched), under which random id, when, and when last seen."""

    id: str
    identity: Identity
    issued_at: int
    seen_at: int


class SessionCodec:
    """The cookie's signed form and its expiry rules. Pure: no store, no clock of its own."""

    def __init__(
        self, secret_keys: Sequence[str], idle: int, max_age: int, salt: str = "gateway-session"
    ) -> None:
        self._signer = serializer(secret_keys, salt)
        self.idle = idle
        self.max_age = max_age

    def dump(self, session: SignedSession) -> str:
        return self._signer.dumps(
            {
                "id": session.id,
                "i": session.identity.to_json(),
                "t": session.issued_at,
                "s": session.seen_at,
            }
        )

    def load(self, cookie: str | None, now: float | None = None) -> SignedSession | None:
        """The session in a cookie, or None when absent, forged, idle too long or too old."""
        if not cookie or len(cookie) > MAX_COOKIE:
            return None
        try:
            data = self._signer.loads(cookie)
            session = SignedSession(
                str(data["id"]), Identity.from_json(data["i"]), int(data["t"]), int(data["s"])
            )
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
        if len(session.id) < 16:
            return None
        now = time.time() if now is None else now
        if now - session.seen_at > self.idle or now - session.issued_at > self.max_age:
            return None
        return session

    def new(self, identity: Identity, now: float | None = None) -> SignedSession:
        stamp = int(time.time() if now is None else now)
        return SignedSession(secrets.token_urlsafe(18), identity, stamp, stamp)

    def touched(self, session: SignedSession, now: float | None = None) -> SignedSession | None:
        """A refreshed session when the cookie is due for re-issue (sliding idle expiry)."""
        stamp = int(time.time() if now is None else now)
        if stamp - session.seen_at < REFRESH_AFTER:
            return None
        return SignedSession(session.id, session.identity, session.issued_at, stamp)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:40]


class Sessions:
    """Sessions with revocation kept in the shared store (``<revoked_kind>:<id>``)."""

    def __init__(
        self,
        codec: SessionCodec,
        store: Store,
        keep_groups: frozenset[str] | None = None,
        revoked_kind: str = "session-revoked",
    ) -> None:
        self.codec = codec
        self._store = store
        self._keep_groups = keep_groups
        self._revoked = revoked_kind

    def narrow(self, identity: Identity) -> Identity:
        """The identity as a session keeps it: only the groups some decision uses (an IdP may
        send hundreds, and a cookie over 4 KB is dropped by the browser)."""
        if self._keep_groups is None:
            return identity
        kept = tuple(g for g in identity.groups if g in self._keep_groups)
        return identity if kept == identity.groups else dataclasses.replace(identity, groups=kept)

    @property
    def max_age(self) -> int:
        return self.codec.max_age

    def new(self, identity: Identity) -> SignedSession:
        """A new session, if its sign-out could be recorded: revocations are never refused,
        so sessions are while their revocations have no room left."""
        if not self._store.has_room(self._revoked):
            raise refused(self._revoked)
        return self.codec.new(self.narrow(identity))

    def dump(self, session: SignedSession) -> str:
        return self.codec.dump(session)

    def touched(self, session: SignedSession) -> SignedSession | None:
        return self.codec.touched(session)

    def load(self, cookie: str | None) -> SignedSession | None:
        """The session in a cookie unless it is forged, expired or revoked (one store read):
        by its id, by a sign-out of its person everywhere, or by its IdP."""
        session = self.codec.load(cookie)
        if session is None:
            return None
        ident = session.identity
        keys = [f"{self._revoked}:{session.id}", _person_key(ident.email)]
        keys += _idp_keys(ident.provider, ident.subject, ident.idp_session)
        marks = self._store.get_many(keys)
        if marks[0] is not None or _revoked_since(marks[1:], session.issued_at):
            return None
        return session

    def revoked_at_idp(
        self, provider: str, subject: str, idp_session: str, issued_at: float
    ) -> bool:
        """Did a back-channel or SAML logout end this IdP session or subject since
        ``issued_at``? (The console's sessions ask this too.)"""
        keys = _idp_keys(provider, subject, idp_session)
        return bool(keys) and _revoked_since(self._store.get_many(keys), issued_at)

    def revoke(self, session: SignedSession, why: str = "") -> None:
        """Logout: this session id is refused by every worker and instance from now on."""
        self._revoke_id(session.id, session.issued_at, why)

    def _revoke_id(self, session_id: str, issued_at: float, why: str = "") -> None:
        left = issued_at + self.codec.max_age - time.time()  # no longer than it lives
        self._store.set(f"{self._revoked}:{session_id}", why or 1, ttl=max(left, 1) + 60)

    def limit_devices(self, session: SignedSession, site: str, most: int) -> int:
        """Keep at most ``most`` live sessions of this person on ``site``, ``session`` (the
        new one) among them: the oldest others are signed out everywhere, marked so that
        their device can be told why. How many were signed out."""
        if most <= 0:
            return 0
        others = [
            e
            for e in self.of_person(session.identity.email)
            if e.get("site") == site and e["id"] != session.id
        ]
        others.reverse()  # the index lists newest first: ties (same second) keep that order
        others.sort(key=lambda e: float(e.get("issued", 0)))
        extra = others[: max(0, len(others) - (most - 1))]
        for entry in extra:
            self._revoke_id(entry["id"], float(entry.get("issued", 0)), DEVICE_LIMIT)
        return len(extra)

    def why_refused(self, cookie: str | None) -> str:
        """Why a signed, unexpired session cookie is refused, when it was revoked with a
        reason (``DEVICE_LIMIT``); "" otherwise."""
        session = self.codec.load(cookie)
        if session is None:
            return ""
        mark = self._store.get(f"{self._revoked}:{session.id}")
        return mark if isinstance(mark, str) else ""

    # ------------------------------------------------------------------ by person

    def note(self, session: SignedSession, **about: str) -> None:
        """Index the session under its person (for the console's list): where it started,
        from which address and browser, when last seen. Best effort: never refuses a
        sign-in."""
        entry = {"id": session.id, "issued": session.issued_at, "seen": session.seen_at} | about
        with contextlib.suppress(StoreUnavailable, StateFull):
            key = _index_key(session.identity.email)
            self._store.append(key, [entry], keep=PERSON_INDEX, ttl=self.codec.max_age)

    def of_person(self, email: str) -> list[dict[str, Any]]:
        """The person's live sessions, newest first, each once (its latest "seen")."""
        entries = self._store.newest(_index_key(email), PERSON_INDEX)
        latest: dict[str, dict[str, Any]] = {}
        for entry in entries:  # newest first: what a newer entry says wins
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                latest[entry["id"]] = {**entry, **latest.get(entry["id"], {})}
        now = time.time()
        alive = [e for e in latest.values() if now - float(e.get("issued", 0)) < self.max_age]
        marks = self._store.get_many(
            [_person_key(email), *(f"{self._revoked}:{e['id']}" for e in alive)]
        )
        everywhere = marks[0]
        return [
            e
            for e, mark in zip(alive, marks[1:], strict=True)
            if mark is None and not _revoked_since([everywhere], float(e.get("issued", 0)))
        ]

    def revoke_person(self, email: str) -> int:
        """Sign this person out everywhere: every session of theirs issued until now, on
        every worker and instance (the index may not list them all: the mark covers all)."""
        live = len(self.of_person(email))
        ttl = max(self.codec.max_age, CONSOLE_AGE)
        self._store.set(_person_key(email), int(time.time()), ttl=ttl)
        return live

    def revoke_at_idp(self, provider: str, *, subject: str = "", idp_session: str = "") -> None:
        """Back-channel logout: every session of this IdP session or subject issued until now
        (console sessions ask these marks too, so they live as long as either kind)."""
        now = int(time.time())
        ttl = max(self.codec.max_age, CONSOLE_AGE)
        for key in _idp_keys(provider, subject, idp_session):
            self._store.set(key, now, ttl=ttl)


def _person_key(email: str) -> str:
    return f"person-revoked:{_digest(email.strip().lower())}"


def _index_key(email: str) -> str:
    return f"sessions-of:{_digest(email.strip().lower())}"


def _idp_keys(provider: str, subject: str, idp_session: str) -> list[str]:
    keys = []
    if subject:
        keys.append(f"idp-revoked:{provider}:sub:{_digest(subject)}")
    if idp_session:
        keys.append(f"idp-revoked:{provider}:sid:{_digest(idp_session)}")
    return keys


def _revoked_since(marks: Sequence[Any], issued_at: float) -> bool:
    return any(isinstance(at, int | float) and issued_at <= at for at in marks)


def console_sessions(
    secret_keys: Sequence[str], store: Store, allow_groups: Sequence[str]
) -> Sessions:
    """The operator console's sessions: short-lived, their own salt and revocations, and only
    the groups the console's allow-list names."""
    codec = SessionCodec(secret_keys, CONSOLE_IDLE, CONSOLE_AGE, salt="admin-session")
    return Sessions(codec, store, frozenset(allow_groups), revoked_kind="admin-revoked")
