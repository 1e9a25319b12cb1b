"""Configuration: one TOML file -> frozen, typed settings (pydantic), every problem at once.

Each problem names its dotted key (``sites.intranet.url: must be https ...``) and never
echoes the value, because any value may be a secret. ``"env:NAME"`` strings are read from the
environment first. Each identity type's model lives beside its provider and is found through
``identity/registry.py`` (a discriminated union on ``type``).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    TypeAdapter,
    ValidationError,
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
_HEX64_RE = re.compile(r"^[0-9a-fA-F]{64}$")

__all__ = ["ConfigError", "IPNetwork", "Settings", "is_loopback_host", "load_settings"]


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
        value == "" or value.startswith(("redis://", "rediss://", "unix://"))
    ):
        raise problem("must be empty (in-process) or a redis:// URL")
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
    url: Origin  # the site's own origin; the API is under <url>/api/
    consumer_key: RequiredText
    consumer_secret: RequiredSecret
    access_token: RequiredText
    access_token_secret: RequiredSecret
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
    # How the gateway's pages name and dress the site (default: the table's name, no logo).
    display_name: Text = ""
    logo_url: OptionalUrl = ""
    accent_color: AccentColor = ""

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
    url: StoreUrl = SecretStr("")  # "" = in-process; "redis://..." (may hold a password)
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


class AdminSettings(Model):
    """The operator console at /admin: who may open it, through which identity."""

    identity: RequiredText
    allow_emails: Strings = ()
    allow_groups: Strings = ()

    @model_validator(mode="after")
    def _someone(self) -> AdminSettings:
        if not self.allow_emails and not self.allow_groups:
            raise problem("list allow_emails or allow_groups: who may open the console")
        return self

    def admits(self, email: str, groups: tuple[str, ...]) -> bool:
        wanted = canonical_email(email)
        emails = {canonical_email(e) for e in self.allow_emails} - {None}
        return wanted in emails or bool(set(self.allow_groups) & set(groups))


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
        if self.admin is not None:
            names |= set(self.admin.allow_groups)
        return frozenset(names)

    @property
    def identities(self) -> Mapping[str, IdentityModel]:
        return self.identity

    @property
    def source(self) -> str:
        return self._source


# --------------------------------------------------------------------------- identity union


@cache
def _identity_adapter(types: tuple[tuple[str, type[IdentityModel]], ...]) -> TypeAdapter[Any]:
    """dict[name, one of the registered identity models, chosen by ``type``]."""
    models = tuple(model for _, model in types)
    union: Any = models[0] if len(models) == 1 else Union[models]  # noqa: UP007 - built at run time
    tagged: Any = Annotated[union, Field(discriminator="type")]
    return TypeAdapter(dict[str, tagged])


def _registered() -> tuple[tuple[str, type[IdentityModel]], ...]:
    from gateway.identity.registry import PROVIDER_TYPES

    return tuple((name, entry.settings) for name, entry in PROVIDER_TYPES.items())


# --------------------------------------------------------------------------- problems


def _messages(error: Mapping[str, Any], known: list[str]) -> str:
    """Our sentence for one pydantic error (never the input value)."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "gateway":
        return str(error["msg"])
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        near = difflib.get_close_matches(str(error["loc"][-1]), known, n=1, cutoff=0.7)
        return f"unknown key (did you mean `{near[0]}`?)" if near else "unknown key"
    if kind == "literal_error":
        return "must be one of " + str(ctx.get("expected", "")).replace(" or ", ", ")
    bounds = {"greater_than_equal": ("ge", "at least"), "less_than_equal": ("le", "at most")}
    if kind in bounds:
        key, words = bounds[kind]
        return f"must be {words} {float(ctx[key]):g}"
    if kind in ("model_type", "model_attributes_type", "dict_type", "mapping_type"):
        return "must be a table"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return "must be one of " + ", ".join(sorted(n for n, _ in _registered()))
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return str(error["msg"])


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys the table at ``loc`` accepts (for "did you mean")."""
    if len(loc) <= 1:
        return list(SECTIONS)
    models: dict[str, type[Model]] = {
        "gateway": GatewaySettings,
        "store": StoreSettings,
        "sites": SiteSettings,
        "api_keys": ApiKeySettings,
        "admin": AdminSettings,
    }
    if loc[0] == "identity" and len(loc) > 3:
        model: type[Model] | None = dict(_registered()).get(str(loc[2]))
    elif loc[0] == "sites" and len(loc) > 4 and loc[2] == "rules":
        model = AccessRule
    else:
        model = models.get(str(loc[0]))
    return list(model.model_fields) if model else []


def _dotted(loc: tuple[Any, ...], tagged: bool) -> str:
    """("sites", "x", "url") -> "sites.x.url"; list indexes as [0]; a union's tag skipped."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        if tagged and i == 2:
            continue  # ("identity", name, <type tag>, key...)
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part}]"
        else:
            parts.append(str(part))
    return ".".join(parts)


def _problems(error: ValidationError, prefix: tuple[str, ...] = ()) -> list[str]:
    found = []
    for item in error.errors():
        loc = prefix + tuple(item["loc"])
        if item["type"] == "extra_forbidden" and len(loc) == 1:
            found.append(f"{loc[0]}: unknown section")
            continue
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = (*loc, "type")  # the tag is the key at fault
        # A discriminated union puts the type tag after the identity's name: skip it.
        tagged = bool(prefix) and len(loc) >= 3 and loc[2] in dict(_registered())
        found.append(f"{_dotted(loc, tagged)}: {_messages(item, _fields_at(loc))}")
    return found


# --------------------------------------------------------------------------- loading


def _resolve_env(node: Any, path: str, env: Mapping[str, str], problems: list[str]) -> Any:
    """Replace every ``"env:NAME"`` string with the variable's value."""
    if isinstance(node, dict):
        return {
            k: _resolve_env(v, f"{path}.{k}" if path else k, env, problems) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_resolve_env(v, f"{path}[{i}]", env, problems) for i, v in enumerate(node)]
    if isinstance(node, str) and node.startswith("env:"):
        match = _ENV_RE.fullmatch(node)
        if not match:
            problems.append(f"{path}: env: must be followed by a variable name")
            return _UNSET
        name = match.group(1)
        if name not in env:
            problems.append(f"{path}: environment variable {name} is not set")
            return _UNSET
        return env[name]
    return node


class _Unset:
    """A value already reported (an unset variable): its other problems are not repeated."""


_UNSET = _Unset()


def _drop_unset(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _drop_unset(v) for k, v in node.items() if v is not _UNSET}
    if isinstance(node, list):
        return [_drop_unset(v) for v in node if v is not _UNSET]
    return node


def _named_tables(raw: dict[str, Any], section: str, problems: list[str]) -> dict[str, Any]:
    tables = raw.get(section)
    if tables is None:
        return {}
    if not isinstance(tables, dict):
        problems.append(f"{section}: must be a table of named tables")
        return {}
    good = {}
    for name, table in tables.items():
        if not _NAME_RE.fullmatch(name):
            problems.append(
                f"{section}.{name}: name must be letters, digits, '-' or '_' (up to 63)"
            )
        else:
            good[name] = table
    return good


def _cross_references(raw: dict[str, Any], problems: list[str]) -> None:
    """What no single table can check: names that must exist, keys that must differ."""
    identities = raw.get("identity") or {}
    sites = raw.get("sites") or {}
    for name, site in sites.items():
        wanted = site.get("identity", ()) if isinstance(site, dict) else ()
        for ident in _missing(wanted, identities):
            problems.append(f"sites.{name}.identity: names no [identity.{ident}] table")
    admin = raw.get("admin")
    for ident in _missing(admin.get("identity") if isinstance(admin, dict) else None, identities):
        problems.append(f"admin.identity: names no [identity.{ident}] table")
    keys = {n: k for n, k in (raw.get("api_keys") or {}).items() if isinstance(k, dict)}
    for name, key in keys.items():
        for site in _missing(key.get("sites", ()), sites):
            problems.append(f"api_keys.{name}.sites: names no [sites.{site}] table")
    digests = [
        k["key_sha256"].lower() for k in keys.values() if isinstance(k.get("key_sha256"), str)
    ]
    if len(digests) != len(set(digests)):
        problems.append("api_keys: two keys share the same key_sha256")


def _missing(names: Any, defined: Mapping[str, Any]) -> list[str]:
    """The names (one string or a list of them) that ``defined`` has no table for."""
    listed = [names] if isinstance(names, str) else names if isinstance(names, list | tuple) else []
    return [n for n in listed if isinstance(n, str) and n and n not in defined]


def parse_settings(
    data: Mapping[str, Any], env: Mapping[str, str] | None = None, source: str = "<memory>"
) -> Settings:
    """Validate a parsed TOML document; raise ConfigError listing every problem."""
    problems: list[str] = []
    raw = _resolve_env(dict(data), "", os.environ if env is None else env, problems)
    raw = _drop_unset(raw)
    sections = {"sites": _named_tables(raw, "sites", problems)}
    if not raw.get("sites"):
        problems.append("sites: at least one [sites.<name>] table is required")
    sections["api_keys"] = _named_tables(raw, "api_keys", problems)
    identities = _named_tables(raw, "identity", problems)
    _cross_references({**raw, **sections, "identity": raw.get("identity") or {}}, problems)

    top = {k: v for k, v in raw.items() if k != "identity"} | sections
    validated_identities: dict[str, IdentityModel] = {}
    try:
        validated_identities = _identity_adapter(_registered()).validate_python(identities)
    except ValidationError as exc:
        problems.extend(_problems(exc, ("identity",)))
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(top)
    except ValidationError as exc:
        problems.extend(p for p in _problems(exc) if not p.startswith("sites: is required"))
    if problems or settings is None:
        raise ConfigError(_unique(problems))
    return _finish(settings, validated_identities, source)


def _unique(problems: list[str]) -> list[str]:
    """Each problem once; a key whose variable is unset says only that, not also "is
    required" (its value was left out so that nothing else about it is guessed at)."""
    unset = {p.partition(": ")[0] for p in problems if p.endswith(" is not set")}
    kept = [p for p in problems if not (p.endswith(": is required") and p[:-13] in unset)]
    return list(dict.fromkeys(kept))


def _finish(settings: Settings, identities: dict[str, IdentityModel], source: str) -> Settings:
    """Name every table after its key, freeze the mappings, remember the file."""
    done = settings.model_copy(
        update={
            "sites": MappingProxyType({n: s.named(n) for n, s in settings.sites.items()}),
            "identity": MappingProxyType({n: i.named(n) for n, i in identities.items()}),
            "api_keys": MappingProxyType({n: k.named(n) for n, k in settings.api_keys.items()}),
        }
    )
    done._source = source
    return done


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get("GATEWAY_CONFIG") or DEFAULT_CONFIG_PATH)


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read and validate the config file (``$GATEWAY_CONFIG`` or the demo default)."""
    file = config_path(path)
    try:
        with file.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{file}: file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{file}: cannot be read ({exc.strerror})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{file}: not valid TOML ({exc})"]) from None
    return parse_settings(data, env=env, source=str(file))


def load_settings_or_exit(path: str | os.PathLike[str] | None = None) -> Settings:
    """``load_settings``, or print every problem to stderr and exit with status 2."""
    try:
        return load_settings(path)
    except ConfigError as exc:
        print(f"{config_path(path)}: {len(exc.problems)} problem(s):", file=sys.stderr)
        for found in exc.problems:
            print(f"  {found}", file=sys.stderr)
        if all(found.endswith(" is not set") for found in exc.problems):
            print(
                "Only environment variables are missing; the rest of the file checks out. To "
                "check it where the secrets are not at hand, set those variables to stand-in "
                "values of the real length (the examples' replace-me placeholders are refused).",
                file=sys.stderr,
            )
        raise SystemExit(2) from None
