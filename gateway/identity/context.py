"""What providers may use from the gateway: its settings, shared store and rate limiter."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings
from gateway.store import Store


@dataclass(frozen=True)
class ProviderContext:
    gateway: GatewaySettings
    store: Store
    limiter: RateLimiter
