"""Signed paywall tokens: a paywall (Piano, Memberful, a custom one) vouches for the visitor.

The paywall sends the visitor to ``/sso/<site>/login?return_url=U&jwt=<token>``. The token is
checked with joserfc: HS256 with the shared ``secret``, or RS256/ES256 with the keys at
``jwks_url`` (fetched again when a new key id appears); ``iss``, ``aud``, ``exp`` (required),
``nbf`` and ``iat`` with ``leeway``; ``jti`` is required and accepted once (remembered in the
shared store until the token expires). Claims map to e-mail, name and entitlements.

The token is honoured before any chooser or session reuse (``before_chooser``), but never
silently over another signed-in visitor: ``peek`` checks it without using it up, so the web
layer can ask "continue as ...?" first (login CSRF).
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, Literal

import requests
from flask import Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey
from joserfc.jws import extract_compact
from pydantic import Field, SecretStr, model_validator
from werkzeug.wrappers import Response

from gateway import tracing
from gateway.errors import GatewayError, Unauthorized
from gateway.identity.base import Identity, PendingLogin
from gateway.identity.jwks import KeySetUnavailable, RemoteKeySet
from gateway.identity.provider_context import ProviderBase, ProviderContext
from gateway.logs import audit
from gateway.settings_fields import (
    IdentityModel,
    Integer,
    OptionalFetchUrl,
    RequiredText,
    Secret,
    Text,
)

log = logging.getLogger("gateway.paywall")

MAX_TOKEN_LENGTH = 8192
MAX_LIFETIME = 86400  # a sign-in token that lives longer than a day is a mistake: refuse it


class PaywallJwtSettings(IdentityModel):
    type: Literal["jwt"]
    issuer: RequiredText
    audience: RequiredText
    secret: Secret = SecretStr("")  # HS256 ...
    jwks_url: OptionalFetchUrl = ""  # ... or RS256/ES256 keys from here
    email_claim: Text = "email"
    name_claim: Text = "name"
    entitlements_claim: Text = "entitlements"
    leeway: Integer = Field(30, ge=0, le=300)

    @model_validator(mode="after")
    def _one_key_source(self) -> PaywallJwtSettings:
        if bool(self.secret.get_secret_value()) == bool(self.jwks_url):
            raise ValueError("set exactly one of secret (HS256) or jwks_url (RS256/ES256)")
        return self


class PaywallTokenRefused(Unauthorized, code="invalid_paywall_token"):
    """The paywall's sign-in link is not valid. Please go back and try again."""


class PaywallTokenReplayed(Unauthorized, code="paywall_token_replayed"):
    """This sign-in link was already used. Please go back to the paywall."""


class PaywallTokenMissing(Unauthorized, code="paywall_token_required"):
    """This site is entered through its paywall. Please start there."""


class PaywallKeysUnavailable(GatewayError, status=502, code="identity_provider_unavailable"):
    """The paywall's keys cannot be fetched right now. Please try again shortly."""


class PaywallJwtProvider(ProviderBase[PaywallJwtSettings]):
    label = "Continue from the paywall"
    on_chooser = False  # the token comes from the paywall, never from a button here

    def __init__(self, settings: PaywallJwtSettings, ctx: ProviderContext) -> None:
        super().__init__(settings, ctx)
        self._store = ctx.store
        self._leeway = settings.leeway
        self._timeout = (ctx.gateway.upstream_connect_timeout, ctx.gateway.upstream_read_timeout)
        if settings.secret.get_secret_value():
            self._algorithms = ["HS256"]
            self._secret: OctKey | None = OctKey.import_key(settings.secret.get_secret_value())
            self._jwks: RemoteKeySet | None = None
        else:
            self._algorithms = ["RS256", "ES256"]
            self._secret = None
            self._http = requests.Session()
            self._http.trust_env = False
            self._jwks = RemoteKeySet(self._fetch_jwks)

    def _fetch_jwks(self) -> Any:
        try:
            with tracing.span("paywall jwks", client=True, **{"gateway.provider": self.name}):
                response = self._http.get(
                    self._settings.jwks_url, timeout=self._timeout, allow_redirects=False
                )
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError):
            raise KeySetUnavailable() from None

    def before_chooser(self, request: Request) -> bool:
        return bool(_token(request))

    def begin(self, request: Request, pending: PendingLogin) -> Response | Identity:
        token = _token(request)
        if not token:
            raise PaywallTokenMissing()
        return self.identity_from(token)

    def peek(self, request: Request) -> Identity:
        """Who the request's token vouches for, checked but not used up."""
        return self.identity_from(_token(request), consume=False)

    def identity_from(self, token: str, now: float | None = None, consume: bool = True) -> Identity:
        """The visitor the token vouches for; a refusal is audited (never the token)."""
        try:
            return self._identity(token, time.time() if now is None else now, consume)
        except (PaywallTokenRefused, PaywallTokenReplayed) as exc:
            audit("paywall_refused", identity=self.name, reason=exc.code)
            raise

    def _identity(self, token: str, now: float, consume: bool) -> Identity:
        claims = self._verified_claims(token, now, consume)
        email = claims.get(self._settings.email_claim)
        if not isinstance(email, str) or not email.strip():
            raise PaywallTokenRefused("The paywall did not say who you are.", code="no_email")
        name = claims.get(self._settings.name_claim, "")
        granted = claims.get(self._settings.entitlements_claim, [])
        if isinstance(granted, str):
            granted = [granted]
        entitlements = (
            tuple(e for e in granted if isinstance(e, str) and e)[:100]
            if isinstance(granted, list)
            else ()
        )
        return Identity(
            email=email.strip(),
            name=name[:200] if isinstance(name, str) else "",
            provider=self.name,
            entitlements=entitlements,
        )

    def _key(self, token: str) -> OctKey | KeySet:
        if self._secret is not None:
            return self._secret
        assert self._jwks is not None
        try:
            kid = extract_compact(token.encode()).headers().get("kid")
        except (JoseError, ValueError):
            raise PaywallTokenRefused() from None
        try:
            return self._jwks.for_kid(kid if isinstance(kid, str) else None)
        except KeySetUnavailable:
            raise PaywallKeysUnavailable() from None

    def _verified_claims(self, token: str, now: float, consume: bool) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise PaywallTokenRefused()
        key = self._key(token)
        try:
            decoded = jwt.decode(token, key, algorithms=self._algorithms)
            registry = jwt.JWTClaimsRegistry(
                now=int(now),
                leeway=self._leeway,
                iss={"essential": True, "value": self._settings.issuer},
                aud={"essential": True, "value": self._settings.audience},
                exp={"essential": True},
                jti={"essential": True},
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as exc:
            log.warning(
                "paywall token refused", extra={"identity": self.name, "reason": type(exc).__name__}
            )
            raise PaywallTokenRefused() from None
        claims = dict(decoded.claims)
        exp, jti = float(claims["exp"]), claims["jti"]  # exp: a NumericDate, checked above
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise PaywallTokenRefused()
        if exp - now > MAX_LIFETIME:
            raise PaywallTokenRefused(
                "The paywall's sign-in link lives too long to be trusted.", code="token_too_long"
            )
        # Accepted once: remembered until it could no longer pass the expiry check anyway.
        marker = f"jwt-jti:{self.name}:" + hashlib.sha256(jti.encode()).hexdigest()
        if not consume:
            if self._store.get(marker) is not None:
                raise PaywallTokenReplayed()
        elif not self._store.add(marker, 1, ttl=max(exp - now + self._leeway, 1)):
            raise PaywallTokenReplayed()
        return claims


def _token(request: Request) -> str:
    return (request.values.get("jwt") or "").strip()
