"""The gateway at run time: one ``SiteRuntime`` per site (everything that site needs while
serving) and the parts every site shares, built in one place from the settings.

The whole ``GatewayRuntime`` is one replaceable object: it is built from a ``Settings`` and
nothing else, and nothing keeps a site's parts anywhere but here (no module globals), so a
new configuration can be served by building a new runtime beside the old one and swapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

from gateway.apikeys import ApiKeyring
from gateway.cookies import CookieJar
from gateway.dependency_probe import DependencyProbe
from gateway.entitlements import EntitlementStore
from gateway.errors import NotFound
from gateway.identity.base import IdentifiesEachRequest, Identity, Provider, VouchesPerRequest
from gateway.identity.provider_context import ProviderContext
from gateway.identity.registry import build_providers
from gateway.policy import StandingLookup, standing_in
from gateway.ratelimit import RateLimiter
from gateway.sessions import SessionCodec, Sessions, console_sessions
from gateway.settings import Settings, SiteSettings
from gateway.store import Store, open_store
from gateway.telemetry import Telemetry
from gateway.twentythree.cache import PhotoCache
from gateway.twentythree.catalogue import Catalogue
from gateway.twentythree.client import TwentyThreeClient
from gateway.twentythree.minting import Minter
from gateway.twentythree.readiness import ReadinessProbe


@dataclass(frozen=True)
class SiteRuntime:
    """One site's run-time parts: its 23 client, photo cache, catalogue (when synced),
    minter, and the providers it trusts (in its order)."""

    settings: SiteSettings
    client: TwentyThreeClient
    cache: PhotoCache
    catalogue: Catalogue | None
    minter: Minter
    providers: tuple[Provider, ...]

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def request_identifiers(self) -> tuple[IdentifiesEachRequest, ...]:
        """Its providers that identify each request by itself (a trusted proxy's headers)."""
        return tuple(p for p in self.providers if isinstance(p, IdentifiesEachRequest))


@dataclass(frozen=True)
class GatewayRuntime:
    settings: Settings
    sites: Mapping[str, SiteRuntime]
    store: Store
    providers: Mapping[str, Provider]  # every configured identity, by name
    readiness: ReadinessProbe
    telemetry: Telemetry
    dependencies: DependencyProbe
    keyring: ApiKeyring
    limiter: RateLimiter
    sessions: Sessions
    console_sessions: Sessions | None  # None without an [admin] console
    cookies: CookieJar
    entitlements: EntitlementStore | None

    def site(self, name: str) -> SiteRuntime:
        """A configured site's runtime, else 404 no_such_site."""
        found = self.sites.get(name)
        if found is None:
            raise NotFound("There is no such site.", code="no_such_site")
        return found

    def keeps_sessions_for(self, identity: Identity) -> bool:
        """Whether a session may stand for this identity: never for one that holds per request
        only (a campus address), which must not travel in a cookie to anywhere else."""
        provider: object = self.providers.get(identity.provider)
        if isinstance(provider, VouchesPerRequest):
            return not provider.vouches_per_request_only()
        return True

    @cached_property  # asked on the embed and mint hot paths: built once per runtime
    def standing(self) -> StandingLookup | None:
        """Who holds which product, from the entitlement database when the gateway keeps one
        (policy and access rules fail closed without it)."""
        return standing_in(self.entitlements) if self.entitlements is not None else None

    # Views by site, for callers that walk every site (metrics, tests, the console).
    @property
    def catalogues(self) -> Mapping[str, Catalogue]:
        return {n: s.catalogue for n, s in self.sites.items() if s.catalogue is not None}

    @property
    def caches(self) -> Mapping[str, PhotoCache]:
        return {n: s.cache for n, s in self.sites.items()}

    @property
    def minters(self) -> Mapping[str, Minter]:
        return {n: s.minter for n, s in self.sites.items()}

    def start(self) -> None:
        """Start the background work (catalogue syncs) in the serving process."""
        for catalogue in self.catalogues.values():
            catalogue.start()

    def close(self) -> None:
        """Let go of what this runtime holds beyond the state it shares with its successor
        (store, telemetry, entitlements): sync loops, subscriptions, connection pools."""
        for site in self.sites.values():
            if site.catalogue is not None:
                site.catalogue.stop()
            site.cache.close()
            site.client.close()
        self.readiness.close()

    def successor(self, settings: Settings) -> GatewayRuntime:
        """A runtime for new settings beside this one (a live reload): the same store (sessions,
        revocations, single-use markers, rate-limit windows and caches survive), telemetry
        and, when its URL is unchanged, the entitlement database."""
        if settings.store.url.get_secret_value() != self.settings.store.url.get_secret_value():
            raise ValueError("[store] url cannot change on a reload: restart to move the state")
        same_db = settings.store.database_url == self.settings.store.database_url
        return GatewayRuntime.build(
            settings, self.store, self.telemetry, self.entitlements if same_db else None
        )

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store | None = None,
        telemetry: Telemetry | None = None,
        entitlements: EntitlementStore | None = None,
    ) -> GatewayRuntime:
        g = settings.gateway
        store = store or open_store(
            settings.store.url.get_secret_value(),
            settings.store.memory_max_entries,
            settings.store.ca_file,
        )
        telemetry = telemetry or Telemetry(store)
        limiter = RateLimiter(store)
        entitlements = entitlements or open_entitlements(settings)
        codec = SessionCodec(g.secret_keys, g.session_idle, g.session_max_age)
        sessions = Sessions(codec, store, settings.used_groups(), sites=tuple(settings.sites))
        cookies = CookieJar(g.public_url)
        context = ProviderContext(
            g, store, limiter, sessions, cookies, entitlements, identity_sites=_sites_of(settings)
        )
        providers = build_providers(settings.identities, context)
        sites = _site_runtimes(settings, store, telemetry, providers)
        clients = {name: site.client for name, site in sites.items()}
        return cls(
            settings=settings,
            sites=sites,
            store=store,
            providers=providers,
            readiness=ReadinessProbe(clients, interval=g.readiness_interval, telemetry=telemetry),
            telemetry=telemetry,
            dependencies=DependencyProbe(store, entitlements),
            keyring=ApiKeyring(settings.api_keys),
            limiter=limiter,
            sessions=sessions,
            console_sessions=(
                console_sessions(g.secret_keys, store, settings.admin.allow_groups)
                if settings.admin is not None
                else None
            ),
            cookies=cookies,
            entitlements=entitlements,
        )


def _sites_of(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Each identity's sites, in the config's order (an IdP-initiated sign-in needs them)."""
    return {
        ident: tuple(n for n, site in settings.sites.items() if ident in site.identities)
        for ident in settings.identities
    }


def _site_runtimes(
    settings: Settings, store: Store, telemetry: Telemetry, providers: Mapping[str, Provider]
) -> dict[str, SiteRuntime]:
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="photo-fetch")  # shared
    return {
        name: _site_runtime(settings, site, store, telemetry, providers, pool)
        for name, site in settings.sites.items()
    }


def _site_runtime(
    settings: Settings,
    site: SiteSettings,
    store: Store,
    telemetry: Telemetry,
    providers: Mapping[str, Provider],
    pool: ThreadPoolExecutor,
) -> SiteRuntime:
    g = settings.gateway
    client = TwentyThreeClient(
        site,
        connect_timeout=g.upstream_connect_timeout,
        read_timeout=g.upstream_read_timeout,
        telemetry=telemetry,
        store=store,
    )
    fetch_wait = g.upstream_connect_timeout + 2 * g.upstream_read_timeout
    cache = PhotoCache(site.name, client, store, fetch_wait=fetch_wait, telemetry=telemetry)
    catalogue = None
    if site.catalogue == "sync":
        catalogue = Catalogue(site, client, store, cache.fetch)
        cache.use_catalogue(catalogue)
    return SiteRuntime(
        settings=site,
        client=client,
        cache=cache,
        catalogue=catalogue,
        minter=Minter(site, cache, pool),
        providers=tuple(providers[i] for i in site.identities if i in providers),
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
