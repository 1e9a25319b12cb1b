"""Configuration: one TOML file -> frozen, typed settings (pydantic), every problem at once.

Each problem names its dotted key (``sites.intranet.url: must be https ...``) and never
echoes the value, because any value may be a secret. ``"env:NAME"`` strings are read from the
environment first. Each identity type's model lives beside its provider and is found through
``identity/registry.py``; ``gateway.loader`` reads the file, resolves ``env:`` values and
validates it all (the models here never import a provider).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from gateway.clientip import IPNetwork
from gateway.emails import canonical_email
from gateway.settings_fields import (
    AccentColor,
    Domains,
    Flag,
    Hosts,
    IdentityModel,
    Integer,
    Model,
    Named,
    Names,
    Number,
    OptionalUrl,
    Origin,
    ReadableFile,
    RequiredSecret,
    RequiredText,
    Secret,
    Strings,
    Text,
    Url,
    as_names,
    is_loopback_host,
    problem,
    refuse_placeholder,
)

DEFAULT_CONFIG_PATH = "config/gateway.toml"
MIN_SECRET_KEY_BYTES = 32
SECTIONS = ("gateway", "sites", "store", "identity", "api_keys", "admin")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_ENV_RE = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")
_PINGBACK_KEY_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")
OAUTH_KEYS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
_NEEDED = object()  # an OAuth key a site without api_token did not give


def _needed(value: Any) -> Any:
    if value is _NEEDED:
        raise problem("is required")
    return value


def _plain(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


# BeforeValidators run last-listed first: "is required" before the type's own checks.
OAuthText = Annotated[RequiredText, BeforeValidator(_needed)]
OAuthSecret = Annotated[RequiredSecret, BeforeValidator(_needed)]
_HEX64_RE = re.compile(r"^[0-9a-fA-F]{64}$")

__all__ = ["ConfigError", "IPNetwork", "Settings", "is_loopback_host"]


class ConfigError(Exception):
    """The configuration has one or more problems; ``problems`` lists them all."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# --------------------------------------------------------------------------- value types


def _secret_keys(value: Any) -> tuple[SecretStr, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise problem("must be a string or a non-empty list of strings")
    keys = [v.get_secret_value() if isinstance(v, SecretStr) else v for v in value]
    if not all(isinstance(k, str) for k in keys):
        raise problem("must be a string or a non-empty list of strings")
    for key in keys:
        refuse_placeholder(key)
    if any(len(k.encode()) < MIN_SECRET_KEY_BYTES for k in keys):
        raise problem(f"every key must be at least {MIN_SECRET_KEY_BYTES} bytes")
    return tuple(SecretStr(k) for k in keys)


def _list(value: Any) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise problem("must be a list")
    return tuple(value)


def _network(value: Any) -> IPNetwork:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    try:
        return ipaddress.ip_network(value, strict=False)
    except (ValueError, TypeError):
        raise problem("must be an IP address or CIDR block") from None


def _store_url(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value
    if not isinstance(value, str) or not (
        value == "" or value.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://"))
    ):
        raise problem(
            "must be empty (in-process) or a redis:// URL (also rediss://, unix://, or "
            "redis+sentinel://host:port,host:port/<master>/<db>)"
        )
    return refuse_placeholder(value)


def _hex64(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str) or not _HEX64_RE.fullmatch(value):
        raise problem("must be 64 hex digits (sha256 of the key)")
    return bytes.fromhex(value)


def _site_names(value: Any) -> tuple[str, ...]:
    names = as_names(value)
    if not names:
        raise problem("must name at least one site")
    return names


SecretKeys = Annotated[tuple[SecretStr, ...], BeforeValidator(_secret_keys)]
Networks = Annotated[
    tuple[Annotated[IPNetwork, BeforeValidator(_network)], ...], BeforeValidator(_list)
]
StoreUrl = Annotated[SecretStr, BeforeValidator(_store_url)]
KeyDigest = Annotated[bytes, BeforeValidator(_hex64)]
SiteNames = Annotated[tuple[str, ...], BeforeValidator(_site_names)]


# --------------------------------------------------------------------------- the models


class GatewaySettings(Model):
    public_url: Url  # how visitors reach the gateway
    secret_key: SecretKeys  # the first signs, all verify (rotation)
    trusted_proxies: Networks = ()
    upstream_connect_timeout: Number = Field(3.05, ge=0.1, le=10)
    upstream_read_timeout: Number = Field(5.0, ge=0.1, le=12)
    readiness_interval: Number = Field(30.0, ge=1, le=3600)
    # Reload when the file changes (a mounted ConfigMap), as on SIGHUP; checked every 2 s.
    watch_config: Flag = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    session_idle: Integer = Field(1800, ge=60, le=86400)
    session_max_age: Integer = Field(43200, ge=300, le=30 * 86400)
    metrics_token: Secret = SecretStr("")

    @property
    def secret_keys(self) -> tuple[str, ...]:
        return tuple(k.get_secret_value() for k in self.secret_key)

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")


class AccessRule(Model):
    """Extra conditions for some of a site's videos: those in channel ``album_id`` or tagged
    ``tag``. Every matching rule must be met, on top of the site's own policy."""

    album_id: Integer | None = Field(None, ge=1)
    tag: Text = ""
    allow_groups: Strings = ()
    allow_email_domains: Domains = ()
    require_entitlement: Text = ""

    @model_validator(mode="after")
    def _complete(self) -> AccessRule:
        if (self.album_id is None) == (not self.tag):
            raise problem("give album_id or tag (exactly one): which videos the rule covers")
        if not (self.allow_groups or self.allow_email_domains or self.require_entitlement):
            raise problem(
                "give allow_groups, allow_email_domains or require_entitlement: "
                "what the rule asks of a visitor"
            )
        return self

    @field_validator("tag")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()  # tags compare as 23 lists them, lower-cased

    def covers(self, albums: tuple[int, ...], tags: tuple[str, ...]) -> bool:
        return self.album_id in albums if self.album_id is not None else self.tag in tags

    @property
    def label(self) -> str:
        return f"album {self.album_id}" if self.album_id is not None else f"tag {self.tag!r}"


class SiteSettings(Named):
    url: Origin  # the site's own origin; the API is under <url>/api/2/ (or <url>/api/)
    # 2: <url>/api/2/<method>, typed JSON under "data", HTTP error statuses (23 today);
    # 1: the legacy <url>/api/<method>?format=json&raw dialect.
    api_version: Literal[1, 2] = 2
    # Credentials: the four OAuth 1.0a keys (super level), or instead an api_token.
    consumer_key: OAuthText = ""
    consumer_secret: OAuthSecret = SecretStr("")
    access_token: OAuthText = ""
    access_token_secret: OAuthSecret = SecretStr("")
    # The token one gives twentythree-cli: exchanged at /api/2/user/tokens for short-lived
    # bearer tokens, refreshed before they expire and shared by every worker and instance.
    api_token: Secret = SecretStr("")
    pingback_key: Secret = SecretStr("")  # set: pingbacks only at /pingback/<site>/<key>
    identity: Names = ()
    allow_email_domains: Domains = ()
    allow_groups: Strings = ()
    return_hosts: Hosts = ()
    login_mode: Literal["session", "user"] = "session"
    expire_bucket: Integer = Field(0, ge=0, le=86400)
    require_entitlement: Text = ""
    visitor_ttl: Integer = Field(3600, ge=60, le=7 * 86400)
    visitor_ttl_max: Integer = Field(43200, ge=60, le=7 * 86400)  # cap of playback-long links
    visitor_unpublished: Flag = False
    # Videos only 23 can answer (not cached or catalogued) cost an API call each: a minute's
    # budget for each signed-in visitor and for all visitors of the site (0 = unlimited).
    cold_lookups_per_visitor: Integer = Field(30, ge=0)
    cold_lookups_all_visitors: Integer = Field(600, ge=0)
    catalogue: Literal["sync", "on_demand"] = "sync"
    catalogue_refresh: Integer = Field(900, ge=60, le=86400)  # seconds between full syncs
    catalogue_max_age: Integer = Field(3600, ge=120, le=7 * 86400)  # older: not used, not ready
    rules: tuple[AccessRule, ...] = ()
    uploads: UploadSettings | None = None  # absent: no uploads
    # >0: a new sign-in beyond this many live sessions of one person here signs the oldest out
    max_sessions_per_person: Integer = Field(0, ge=0, le=100)
    # How the gateway's pages name and dress the site (default: the table's name, no logo).
    display_name: Text = ""
    logo_url: OptionalUrl = ""
    accent_color: AccentColor = ""

    @model_validator(mode="before")
    @classmethod
    def _oauth_unless_api_token(cls, data: Any) -> Any:
        """Without an api_token, each of the four OAuth keys is required (one problem each)."""
        if isinstance(data, dict) and not data.get("api_token"):
            return {**dict.fromkeys(OAUTH_KEYS, _NEEDED), **data}
        return data

    @model_validator(mode="after")
    def _credentials(self) -> SiteSettings:
        given = [k for k in OAUTH_KEYS if _plain(getattr(self, k))]
        if self.api_token.get_secret_value():
            if given:
                raise problem("give either api_token or the four OAuth keys, not both")
            if self.api_version != 2:
                raise problem("api_token needs api_version = 2 (bearer tokens are an /api/2 thing)")
        key = self.pingback_key.get_secret_value()
        if key and not _PINGBACK_KEY_RE.fullmatch(key):
            raise problem("pingback_key must be 16 to 128 letters, digits, '-' or '_'")
        return self

    @property
    def bearer(self) -> bool:
        """Whether calls carry bearer tokens (from api_token) instead of OAuth signatures."""
        return bool(self.api_token.get_secret_value())

    @model_validator(mode="after")
    def _consistent(self) -> SiteSettings:
        if self.visitor_ttl > self.visitor_ttl_max:
            raise problem("visitor_ttl must not exceed visitor_ttl_max")
        if self.catalogue == "sync" and self.catalogue_max_age <= self.catalogue_refresh:
            raise problem(
                "catalogue_max_age must exceed catalogue_refresh (a catalogue must be able to "
                "survive a failed sync)"
            )
        return self

    @property
    def title(self) -> str:
        return self.display_name or self.name

    @property
    def identities(self) -> tuple[str, ...]:
        return self.identity

    @property
    def host(self) -> str:
        """The site's host (with port when not the scheme's default)."""
        return urlsplit(self.url).netloc.lower()


class StoreSettings(Model):
    # "" = in-process; redis://[user:password@]host:port/db, rediss:// (TLS), unix://, or
    # redis+sentinel://host:port,host:port/<master>/<db> (follows a failover by itself)
    url: StoreUrl = SecretStr("")
    ca_file: ReadableFile = ""  # rediss://: the PEM bundle to verify Redis with (else system CAs)
    database_url: Secret = SecretStr("sqlite:///gateway.db")  # entitlements
    # In-process store only: entries per kind (security kinds refuse new ones when full).
    memory_max_entries: Integer = Field(default=200_000, ge=100, le=10_000_000)

    @property
    def shared(self) -> bool:
        return bool(self.url.get_secret_value())


class ApiKeySettings(Named):
    key_sha256: KeyDigest = Field(repr=False)  # the key itself is never stored
    sites: SiteNames
    max_ttl: Integer = Field(86400, ge=1, le=366 * 86400)
    rate_limit: Number = Field(0.0, ge=0)  # mint calls per second; 0 = unlimited
    enforce_rules: Flag = False  # true: the sites' access rules apply to this key's mints too
    cold_lookups_per_minute: Integer = Field(600, ge=0)  # ids only 23 can answer; 0 = unlimited
    uploads: Flag = False  # true: may start uploads (POST /api/v1/sites/<site>/uploads)


class AllowList(Model):
    """Who may do something beyond watching: named e-mail addresses and/or groups."""

    allow_emails: Strings = ()
    allow_groups: Strings = ()
    allowed_to: ClassVar[str] = "do this"  # named in the problem when the list is empty

    @model_validator(mode="after")
    def _someone(self) -> AllowList:
        if not self.allow_emails and not self.allow_groups:
            raise problem(f"list allow_emails or allow_groups: who may {self.allowed_to}")
        return self

    def admits(self, email: str, groups: tuple[str, ...]) -> bool:
        wanted = canonical_email(email)
        emails = {canonical_email(e) for e in self.allow_emails} - {None}
        return wanted in emails or bool(set(self.allow_groups) & set(groups))


class AdminSettings(AllowList):
    """The operator console at /admin: who may open it, through which identity."""

    identity: RequiredText
    allowed_to: ClassVar[str] = "open the console"


class UploadSettings(AllowList):
    """``[sites.<name>.uploads]``: who may send videos to the site through the gateway."""

    allowed_to: ClassVar[str] = "upload"

    album_ids: tuple[Annotated[int, Field(gt=0)], ...] = ()  # the channels the form offers
    publish: Flag = False  # false: uploads arrive unpublished, for review
    valid_minutes: Integer = Field(60, ge=15, le=1440)  # the upload form's lifetime


class Settings(Model):
    gateway: GatewaySettings
    sites: Mapping[str, SiteSettings]
    store: StoreSettings = StoreSettings()
    identity: Mapping[str, IdentityModel] = Field(default_factory=dict)  # _identity_adapter
    api_keys: Mapping[str, ApiKeySettings] = Field(default_factory=dict)
    admin: AdminSettings | None = None
    _source: str = PrivateAttr("<memory>")

    def used_groups(self) -> frozenset[str]:
        """Every group some decision of the gateway looks at (sites, rules, the console):
        the only ones worth keeping in a session."""
        names = {g for site in self.sites.values() for g in site.allow_groups}
        names |= {
            g for site in self.sites.values() for rule in site.rules for g in rule.allow_groups
        }
        names |= {
            g for site in self.sites.values() if site.uploads for g in site.uploads.allow_groups
        }
        if self.admin is not None:
            names |= set(self.admin.allow_groups)
        return frozenset(names)

    @property
    def identities(self) -> Mapping[str, IdentityModel]:
        return self.identity

    @property
    def source(self) -> str:
        return self._source


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file: ``path``, else ``$GATEWAY_CONFIG``, else the demo's. Here, beside the
    models, because ``gateway serve`` needs it before gevent patches the standard library,
    and the loader (with every provider, requests and ssl behind it) must come after that."""
    return Path(path or os.environ.get("GATEWAY_CONFIG") or DEFAULT_CONFIG_PATH)
