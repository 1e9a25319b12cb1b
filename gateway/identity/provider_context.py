"""What providers may use from the gateway: settings, shared store, rate limiter, entitlements,
the session revocations (back-channel logout) and the cookie jar. Nothing from ``web``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.cookies import CookieJar
from gateway.entitlements import EntitlementStore
from gateway.ratelimit import RateLimiter
from gateway.sessions import Sessions
from gateway.store import Store

if TYPE_CHECKING:  # settings imports the registry, which imports the providers
    from gateway.settings import GatewaySettings


@dataclass(frozen=True)
class ProviderContext:
    gateway: GatewaySettings
    store: Store
    limiter: RateLimiter
    sessions: Sessions
    cookies: CookieJar
    entitlements: EntitlementStore | None = None  # present when any site or identity needs it
    identity_sites: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # who lists whom
