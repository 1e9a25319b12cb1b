"""The long-lived objects one gateway process shares between requests."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from gateway.apikeys import ApiKeyring
from gateway.cookies import CookieJar
from gateway.dependencies import DependencyProbe
from gateway.entitlements import EntitlementStore
from gateway.identity.base import IdentifiesEachRequest, Provider
from gateway.identity.context import ProviderContext
from gateway.identity.registry import build_providers
from gateway.policy import StandingLookup
from gateway.ratelimit import RateLimiter
from gateway.sessions import SessionCodec, Sessions
from gateway.settings import Settings
from gateway.store import Store, open_store
from gateway.telemetry import Telemetry
from gateway.twentythree.cache import PhotoCache
from gateway.twentythree.catalogue import Catalogue
from gateway.twentythree.client import TwentyThreeClient
from gateway.twentythree.minting import Minter
from gateway.twentythree.readiness import ReadinessProbe


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    clients: Mapping[str, TwentyThreeClient]
    caches: Mapping[str, PhotoCache]
    catalogues: Mapping[str, Catalogue]  # sites with catalogue = "sync"
    minters: Mapping[str, Minter]
    readiness: ReadinessProbe
    telemetry: Telemetry
    dependencies: DependencyProbe
    keyring: ApiKeyring
    limiter: RateLimiter
    providers: Mapping[str, Provider]
    site_providers: Mapping[str, tuple[Provider, ...]]  # each site's own, in its order
    request_identifiers: Mapping[str, tuple[IdentifiesEachRequest, ...]]  # ...those per request
    sessions: Sessions
    cookies: CookieJar
    entitlements: EntitlementStore | None

    @property
    def standing(self) -> StandingLookup | None:
        """Who holds which product, from the entitlement database when the gateway keeps one
        (policy and access rules fail closed without it)."""
        return self.entitlements.standing if self.entitlements is not None else None

    @classmethod
    def build(cls, settings: Settings, store: Store | None = None) -> Services:
        g = settings.gateway
        store = store or open_store(
            settings.store.url.get_secret_value(), settings.store.memory_max_entries
        )
        telemetry = Telemetry(store)
        clients = {
            name: TwentyThreeClient(
                site,
                connect_timeout=g.upstream_connect_timeout,
                read_timeout=g.upstream_read_timeout,
                telemetry=telemetry,
            )
            for name, site in settings.sites.items()
        }
        caches = {
            name: PhotoCache(
                name,
                client,
                store,
                fetch_wait=g.upstream_connect_timeout + 2 * g.upstream_read_timeout,
                telemetry=telemetry,
            )
            for name, client in clients.items()
        }
        catalogues = {
            name: Catalogue(site, clients[name], store, caches[name].fetch)
            for name, site in settings.sites.items()
            if site.catalogue == "sync"
        }
        for name, catalogue in catalogues.items():
            caches[name].use_catalogue(catalogue)
        pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="photo-fetch")
        limiter = RateLimiter(store)
        entitlements = open_entitlements(settings)
        codec = SessionCodec(g.secret_keys, g.session_idle, g.session_max_age)
        sessions = Sessions(codec, store, settings.used_groups())
        cookies = CookieJar(g.public_url)
        identity_sites = {
            ident: tuple(n for n, site in settings.sites.items() if ident in site.identities)
            for ident in settings.identities
        }
        context = ProviderContext(
            g, store, limiter, sessions, cookies, entitlements, identity_sites=identity_sites
        )
        providers = build_providers(settings.identities, context)
        site_providers = {
            name: tuple(providers[i] for i in site.identities if i in providers)
            for name, site in settings.sites.items()
        }
        return cls(
            settings=settings,
            store=store,
            clients=clients,
            caches=caches,
            catalogues=catalogues,
            minters={n: Minter(settings.sites[n], caches[n], pool) for n in clients},
            readiness=ReadinessProbe(clients, interval=g.readiness_interval, telemetry=telemetry),
            telemetry=telemetry,
            dependencies=DependencyProbe(store, entitlements),
            keyring=ApiKeyring(settings.api_keys),
            limiter=limiter,
            providers=providers,
            site_providers=site_providers,
            request_identifiers={
                name: tuple(p for p in own if isinstance(p, IdentifiesEachRequest))
                for name, own in site_providers.items()
            },
            sessions=sessions,
            cookies=cookies,
            entitlements=entitlements,
        )


def open_entitlements(settings: Settings) -> EntitlementStore | None:
    """The entitlement database, opened (and its schema created) only when a site (or one of
    its access rules) requires an entitlement or a paywall can grant one; otherwise no
    database file appears at all."""
    needed = any(
        site.require_entitlement or any(rule.require_entitlement for rule in site.rules)
        for site in settings.sites.values()
    ) or any(ident.type == "stripe" for ident in settings.identities.values())
    if not needed:
        return None
    store = EntitlementStore(settings.store.database_url.get_secret_value())
    store.upgrade_schema()
    return store
