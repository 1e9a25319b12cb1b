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
PERSON_INDEX = 50  # sign-ins kept in a person's index (far beyond any device limit)
# The settings' bound on session_max_age: marks that cover "every session until now" (a person
# signed out everywhere, an IdP logout) live this long, so no reload that raises the lifetime
# can outlast them.
LONGEST_SESSION = 30 * 86400
REFRESH_AFTER = 60  # seconds: re-issue the cookie at most once a minute to slide idle expiry
MAX_COOKIE = 4096


@dataclass(frozen=True)
class SignedSession:
    """Who signed in (as the provider vouched), under which random id, when, and when last seen."""

    id: str
    identity: Identity
    issued_at: int
    seen_at: int
    expires_at: int = 0  # fixed at issue: a later, longer session_max_age does not extend it

    def ends(self, max_age: int) -> int:
        """When it expires at the latest (its own expiry, else ``max_age`` after issue)."""
        return self.expires_at or self.issued_at + max_age


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
                "e": session.ends(self.max_age),
                "w": self.idle,  # the idle window it was written under
            }
        )

    def load(self, cookie: str | None, now: float | None = None) -> SignedSession | None:
        """The session in a cookie, or None when absent, forged, idle too long or too old."""
        if not cookie or len(cookie) > MAX_COOKIE:
            return None
        try:
            data = self._signer.loads(cookie)
            session = SignedSession(
                str(data["id"]),
                Identity.from_json(data["i"]),
                int(data["t"]),
                int(data["s"]),
                int(data.get("e", 0)),
            )
            # A longer idle window after a reload does not revive a cookie idle too long.
            idle = min(self.idle, int(data.get("w", self.idle)))
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
        if len(session.id) < 16:
            return None
        now = time.time() if now is None else now
        if now - session.seen_at > idle or now - session.issued_at > self.max_age:
            return None
        return session if now <= session.ends(self.max_age) else None

    def new(self, identity: Identity, now: float | None = None) -> SignedSession:
        stamp = int(time.time() if now is None else now)
        return SignedSession(
            secrets.token_urlsafe(18), identity, stamp, stamp, stamp + self.max_age
        )

    def touched(self, session: SignedSession, now: float | None = None) -> SignedSession | None:
        """A refreshed session when the cookie is due for re-issue (sliding idle expiry)."""
        stamp = int(time.time() if now is None else now)
        if stamp - session.seen_at < REFRESH_AFTER:
            return None
        return dataclasses.replace(session, seen_at=stamp)


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
        sites: Sequence[str] = (),
    ) -> None:
        self.codec = codec
        self._store = store
        self._keep_groups = keep_groups
        self._revoked = revoked_kind
        self._sites = tuple(sites)  # each has its own index per person (device limits)

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
        self._revoke_id(session.id, session.ends(self.max_age), why)

    def _revoke_id(self, session_id: str, ends: float, why: str = "") -> None:
        left = ends - time.time()  # as long as the cookie itself could be used, no longer
        self._store.set(f"{self._revoked}:{session_id}", why or 1, ttl=max(left, 1) + 60)

    def limit_devices(self, session: SignedSession, site: str, most: int) -> int:
        """Keep at most ``most`` live sessions of this person on ``site``, ``session`` (the
        new one) among them: the oldest others are signed out everywhere, marked so that
        their device can be told why. How many were signed out.

        A person is an address someone proved (a sign-in, a mailed link...): an address a
        payer merely typed into a checkout counts only against that provider's own sessions,
        so typing someone else's address signs nobody else out."""
        if most <= 0:
            return 0
        ident = session.identity
        others = [
            e
            for e in self.of_person(ident.email, site)
            if e["id"] != session.id and _same_person(e, ident)
        ]
        others.reverse()  # of_person lists newest first: now oldest first
        extra = others[: max(0, len(others) - (most - 1))]
        for entry in extra:
            self._revoke_id(entry["id"], _ends(entry, self.max_age), DEVICE_LIMIT)
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
        """Index a new session under its person (for the console's list and device limits):
        where it started, from which address and browser. Best effort: never refuses a
        sign-in."""
        ident = session.identity
        entry = {
            "id": session.id,
            "issued": session.issued_at,
            "seen": session.seen_at,
            "expires": session.ends(self.max_age),
            "provider": ident.provider,
        } | about
        if not ident.email_proven:
            entry["proven"] = False
        with contextlib.suppress(StoreUnavailable, StateFull):
            key = _index_key(ident.email, about.get("site", ""))
            self._store.append(key, [entry], keep=PERSON_INDEX, ttl=self.codec.max_age)

    def seen(self, session: SignedSession, **about: str) -> None:
        """When and from where a session was last used (a key of its own, so that a busy
        device never pushes the person's other sign-ins out of the index). Best effort."""
        left = session.ends(self.max_age) - time.time()
        with contextlib.suppress(StoreUnavailable, StateFull):
            value = {"seen": session.seen_at} | about
            self._store.set(f"session-seen:{session.id}", value, ttl=max(left, 1) + 60)

    def of_person(self, email: str, site: str | None = None) -> list[dict[str, Any]]:
        """The person's live sessions (on one ``site``, or everywhere), each once, with when
        and where each was last seen. Each site keeps its own index, so sign-ins elsewhere
        never push a site's sessions out of the count its device limit makes."""
        latest: dict[str, dict[str, Any]] = {}
        for where in ("", *self._sites) if site is None else (site,):
            for entry in self._store.newest(_index_key(email, where), PERSON_INDEX):
                if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                    latest[entry["id"]] = {**entry, **latest.get(entry["id"], {})}
        now = time.time()
        alive = [e for e in latest.values() if now < _ends(e, self.max_age)]
        alive.sort(key=lambda e: -float(e.get("issued", 0)))  # newest first, stable for ties
        ids = [e["id"] for e in alive]
        marks = self._store.get_many(
            [
                _person_key(email),
                *(f"{self._revoked}:{i}" for i in ids),
                *(f"session-seen:{i}" for i in ids),
            ]
        )
        everywhere, revoked, seen = marks[0], marks[1 : len(ids) + 1], marks[len(ids) + 1 :]
        return [
            e | (last if isinstance(last, dict) else {})
            for e, mark, last in zip(alive, revoked, seen, strict=True)
            if mark is None and not _revoked_since([everywhere], float(e.get("issued", 0)))
        ]

    def revoke_person(self, email: str) -> int:
        """Sign this person out everywhere: every session of theirs issued until now, on
        every worker and instance (the index may not list them all: the mark covers all)."""
        live = len(self.of_person(email))
        self._store.set(_person_key(email), int(time.time()), ttl=LONGEST_SESSION + 60)
        return live

    def revoke_at_idp(self, provider: str, *, subject: str = "", idp_session: str = "") -> None:
        """Back-channel logout: every session of this IdP session or subject issued until now
        (console sessions ask these marks too, so they live as long as either kind)."""
        now = int(time.time())
        for key in _idp_keys(provider, subject, idp_session):
            self._store.set(key, now, ttl=LONGEST_SESSION + 60)


def _ends(entry: dict[str, Any], max_age: int) -> float:
    """When an indexed session expires (older entries: ``max_age`` after issue)."""
    ends = entry.get("expires")
    return float(ends) if isinstance(ends, int | float) else float(entry.get("issued", 0)) + max_age


def _same_person(entry: dict[str, Any], identity: Identity) -> bool:
    """Whether an indexed session counts as this identity's person for device limits."""
    if not identity.email_proven:
        return entry.get("provider") == identity.provider and entry.get("proven") is False
    return entry.get("proven", True) is not False


def _person_key(email: str) -> str:
    return f"person-revoked:{_digest(email.strip().lower())}"


def _index_key(email: str, site: str = "") -> str:
    person = _digest(email.strip().lower())
    return f"sessions-of:{person}:{site}" if site else f"sessions-of:{person}"


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
