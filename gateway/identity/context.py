"""What providers may use from the gateway: settings, shared store, rate limiter, entitlements."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.entitlements import EntitlementStore
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings
from gateway.store import Store


@dataclass(frozen=True)
class ProviderContext:
    gateway: GatewaySettings
    store: Store
    limiter: RateLimiter
    entitlements: EntitlementStore | None = None  # present when any site or identity needs it
