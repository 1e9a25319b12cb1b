"""OpenID Connect sign-in: authorization code with PKCE (S256), through Authlib and joserfc.

``state`` and ``nonce`` (256 random bits each) and the PKCE verifier travel in a signed,
short-lived cookie bound to the browser; a state is also remembered as used in the shared
store, so a callback can never be replayed, even within the cookie's lifetime. The ID token is
checked for signature (JWKS, refetched once when a new key id appears), issuer, audience,
expiry and nonce before anything reaches 23.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from flask import Request, redirect
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from werkzeug.wrappers import Response

from gateway.errors import BadRequest, GatewayError, Unauthorized
from gateway.identity.base import Identity, PendingLogin
from gateway.identity.context import ProviderContext
from gateway.identity.jwks import KeySetUnavailable, RemoteKeySet
from gateway.settings import IdentitySettings

log = logging.getLogger("gateway.oidc")

STATE_COOKIE = "gw_oidc"
STATE_MAX_AGE = 600  # seconds a visitor may spend at the provider
MAX_PENDING = 3  # sign-ins in flight per browser (several tabs)
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


class ProviderUnavailable(GatewayError):
    status = 502
    code = "identity_provider_unavailable"
    default_message = "The sign-in service is unavailable. Please try again shortly."


class SignInFailed(BadRequest):
    code = "sign_in_failed"
    default_message = "Sign-in could not be completed. Please start again."


class SignInCancelled(Unauthorized):
    code = "sign_in_cancelled"
    default_message = "Sign-in was cancelled."


def callback_path(identity_name: str) -> str:
    return f"/sso/oidc/{identity_name}/callback"


class OidcProvider:
    label = "Sign in with your company account"

    def __init__(self, settings: IdentitySettings, ctx: ProviderContext) -> None:
        self.name = settings.name
        self.label = settings.options["label"] or self.label  # shown on the chooser
        self._o = settings.options
        self._ctx = ctx
        self._issuer: str = self._o["issuer"]
        self.redirect_uri = ctx.gateway.public_url + callback_path(self.name)
        self._timeout = (ctx.gateway.upstream_connect_timeout, ctx.gateway.upstream_read_timeout)
        self._http = requests.Session()
        self._http.trust_env = False
        self._states = URLSafeTimedSerializer(
            list(reversed(ctx.gateway.secret_keys)), salt=f"oidc-state:{self.name}"
        )
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self.jwks = RemoteKeySet(self._jwks_document)

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
            self._o["client_id"],
            scope=" ".join(self._o["scopes"]),
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
        )
        url, _ = client.create_authorization_url(
            meta["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
        )
        in_flight = self._pending_states(request)
        in_flight[state] = {
            "n": nonce,
            "v": verifier,
            "s": pending.site,
            "r": pending.return_url,
            "x": pending.next,
            "t": int(time.time()),
        }
        newest = sorted(in_flight.items(), key=lambda kv: kv[1]["t"])[-MAX_PENDING:]
        response = redirect(url)
        response.set_cookie(
            STATE_COOKIE,
            self._states.dumps(dict(newest)),
            max_age=STATE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            path="/sso/",
            secure=self._ctx.gateway.secure_cookies,
        )
        return response

    def _pending_states(self, request: Request) -> dict[str, dict[str, Any]]:
        try:
            data = self._states.loads(request.cookies.get(STATE_COOKIE, ""), max_age=STATE_MAX_AGE)
        except (BadSignature, SignatureExpired):
            return {}
        return data if isinstance(data, dict) else {}

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
        pending = self._pending_states(request).get(state) if state else None
        if not pending or not code:
            raise SignInFailed(
                "This sign-in link is not valid for this browser. Please start again.",
                code="invalid_state",
            )
        # Single use on the gateway's side, whatever the cookie still says.
        marker = "oidc-state:" + hashlib.sha256(state.encode()).hexdigest()
        if not self._ctx.store.add(marker, 1, ttl=STATE_MAX_AGE + LEEWAY):
            raise SignInFailed(
                "This sign-in was already used. Please start again.", code="state_replayed"
            )
        tokens = self._exchange(code, pending["v"])
        claims = self._verify_id_token(tokens.get("id_token"), pending["n"])
        if self._o["email_claim"] not in claims and tokens.get("access_token"):
            claims = {**self._userinfo(tokens["access_token"], claims["sub"]), **claims}
        identity = self._identity(claims)
        return identity, PendingLogin(pending["s"], pending["r"], pending.get("x", ""))

    def _exchange(self, code: str, verifier: str) -> dict[str, Any]:
        meta = self.metadata()
        client = OAuth2Session(
            self._o["client_id"],
            self._o["client_secret"],
            token_endpoint_auth_method=self._o["token_endpoint_auth_method"],
            redirect_uri=self.redirect_uri,
        )
        client.trust_env = False
        try:
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
                aud={"essential": True, "value": self._o["client_id"]},
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
        if len(audiences) > 1 and claims.get("azp") != self._o["client_id"]:
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
        email = claims.get(self._o["email_claim"])
        if not isinstance(email, str) or not email:
            raise SignInFailed(
                "Your account has no e-mail address to sign in with.", code="no_email"
            )
        verified = claims.get("email_verified")
        email_verified = verified is True or verified == "true"
        groups = claims.get(self._o["groups_claim"], [])
        if isinstance(groups, str):
            groups = [groups]
        name = claims.get(self._o["name_claim"], "")
        return Identity(
            email=email,
            name=name if isinstance(name, str) else "",
            groups=tuple(g for g in groups if isinstance(g, str))
            if isinstance(groups, list)
            else (),
            provider=self.name,
            email_verified=email_verified or not self._o["require_email_verified"],
        )

    # ------------------------------------------------------------------ logout

    def end_session_url(self, post_logout_redirect_uri: str) -> str | None:
        """RP-initiated logout at the provider, when it offers one."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except ProviderUnavailable:
            return None
        if not isinstance(endpoint, str):
            return None
        query = urlencode(
            {
                "client_id": self._o["client_id"],
                "post_logout_redirect_uri": post_logout_redirect_uri,
            }
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
