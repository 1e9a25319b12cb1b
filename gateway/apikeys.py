"""Bearer API keys for backends. Only SHA-256 digests are configured; lookups are constant-time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from gateway.errors import Unauthorized
from gateway.settings import ApiKeySettings

_CHALLENGE = 'Bearer realm="23-gateway"'
MAX_KEY_LENGTH = 512


class ApiKeyring:
    def __init__(self, keys: Mapping[str, ApiKeySettings]) -> None:
        self._keys = tuple(keys.values())

    def authenticate(self, authorization: str | None) -> ApiKeySettings:
        """The key named by an ``Authorization: Bearer <key>`` header, or Unauthorized."""
        scheme, _, presented = (authorization or "").partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            raise Unauthorized(
                "Send the API key as 'Authorization: Bearer <key>'.",
                code="missing_api_key",
                challenge=_CHALLENGE,
            )
        digest = hashlib.sha256(presented[:MAX_KEY_LENGTH].encode()).digest()
        match = None
        for key in self._keys:  # every key is compared, so timing says nothing about which
            if hmac.compare_digest(digest, key.key_sha256):
                match = key
        if match is None or len(presented) > MAX_KEY_LENGTH:
            raise Unauthorized(
                "The API key is not valid.", code="invalid_api_key", challenge=_CHALLENGE
            )
        return match
