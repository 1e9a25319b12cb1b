"""The emulated site's state: its options, catalogue, users, issued tokens, call log and fault
mode, shared by its blueprints through ``current()``."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from itsdangerous import URLSafeTimedSerializer

from gateway.devsite.catalog import (
    LEVELS,
    Credential,
    Photo,
    User,
    demo_credentials,
    demo_photos,
    demo_users,
)
from gateway.devsite.oauth import OAuthVerifier
from gateway.twentythree.tokens import verify_token

TOKEN_LIFETIME = 15 * 60  # session and login tokens, as on 23
SESSION_IDLE = 30 * 60  # 23's signed sessions die after 30 idle minutes
COOKIE = "devsite_session"
MODES = ("ok", "slow", "down", "garbage", "hang", "error")

TokenTable = dict[str, tuple[float, dict[str, str]]]


@dataclass
class DevsiteOptions:
    remote_login_url: str = "http://127.0.0.1:8000/sso/demo/login"
    remote_logout_url: str = ""  # where "Log out" sends the visitor after the site's own
    return_param: str = "return_url"
    credentials: list[Credential] = field(default_factory=demo_credentials)
    photos: list[Photo] = field(default_factory=demo_photos)
    users: list[User] = field(default_factory=demo_users)
    site_name: str = "Demo Video Site"
    page_max: int = 100  # 23's pagination_max: the largest page photo/list serves
    # What twentythree-cli's `auth credentials` takes: exchanged at /api/2/user/tokens.
    api_tokens: tuple[str, ...] = ("demo-api-token-0123456789abcdef",)
    bearer_lifetime: int = 3600  # seconds a bearer token from user/tokens lives


class ApiFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class State:
    """What changes while the site runs: tokens issued, calls seen, the fault mode."""

    session_tokens: TokenTable = field(default_factory=dict)
    login_tokens: TokenTable = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "ok"  # one of MODES
    hang_seconds: float = 30.0
    page_max: int = 100
    bearer_lifetime: int = 3600
    bearers: dict[str, float] = field(default_factory=dict)  # bearer token -> expiry
    # Changes made to the catalogue once a listing has served a page ("the listing moves").
    moves: list[dict[str, Any]] = field(default_factory=list)
    uploads: dict[str, Any] = field(default_factory=dict)  # upload token -> UploadToken
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, table: TokenTable, data: dict[str, str]) -> str:
        token = secrets.token_hex(24)
        with self.lock:
            now = time.time()
            for key in [k for k, (exp, _) in table.items() if exp < now]:
                del table[key]
            table[token] = (now + TOKEN_LIFETIME, data)
        return token

    def redeem(self, table: TokenTable, token: str) -> dict[str, str] | None:
        with self.lock:
            entry = table.pop(token, None)  # single use: gone whether or not it is still valid
        if entry is None or entry[0] < time.time():
            return None
        return entry[1]

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append(entry)

    def issue_bearer(self) -> tuple[str, int]:
        token, expires = secrets.token_urlsafe(32), int(time.time()) + self.bearer_lifetime
        with self.lock:
            now = time.time()
            self.bearers = {t: e for t, e in self.bearers.items() if e > now}
            self.bearers[token] = expires
        return token, expires

    def bearer_valid(self, token: str) -> bool:
        with self.lock:
            expires = self.bearers.get(token)
        return expires is not None and expires > time.time()


class EmulatedSite:
    """Everything one emulated site knows, built once per app."""

    def __init__(self, options: DevsiteOptions) -> None:
        self.options = options
        self.state = State()
        self.verifier = OAuthVerifier(options.credentials)
        self.photos: dict[int, Photo] = {}
        self.restore_photos()
        self.users = {u.user_id: u for u in options.users}
        self.state.page_max = options.page_max
        self.state.bearer_lifetime = options.bearer_lifetime
        self.cookies = URLSafeTimedSerializer(secrets.token_hex(32), salt="devsite-session")

    def restore_photos(self) -> None:
        """The catalogue as the site started (tests may add, change and delete videos)."""
        with self.state.lock:
            self.photos = {p.photo_id: p for p in self.options.photos}

    def photo_list(self, newest_first: bool = False) -> list[Photo]:
        """The catalogue in upload order (ids grow with uploads), oldest or newest first."""
        with self.state.lock:
            return sorted(self.photos.values(), key=lambda ph: ph.photo_id, reverse=newest_first)

    def after_page(self, page: int) -> None:
        """Apply the listing moves due once a listing has served ``page``."""
        with self.state.lock:
            due = [m for m in self.state.moves if m["after_page"] == page]
            self.state.moves = [m for m in self.state.moves if m["after_page"] != page]
            for move in due:
                for photo_id in move.get("delete", ()):
                    self.photos.pop(photo_id, None)
                for photo in move.get("add", ()):
                    self.photos[photo.photo_id] = photo

    def token_opens(self, photo: Photo, token: str) -> bool:
        """The photo's base token, or an unexpired time-limited token made from it."""
        if hmac.compare_digest(token.encode(), photo.token.encode()):
            return True
        return verify_token(photo.token, photo.photo_id, token)


def current() -> EmulatedSite:
    site: EmulatedSite = current_app.extensions["devsite"]
    return site


def at_least(level: str, required: str) -> bool:
    return LEVELS.index(level) >= LEVELS.index(required)
