"""OpenID Connect sign-in: authorization code with PKCE (S256), through Authlib and joserfc.

``state`` and ``nonce`` (256 random bits each) and the PKCE verifier travel in a signed,
short-lived cookie bound to the browser; a state is also remembered as used in the shared
store, so a callback can never be replayed, even within the cookie's lifetime. The ID token is
checked for signature (JWKS, refetched once when a new key id appears), issuer, audience,
expiry and nonce before anything reaches 23.

Logout: RP-initiated (``end_session_url``) and OpenID Connect Back-Channel Logout 1.0 at
``POST /sso/oidc/<identity>/backchannel-logout``: a ``logout_token`` signed with the
provider's keys (iss, aud, iat, a single-use jti, the back-channel event, no nonce) revokes
every gateway session of its ``sid`` (or, without one, of its ``sub``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from flask import Request, jsonify, redirect
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from pydantic import Field
from werkzeug.wrappers import Response

from gateway import tracing
from gateway.cookies import OIDC_STATE
from gateway.errors import BadRequest, GatewayError, Unauthorized
from gateway.identity.base import Completed, Identity, PendingLogin, Route, step_path
from gateway.identity.jwks import KeySetUnavailable, RemoteKeySet
from gateway.identity.pending import STATE_MAX_AGE, PendingStates
from gateway.identity.provider_context import ProviderBase, ProviderContext
from gateway.logs import audit
from gateway.settings_fields import (
    Flag,
    IdentityModel,
    RequiredSecret,
    RequiredText,
    Strings,
    Text,
    Url,
)

log = logging.getLogger("gateway.oidc")

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_MAX_AGE = 600  # seconds: an older logout_token is refused (and its jti forgotten)
MAX_TOKEN_LENGTH = 16384
METADATA_TTL = 3600
ID_TOKEN_ALGORITHMS = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
]
LEEWAY = 60


class ProviderUnavailable(GatewayError, status=502, code="identity_provider_unavailable"):
    """The sign-in service is unavailable. Please try again shortly."""


class SignInFailed(BadRequest, code="sign_in_failed"):
    """Sign-in could not be completed. Please start again."""


class SignInCancelled(Unauthorized, code="sign_in_cancelled"):
    """Sign-in was cancelled."""


class OidcSettings(IdentityModel):
    type: Literal["oidc"]
    issuer: Url  # discovery at <issuer>/.well-known/openid-configuration
    client_id: RequiredText
    client_secret: RequiredSecret
    scopes: Strings = ("openid", "email", "profile")
    email_claim: Text = "email"
    name_claim: Text = "name"
    groups_claim: Text = "groups"
    require_email_verified: Flag = True
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post"] = Field(
        "client_secret_basic"
    )


class LogoutTokenRefused(Exception):
    """A back-channel logout_token failed a check; ``reason`` says which (for the audit)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OidcProvider(ProviderBase[OidcSettings]):
    label = "Sign in with your company account"
    kind = "oidc"

    def __init__(self, settings: OidcSettings, ctx: ProviderContext) -> None:
        super().__init__(settings, ctx)
        self._issuer = settings.issuer
        self.redirect_uri = ctx.gateway.public_url + step_path(self.kind, self.name, "callback")
        self._timeout = (ctx.gateway.upstream_connect_timeout, ctx.gateway.upstream_read_timeout)
        self._http = requests.Session()
        self._http.trust_env = False
        self._in_flight = PendingStates(
            ctx.cookies, OIDC_STATE, ctx.gateway.secret_keys, f"oidc-state:{self.name}"
        )
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self.jwks = RemoteKeySet(self._jwks_document)

    def routes(self) -> dict[str, Route]:
        return {
            "callback": Route(("GET",), lambda request: Completed(*self.complete(request))),
            "backchannel-logout": Route(("POST",), self.backchannel_logout),
        }

    # ------------------------------------------------------------------ provider documents

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self._http.get(url, timeout=self._timeout, allow_redirects=False)
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError):
            raise ProviderUnavailable() from None
        if not isinstance(data, dict):
            raise ProviderUnavailable()
        return data

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None or time.monotonic() - self._metadata_at > METADATA_TTL:
                data = self._get_json(f"{self._issuer}/.well-known/openid-configuration")
                if data.get("issuer") != self._issuer:
                    log.error("discovery issuer mismatch", extra={"identity": self.name})
                    raise ProviderUnavailable()
                for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(data.get(key), str):
                        raise ProviderUnavailable()
                self._metadata, self._metadata_at = data, time.monotonic()
            return self._metadata

    def _jwks_document(self) -> Any:
        try:
            with tracing.span("oidc jwks", client=True, **{"gateway.provider": self.name}):
                return self._get_json(self.metadata()["jwks_uri"])
        except ProviderUnavailable:
            raise KeySetUnavailable() from None

    def _keys(self, kid: str | None) -> KeySet:
        try:
            return self.jwks.for_kid(kid)
        except KeySetUnavailable:
            raise ProviderUnavailable() from None

    # ------------------------------------------------------------------ begin

    def begin(self, request: Request, pending: PendingLogin) -> Response | Identity:
        meta = self.metadata()
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)
        client = OAuth2Session(
            self._settings.client_id,
            scope=" ".join(self._settings.scopes),
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
        )
        url, _ = client.create_authorization_url(
            meta["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
        )
        response = redirect(url)
        entry = {"n": nonce, "v": verifier, "p": pending.to_json()}
        self._in_flight.add(request, response, state, entry)
        return response

    # ------------------------------------------------------------------ callback

    def complete(self, request: Request) -> tuple[Identity, PendingLogin]:
        if request.args.get("error"):
            if request.args["error"] in (
                "access_denied",
                "login_required",
                "interaction_required",
                "consent_required",
            ):
                raise SignInCancelled()
            raise SignInFailed()
        state = request.args.get("state", "")
        code = request.args.get("code", "")
        pending = self._in_flight.read(request).get(state) if state else None
        login = PendingLogin.from_json(pending.get("p")) if pending else None
        if not pending or not code or login is None:
            raise SignInFailed(
                "This sign-in link is not valid for this browser. Please start again.",
                code="invalid_state",
            )
        # Single use on the gateway's side, whatever the cookie still says. Marked only once
        # the IdP has accepted the code, so junk callbacks leave nothing in the store.
        marker = "oidc-state:" + hashlib.sha256(state.encode()).hexdigest()
        if self._ctx.store.get(marker) is not None:
            raise _replayed()
        tokens = self._exchange(code, pending["v"])
        claims = self._verify_id_token(tokens.get("id_token"), pending["n"])
        if not self._ctx.store.add(marker, 1, ttl=STATE_MAX_AGE + LEEWAY):
            raise _replayed()  # the same state, completed at the same moment elsewhere
        if self._settings.email_claim not in claims and tokens.get("access_token"):
            claims = {**self._userinfo(tokens["access_token"], claims["sub"]), **claims}
        identity = self._identity(claims)
        return identity, login

    def _exchange(self, code: str, verifier: str) -> dict[str, Any]:
        meta = self.metadata()
        client = OAuth2Session(
            self._settings.client_id,
            self._settings.client_secret.get_secret_value(),
            token_endpoint_auth_method=self._settings.token_endpoint_auth_method,
            redirect_uri=self.redirect_uri,
        )
        client.trust_env = False
        try:
            with tracing.span("oidc token", client=True, **{"gateway.provider": self.name}):
                token = client.fetch_token(
                    meta["token_endpoint"],
                    code=code,
                    code_verifier=verifier,
                    grant_type="authorization_code",
                    timeout=self._timeout,
                )
        except AuthlibBaseError as exc:
            log.warning(
                "token exchange refused", extra={"identity": self.name, "oauth_error": exc.error}
            )
            raise SignInFailed() from None
        except requests.RequestException:
            raise ProviderUnavailable() from None
        return dict(token)

    def _verify_id_token(self, id_token: Any, nonce: str) -> dict[str, Any]:
        if not isinstance(id_token, str):
            raise SignInFailed()
        try:
            kid = extract_compact(id_token.encode()).headers().get("kid")
            token = jwt.decode(id_token, self._keys(kid), algorithms=ID_TOKEN_ALGORITHMS)
            registry = jwt.JWTClaimsRegistry(
                leeway=LEEWAY,
                iss={"essential": True, "value": self._issuer},
                aud={"essential": True, "value": self._settings.client_id},
                sub={"essential": True},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            )
            registry.validate(token.claims)
        except (JoseError, ValueError) as exc:
            log.warning(
                "id token refused", extra={"identity": self.name, "reason": type(exc).__name__}
            )
            raise SignInFailed() from None
        claims = dict(token.claims)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self._settings.client_id:
            raise SignInFailed()
        return claims

    def _userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        endpoint = self.metadata().get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return {}
        try:
            response = self._http.get(
                endpoint, timeout=self._timeout, headers={"Authorization": f"Bearer {access_token}"}
            )
            response.raise_for_status()
            info = response.json()
        except (requests.RequestException, ValueError):
            raise ProviderUnavailable() from None
        if not isinstance(info, dict) or info.get("sub") != subject:
            raise SignInFailed()  # userinfo about someone else must never be believed
        return info

    def _identity(self, claims: dict[str, Any]) -> Identity:
        email = claims.get(self._settings.email_claim)
        if not isinstance(email, str) or not email:
            raise SignInFailed(
                "Your account has no e-mail address to sign in with.", code="no_email"
            )
        verified = claims.get("email_verified")
        email_verified = verified is True or verified == "true"
        groups = claims.get(self._settings.groups_claim, [])
        if isinstance(groups, str):
            groups = [groups]
        name = claims.get(self._settings.name_claim, "")
        return Identity(
            email=email,
            name=name if isinstance(name, str) else "",
            groups=tuple(g for g in groups if isinstance(g, str))
            if isinstance(groups, list)
            else (),
            provider=self.name,
            email_verified=email_verified or not self._settings.require_email_verified,
            subject=str(claims["sub"]),
            idp_session=claims["sid"] if isinstance(claims.get("sid"), str) else "",
        )

    # ------------------------------------------------------------------ logout

    def end_session_url(
        self, identity: Identity, post_logout_redirect_uri: str, state: str
    ) -> str | None:
        """RP-initiated logout at the provider, when it offers one."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except ProviderUnavailable:
            return None
        if not isinstance(endpoint, str):
            return None
        query = urlencode(
            {
                "client_id": self._settings.client_id,
                "post_logout_redirect_uri": post_logout_redirect_uri,
                "state": state,
            }
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def backchannel_logout(self, request: Request) -> Response:
        """OpenID Connect Back-Channel Logout 1.0: the provider says a session has ended."""
        try:
            claims = self._verify_logout_token(request.form.get("logout_token", ""))
        except LogoutTokenRefused as exc:
            audit("backchannel_logout_refused", provider=self.name, reason=exc.reason)
            body = {"error": "invalid_request", "error_description": "logout_token refused"}
            response = jsonify(body)
            response.status_code = 400
            return response
        except ProviderUnavailable:
            audit("backchannel_logout_refused", provider=self.name, reason="keys_unavailable")
            response = jsonify({"error": "temporarily_unavailable"})
            response.status_code = 503
            return response
        sid, sub = claims.get("sid"), claims.get("sub")
        if isinstance(sid, str) and sid:
            self._ctx.sessions.revoke_at_idp(self.name, idp_session=sid)
        else:
            self._ctx.sessions.revoke_at_idp(self.name, subject=str(sub))
        audit(
            "sso_backchannel_logout",
            provider=self.name,
            by="sid" if isinstance(sid, str) and sid else "sub",
        )
        return Response("", 200, headers={"Cache-Control": "no-store"})

    def _verify_logout_token(self, token: str) -> dict[str, Any]:
        """Back-channel logout: decode and verify, check what a logout token must say, and
        accept each one once."""
        claims = self._decoded_logout_token(token)
        _check_logout_semantics(claims)
        self._use_logout_token_once(claims["jti"])
        return claims

    def _decoded_logout_token(self, token: str) -> dict[str, Any]:
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise LogoutTokenRefused("malformed")
        try:
            header = extract_compact(token.encode()).headers()
        except (JoseError, ValueError):
            raise LogoutTokenRefused("malformed") from None
        if header.get("typ") not in (None, "JWT", "logout+jwt"):
            raise LogoutTokenRefused("wrong_type")
        kid = header.get("kid")
        keys = self._keys(kid if isinstance(kid, str) else None)
        try:
            decoded = jwt.decode(token, keys, algorithms=ID_TOKEN_ALGORITHMS)
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY,
                iss={"essential": True, "value": self._issuer},
                aud={"essential": True, "value": self._settings.client_id},
                iat={"essential": True},
                jti={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise LogoutTokenRefused(type(exc).__name__) from None
        return dict(decoded.claims)

    def _use_logout_token_once(self, jti: str) -> None:
        marker = f"bcl-jti:{self.name}:" + hashlib.sha256(jti.encode()).hexdigest()
        if not self._ctx.store.add(marker, 1, ttl=2 * LOGOUT_TOKEN_MAX_AGE + LEEWAY):
            raise LogoutTokenRefused("replayed")


def _check_logout_semantics(claims: Mapping[str, Any]) -> None:
    """What makes a verified JWT a logout token (OpenID Connect Back-Channel Logout 2.6)."""
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise LogoutTokenRefused("no_logout_event")
    if "nonce" in claims:
        raise LogoutTokenRefused("nonce_present")  # an ID token passed off as a logout token
    sid, sub = claims.get("sid"), claims.get("sub")
    if not (isinstance(sid, str) and sid) and not (isinstance(sub, str) and sub):
        raise LogoutTokenRefused("no_sid_or_sub")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or abs(time.time() - iat) > LOGOUT_TOKEN_MAX_AGE:
        raise LogoutTokenRefused("stale")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise LogoutTokenRefused("bad_jti")


def _replayed() -> SignInFailed:
    return SignInFailed("This sign-in was already used. Please start again.", code="state_replayed")
