"""Which class serves each identity ``type``: a new provider type is one module and one line."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gateway.identity.base import Provider
from gateway.identity.context import ProviderContext
from gateway.identity.email_link import EmailLinkProvider
from gateway.identity.header import HeaderProvider
from gateway.identity.oidc import OidcProvider
from gateway.identity.paywall_jwt import PaywallJwtProvider
from gateway.identity.static import StaticProvider
from gateway.identity.stripe_checkout import StripeCheckoutProvider
from gateway.settings import IdentitySettings

# Adding a provider type: one module and one line here.
PROVIDER_TYPES: Mapping[str, Callable[[IdentitySettings, ProviderContext], Provider]] = {
    "oidc": OidcProvider,
    "header": HeaderProvider,
    "static": StaticProvider,
    "jwt": PaywallJwtProvider,
    "stripe": StripeCheckoutProvider,
    "email": EmailLinkProvider,
}


def build_providers(
    identities: Mapping[str, IdentitySettings], ctx: ProviderContext
) -> dict[str, Provider]:
    """Providers for every configured identity whose type this version can sign in with."""
    return {
        name: PROVIDER_TYPES[ident.type](ident, ctx)
        for name, ident in identities.items()
        if ident.type in PROVIDER_TYPES
    }
