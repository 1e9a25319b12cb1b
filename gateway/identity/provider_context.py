"""What providers may use from the gateway: settings, shared store, rate limiter, entitlements,
the session revocations (back-channel logout) and the cookie jar. Nothing from ``web``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from gateway.cookies import CookieJar
from gateway.entitlements import EntitlementStore
from gateway.ratelimit import RateLimiter
from gateway.sessions import Sessions
from gateway.settings_fields import IdentityModel
from gateway.store import Store

if TYPE_CHECKING:
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


SettingsT = TypeVar("SettingsT", bound=IdentityModel)


class ProviderBase(Generic[SettingsT]):
    """What every provider holds: its ``[identity.<name>]`` name and settings, the chooser's
    label (the configured one, else the type's own) and the gateway's shared context."""

    label = "Sign in"

    def __init__(self, settings: SettingsT, ctx: ProviderContext) -> None:
        self.name: str = settings.name
        self.label = settings.label or type(self).label
        self._settings = settings
        self._ctx = ctx
