"""What every identity provider produces, and the small protocol they all implement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from flask import Request
from werkzeug.wrappers import Response


@dataclass(frozen=True)
class Identity:
    """Who the visitor is, as a provider vouches for it."""

    email: str
    name: str = ""
    groups: tuple[str, ...] = ()
    provider: str = ""  # the [identity.<name>] that vouched
    email_verified: bool = True
    entitlements: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "name": self.name,
            "groups": list(self.groups),
            "provider": self.provider,
            "email_verified": self.email_verified,
            "entitlements": list(self.entitlements),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Identity:
        return cls(
            email=str(data["email"]),
            name=str(data.get("name", "")),
            groups=tuple(data.get("groups", ())),
            provider=str(data.get("provider", "")),
            email_verified=bool(data.get("email_verified", True)),
            entitlements=tuple(data.get("entitlements", ())),
        )


@dataclass(frozen=True)
class PendingLogin:
    """Where a sign-in started and where it must land: carried through the provider."""

    site: str
    return_url: str
    next: str = ""  # a gateway page (/embed/..., /download/...) to return to instead of 23


class Provider(Protocol):
    """One configured ``[identity.<name>]``.

    ``begin`` either knows the visitor at once (an Identity) or answers with what the
    visitor must do next (a redirect to an IdP, a login form). Providers never call 23.
    """

    name: str
    label: str

    def begin(self, request: Request, pending: PendingLogin) -> Response | Identity: ...


class CallbackProvider(Provider, Protocol):
    """A provider the visitor leaves and comes back to (OIDC)."""

    def complete(self, request: Request) -> tuple[Identity, PendingLogin]: ...
