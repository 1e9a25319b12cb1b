"""Which settings model and provider class serve each identity ``type``.

A new provider type is one module (its settings model beside its provider class) and one line
here; ``settings.py`` builds its discriminated union on ``type`` from this table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from gateway.identity.base import Provider
from gateway.identity.email_link import EmailLinkProvider, EmailLinkSettings
from gateway.identity.header import HeaderProvider, HeaderSettings
from gateway.identity.ldap import LdapProvider, LdapSettings
from gateway.identity.network import NetworkProvider, NetworkSettings
from gateway.identity.oidc import OidcProvider, OidcSettings
from gateway.identity.paywall_jwt import PaywallJwtProvider, PaywallJwtSettings
from gateway.identity.provider_context import ProviderContext
from gateway.identity.saml import SamlProvider, SamlSettings
from gateway.identity.static import StaticProvider, StaticSettings
from gateway.identity.stripe_checkout import StripeCheckoutProvider, StripeSettings
from gateway.settings_fields import IdentityModel


class ProviderType(NamedTuple):
    settings: type[IdentityModel]
    provider: Callable[[Any, ProviderContext], Provider]


PROVIDER_TYPES: dict[str, ProviderType] = {
    "oidc": ProviderType(OidcSettings, OidcProvider),
    "header": ProviderType(HeaderSettings, HeaderProvider),
    "static": ProviderType(StaticSettings, StaticProvider),
    "jwt": ProviderType(PaywallJwtSettings, PaywallJwtProvider),
    "stripe": ProviderType(StripeSettings, StripeCheckoutProvider),
    "email": ProviderType(EmailLinkSettings, EmailLinkProvider),
    "saml": ProviderType(SamlSettings, SamlProvider),
    "ldap": ProviderType(LdapSettings, LdapProvider),
    "network": ProviderType(NetworkSettings, NetworkProvider),
}


def build_providers(
    identities: Mapping[str, IdentityModel], ctx: ProviderContext
) -> dict[str, Provider]:
    """A provider for every configured identity."""
    return {
        name: PROVIDER_TYPES[ident.type].provider(ident, ctx) for name, ident in identities.items()
    }
