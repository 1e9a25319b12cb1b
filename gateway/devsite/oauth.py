"""Server-side OAuth 1.0a verification for the emulated site, done by oauthlib (never trusted)."""

from __future__ import annotations

import string
import threading
import time
from collections.abc import Iterable, Mapping

from oauthlib.oauth1 import RequestValidator, ResourceEndpoint

from gateway.devsite.catalog import Credential

_SAFE = frozenset(string.ascii_letters + string.digits + "-_")


class _Validator(RequestValidator):
    """Looks credentials up in a fixed table; remembers nonces for the timestamp window."""

    enforce_ssl = False
    timestamp_lifetime = 600
    client_key_length = (8, 64)
    access_token_length = (8, 64)
    nonce_length = (8, 64)

    def __init__(self, credentials: Iterable[Credential]) -> None:
        super().__init__()
        self._by_pair = {(c.consumer_key, c.access_token): c for c in credentials}
        self._consumers = {c.consumer_key: c.consumer_secret for c in self._by_pair.values()}
        self._tokens = {c.access_token: c.access_token_secret for c in self._by_pair.values()}
        self._nonces: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()

    @property
    def allowed_signature_methods(self) -> tuple[str, ...]:
        return ("HMAC-SHA1",)  # 23 accepts nothing else

    @property
    def safe_characters(self) -> set[str]:
        return set(_SAFE)

    @property
    def dummy_client(self) -> str:
        return "dummy-client-key"

    @property
    def dummy_access_token(self) -> str:
        return "dummy-access-token"

    def credential(self, client_key: str, token: str) -> Credential | None:
        return self._by_pair.get((client_key, token))

    def validate_client_key(self, client_key: str, request: object) -> bool:
        return client_key in self._consumers

    def validate_access_token(self, client_key: str, token: str, request: object) -> bool:
        return (client_key, token) in self._by_pair

    def validate_realms(self, *args: object, **kwargs: object) -> bool:
        return True

    def get_client_secret(self, client_key: str, request: object) -> str:
        return self._consumers.get(client_key, "dummy-secret")

    def get_access_token_secret(self, client_key: str, token: str, request: object) -> str:
        return self._tokens.get(token, "dummy-secret")

    def validate_timestamp_and_nonce(
        self,
        client_key: str,
        timestamp: str,
        nonce: str,
        request: object,
        request_token: str | None = None,
        access_token: str | None = None,
    ) -> bool:
        now = time.time()
        key = (client_key, access_token or "", nonce)
        with self._lock:
            if len(self._nonces) > 10_000:
                cutoff = now - 2 * self.timestamp_lifetime
                self._nonces = {k: t for k, t in self._nonces.items() if t > cutoff}
            if key in self._nonces:
                return False
            self._nonces[key] = now
        return True


class OAuthVerifier:
    """``level(...)`` -> the caller's permission level, or None when a signature is bad."""

    def __init__(self, credentials: Iterable[Credential]) -> None:
        self._validator = _Validator(credentials)
        self._endpoint = ResourceEndpoint(self._validator)

    def level(
        self, uri: str, http_method: str, body: str, headers: Mapping[str, str]
    ) -> str | None:
        valid, request = self._endpoint.validate_protected_resource_request(
            uri, http_method=http_method, body=body, headers=dict(headers)
        )
        if not valid or request is None:
            return None
        cred = self._validator.credential(request.client_key, request.resource_owner_key)
        return cred.level if cred else None
