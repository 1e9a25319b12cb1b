"""A remote JSON Web Key Set, cached, and fetched again when a token names a key id we do not
have (the issuer rotated its keys), but not more often than REFETCH_INTERVAL, so a flood of
made-up key ids cannot turn into a flood of fetches."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

REFETCH_INTERVAL = 5.0  # seconds


class KeySetUnavailable(Exception):
    """The key set could not be fetched or read."""


class RemoteKeySet:
    def __init__(self, fetch: Callable[[], Any]) -> None:
        """``fetch`` returns the JWKS document (a dict) or raises KeySetUnavailable."""
        self._fetch = fetch
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._fetched_at = 0.0

    def for_kid(self, kid: str | None) -> KeySet:
        with self._lock:
            unknown = self._keys is None or (
                kid is not None and all(key.kid != kid for key in self._keys.keys)
            )
            stale = time.monotonic() - self._fetched_at > REFETCH_INTERVAL
            if unknown and (self._keys is None or stale):
                try:
                    self._keys = KeySet.import_key_set(self._fetch())
                except (JoseError, ValueError, TypeError, KeyError):
                    raise KeySetUnavailable() from None
                self._fetched_at = time.monotonic()
            assert self._keys is not None
            return self._keys

    def forget(self) -> None:
        with self._lock:
            self._keys = None
