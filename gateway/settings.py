"""Configuration: one TOML file -> frozen, typed settings, with every problem reported at once.

Each problem names its dotted key (``sites.intranet.url: must be https ...``). Values are never
echoed in problems, because any of them may be a secret.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

DEFAULT_CONFIG_PATH = "config/gateway.toml"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_ENV_RE = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")
_HEX64_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MIN_SECRET_KEY_LENGTH = 16


class ConfigError(Exception):
    """The configuration has one or more problems; ``problems`` lists them all."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# --------------------------------------------------------------------------- typed settings


@dataclass(frozen=True)
class GatewaySettings:
    public_url: str
    secret_keys: tuple[str, ...] = field(repr=False)
    trusted_proxies: tuple[IPNetwork, ...] = ()
    upstream_connect_timeout: float = 3.05
    upstream_read_timeout: float = 5.0
    readiness_interval: float = 30.0
    log_level: str = "info"
    session_idle: int = 1800
    session_max_age: int = 43200
    metrics_token: str = field(default="", repr=False)

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")


@dataclass(frozen=True)
class SiteSettings:
    name: str
    url: str  # origin, no trailing slash
    consumer_key: str
    consumer_secret: str = field(repr=False)
    access_token: str
    access_token_secret: str = field(repr=False)
    identities: tuple[str, ...] = ()
    allow_email_domains: tuple[str, ...] = ()
    allow_groups: tuple[str, ...] = ()
    return_hosts: tuple[str, ...] = ()
    login_mode: str = "session"
    expire_bucket: int = 0
    require_entitlement: str = ""
    visitor_ttl: int = 3600
    visitor_unpublished: bool = False

    @property
    def host(self) -> str:
        """The site's host (with port when not the scheme's default)."""
        return urlsplit(self.url).netloc.lower()


@dataclass(frozen=True)
class StoreSettings:
    url: str = field(default="", repr=False)  # may hold a password
    database_url: str = field(default="sqlite:///gateway.db", repr=False)


@dataclass(frozen=True)
class IdentitySettings:
    name: str
    type: str
    options: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class ApiKeySettings:
    name: str
    key_sha256: bytes = field(repr=False)
    sites: frozenset[str]
    max_ttl: int = 86400
    rate_limit: float = 0.0


@dataclass(frozen=True)
class Settings:
    gateway: GatewaySettings
    sites: Mapping[str, SiteSettings]
    store: StoreSettings
    identities: Mapping[str, IdentitySettings]
    api_keys: Mapping[str, ApiKeySettings]
    source: str = "<memory>"


# --------------------------------------------------------------------------- value checks


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(value: str, *, origin_only: bool) -> str | None:
    """Return a problem sentence for a bad URL, or None."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URL"
    if parts.username is not None or parts.password is not None:
        return "must not contain user info"
    if parts.query or parts.fragment:
        return "must not contain a query or fragment"
    if origin_only and parts.path not in ("", "/"):
        return "must be an origin (scheme, host and optional port) without a path"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return "must be https (http:// is accepted only for loopback hosts)"
    return None


def _check_domain(value: str) -> str | None:
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_LABEL_RE.fullmatch(x) for x in labels):
        return "must hold plain lower-case domain names (like example.com)"
    return None


def _check_host(value: str) -> str | None:
    host, _, port = value.partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return "must hold host names with an optional :port"
    if is_loopback_host(host):
        return None
    return _check_domain(host)


# --------------------------------------------------------------------------- table reader

_REQUIRED: Any = object()


@dataclass(frozen=True)
class _Key:
    """One accepted key: how to read it, its default, and an optional extra check."""

    kind: str  # str | url | origin | int | float | bool | str_list | name_list | raw
    default: Any = _REQUIRED
    check: Callable[[Any], str | None] | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()


class _Reader:
    """Reads the keys of one table against a spec, collecting problems with dotted keys."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def table(self, raw: Any, prefix: str, spec: Mapping[str, _Key]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.problem(prefix, "must be a table")
            raw = {}
        out: dict[str, Any] = {}
        for key in sorted(set(raw) - set(spec)):
            self.problem(f"{prefix}.{key}", "unknown key")
        for key, rule in spec.items():
            dotted = f"{prefix}.{key}"
            if key not in raw:
                if rule.default is _REQUIRED:
                    self.problem(dotted, "is required")
                out[key] = None if rule.default is _REQUIRED else rule.default
                continue
            out[key] = self.value(dotted, raw[key], rule)
        return out

    def value(self, dotted: str, value: Any, rule: _Key) -> Any:
        kind = rule.kind
        converted: Any
        if kind in ("str", "url", "origin"):
            if not isinstance(value, str):
                self.problem(dotted, "must be a string")
                return None
            if rule.default is _REQUIRED and not value:
                self.problem(dotted, "must not be empty")
                return None
            converted = value
            if kind in ("url", "origin") and value:
                problem = _check_url(value, origin_only=kind == "origin")
                if problem:
                    self.problem(dotted, problem)
                    return None
                converted = value.rstrip("/")
            if rule.choices and value not in rule.choices:
                self.problem(dotted, "must be one of " + ", ".join(map(repr, rule.choices)))
                return None
        elif kind in ("int", "float"):
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            if not is_number or (kind == "int" and not isinstance(value, int)):
                self.problem(dotted, f"must be {'an integer' if kind == 'int' else 'a number'}")
                return None
            number = float(value)
            if rule.minimum is not None and number < rule.minimum:
                self.problem(dotted, f"must be at least {rule.minimum:g}")
                return None
            if rule.maximum is not None and number > rule.maximum:
                self.problem(dotted, f"must be at most {rule.maximum:g}")
                return None
            converted = value if kind == "int" else number
        elif kind == "bool":
            if not isinstance(value, bool):
                self.problem(dotted, "must be true or false")
                return None
            converted = value
        elif kind in ("str_list", "name_list"):
            if kind == "name_list" and isinstance(value, str):
                value = [value] if value else []
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                self.problem(dotted, "must be a list of non-empty strings")
                return None
            converted = tuple(value)
        elif kind == "raw":
            converted = value
        else:  # pragma: no cover - a programming error in a spec
            raise AssertionError(kind)
        if rule.check is not None and converted is not None:
            problem = rule.check(converted)
            if problem:
                self.problem(dotted, problem)
                return None
        return converted


def _each(check: Callable[[str], str | None]) -> Callable[[Any], str | None]:
    def run(values: Any) -> str | None:
        for value in values:
            problem = check(value)
            if problem:
                return problem
        return None

    return run


# --------------------------------------------------------------------------- specs

_GATEWAY_SPEC = {
    "public_url": _Key("url"),
    "secret_key": _Key("raw"),
    "trusted_proxies": _Key("str_list", ()),
    "upstream_connect_timeout": _Key("float", 3.05, minimum=0.1, maximum=10),
    "upstream_read_timeout": _Key("float", 5.0, minimum=0.1, maximum=12),
    "readiness_interval": _Key("float", 30.0, minimum=1, maximum=3600),
    "log_level": _Key("str", "info", choices=("debug", "info", "warning", "error")),
    "session_idle": _Key("int", 1800, minimum=60, maximum=86400),
    "session_max_age": _Key("int", 43200, minimum=300, maximum=30 * 86400),
    "metrics_token": _Key("str", ""),
}

_SITE_SPEC = {
    "url": _Key("origin"),
    "consumer_key": _Key("str"),
    "consumer_secret": _Key("str"),
    "access_token": _Key("str"),
    "access_token_secret": _Key("str"),
    "identity": _Key("name_list", ()),
    "allow_email_domains": _Key(
        "str_list", (), check=_each(lambda d: _check_domain(d.lower().lstrip("@")))
    ),
    "allow_groups": _Key("str_list", ()),
    "return_hosts": _Key("str_list", (), check=_each(lambda h: _check_host(h.lower()))),
    "login_mode": _Key("str", "session", choices=("session", "user")),
    "expire_bucket": _Key("int", 0, minimum=0, maximum=86400),
    "require_entitlement": _Key("str", ""),
    "visitor_ttl": _Key("int", 3600, minimum=60, maximum=7 * 86400),
    "visitor_unpublished": _Key("bool", False),
}

_STORE_SPEC = {
    "url": _Key(
        "str",
        "",
        check=lambda v: (
            None
            if v == "" or v.startswith(("redis://", "rediss://", "unix://"))
            else "must be empty (in-process) or a redis:// URL"
        ),
    ),
    "database_url": _Key("str", "sqlite:///gateway.db"),
}

_API_KEY_SPEC = {
    "key_sha256": _Key(
        "str",
        check=lambda v: (
            None if _HEX64_RE.fullmatch(v) else "must be 64 hex digits (sha256 of the key)"
        ),
    ),
    "sites": _Key("name_list"),
    "max_ttl": _Key("int", 86400, minimum=1, maximum=366 * 86400),
    "rate_limit": _Key("float", 0.0, minimum=0),
}

_CLAIM = _Key("str", "email")


def _header(default: str) -> _Key:
    return _Key(
        "str",
        default,
        check=lambda v: None if _HEADER_RE.fullmatch(v) else "must be an HTTP header name",
    )


def _check_static_users(users: Any) -> str | None:
    if not isinstance(users, list) or not users:
        return "must be a non-empty list of {email, name, password_hash, groups} tables"
    for user in users:
        if not isinstance(user, dict) or set(user) - {"email", "name", "password_hash", "groups"}:
            return "each user has only the keys email, name, password_hash, groups"
        if not all(isinstance(user.get(k), str) and user[k] for k in ("email", "password_hash")):
            return "each user needs a non-empty email and password_hash"
        if not user["password_hash"].startswith("scrypt$"):
            return "password_hash must come from `gateway hash-password`"
        groups = user.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            return "groups must be a list of strings"
    return None


IDENTITY_SPECS: Mapping[str, Mapping[str, _Key]] = {
    "header": {
        "email_header": _header("X-Forwarded-Email"),
        "name_header": _header("X-Forwarded-User"),
        "groups_header": _header("X-Forwarded-Groups"),
    },
    "oidc": {
        "issuer": _Key("url"),
        "client_id": _Key("str"),
        "client_secret": _Key("str"),
        "scopes": _Key("str_list", ("openid", "email", "profile")),
        "email_claim": _Key("str", "email"),
        "name_claim": _Key("str", "name"),
        "groups_claim": _Key("str", "groups"),
        "require_email_verified": _Key("bool", True),
        "token_endpoint_auth_method": _Key(
            "str", "client_secret_basic", choices=("client_secret_basic", "client_secret_post")
        ),
    },
    "jwt": {
        "issuer": _Key("str"),
        "audience": _Key("str"),
        "secret": _Key("str", ""),
        "jwks_url": _Key("url", ""),
        "email_claim": _Key("str", "email"),
        "name_claim": _Key("str", "name"),
        "entitlements_claim": _Key("str", "entitlements"),
        "leeway": _Key("int", 30, minimum=0, maximum=300),
    },
    "stripe": {
        "secret_key": _Key("str"),
        "webhook_secret": _Key("str"),
        "price": _Key("str"),
        "product": _Key("str"),
        "grace_days": _Key("int", 3, minimum=0, maximum=60),
        "api_base": _Key("url", ""),
        "mode": _Key("str", "subscription", choices=("subscription", "payment")),
    },
    "email": {
        "smtp_host": _Key("str"),
        "smtp_port": _Key("int", 587, minimum=1, maximum=65535),
        "smtp_user": _Key("str", ""),
        "smtp_password": _Key("str", ""),
        "starttls": _Key("bool", True),
        "sender": _Key("str"),
        "link_ttl": _Key("int", 900, minimum=60, maximum=86400),
    },
    "static": {"users": _Key("raw", check=_check_static_users)},
}

# Named in the interface but not built in this version: say so instead of "unknown type".
_PLANNED_IDENTITY_TYPES = ("saml", "ldap")


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
            return None
        name = match.group(1)
        if name not in env:
            problems.append(f"{path}: environment variable {name} is not set")
            return None
        return env[name]
    return node


def _gateway(reader: _Reader, raw: Any) -> GatewaySettings | None:
    values = reader.table(raw, "gateway", _GATEWAY_SPEC)
    secret = values["secret_key"]
    keys: tuple[str, ...] = ()
    if isinstance(secret, str):
        keys = (secret,)
    elif isinstance(secret, list) and secret and all(isinstance(k, str) for k in secret):
        keys = tuple(secret)
    elif secret is not None:
        reader.problem("gateway.secret_key", "must be a string or a non-empty list of strings")
    if any(len(k) < MIN_SECRET_KEY_LENGTH for k in keys):
        reader.problem(
            "gateway.secret_key", f"every key must be at least {MIN_SECRET_KEY_LENGTH} characters"
        )
    proxies: list[IPNetwork] = []
    for i, cidr in enumerate(values["trusted_proxies"] or ()):
        try:
            proxies.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            reader.problem(f"gateway.trusted_proxies[{i}]", "must be an IP address or CIDR block")
    if values["public_url"] is None or not keys:
        return None
    return GatewaySettings(
        public_url=values["public_url"],
        secret_keys=keys,
        trusted_proxies=tuple(proxies),
        upstream_connect_timeout=values["upstream_connect_timeout"],
        upstream_read_timeout=values["upstream_read_timeout"],
        readiness_interval=values["readiness_interval"],
        log_level=values["log_level"],
        session_idle=values["session_idle"],
        session_max_age=values["session_max_age"],
        metrics_token=values["metrics_token"],
    )


def _named_tables(reader: _Reader, raw: Any, prefix: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        reader.problem(prefix, "must be a table of named tables")
        return {}
    out = {}
    for name, table in raw.items():
        if not _NAME_RE.fullmatch(name):
            reader.problem(
                f"{prefix}.{name}", "name must be letters, digits, '-' or '_' (up to 63)"
            )
            continue
        out[name] = table
    return out


def _identity(reader: _Reader, name: str, raw: Any) -> IdentitySettings | None:
    prefix = f"identity.{name}"
    if not isinstance(raw, dict):
        reader.problem(prefix, "must be a table")
        return None
    kind = raw.get("type")
    if not isinstance(kind, str):
        reader.problem(f"{prefix}.type", "must be one of " + ", ".join(sorted(IDENTITY_SPECS)))
        return None
    if kind in _PLANNED_IDENTITY_TYPES:
        reader.problem(f"{prefix}.type", f"{kind!r} is not supported by this version")
        return None
    if kind not in IDENTITY_SPECS:
        reader.problem(f"{prefix}.type", "must be one of " + ", ".join(sorted(IDENTITY_SPECS)))
        return None
    spec = {"type": _Key("str"), "label": _Key("str", ""), **IDENTITY_SPECS[kind]}
    before = len(reader.problems)
    options = reader.table(raw, prefix, spec)
    jwt_keys = (options.get("secret"), options.get("jwks_url"))
    if kind == "jwt" and None not in jwt_keys and bool(jwt_keys[0]) == bool(jwt_keys[1]):
        reader.problem(prefix, "set exactly one of secret (HS256) or jwks_url (RS256/ES256)")
    if len(reader.problems) > before:
        return None
    options.pop("type")
    return IdentitySettings(name=name, type=kind, options=MappingProxyType(options))


def _site(
    reader: _Reader, name: str, raw: Any, identities: Mapping[str, Any]
) -> SiteSettings | None:
    prefix = f"sites.{name}"
    before = len(reader.problems)
    v = reader.table(raw, prefix, _SITE_SPEC)
    for ident in v["identity"] or ():
        if ident not in identities:
            reader.problem(f"{prefix}.identity", f"names no [identity.{ident}] table")
    if len(reader.problems) > before:
        return None
    return SiteSettings(
        name=name,
        url=v["url"],
        consumer_key=v["consumer_key"],
        consumer_secret=v["consumer_secret"],
        access_token=v["access_token"],
        access_token_secret=v["access_token_secret"],
        identities=v["identity"],
        allow_email_domains=tuple(d.lower().lstrip("@") for d in v["allow_email_domains"]),
        allow_groups=v["allow_groups"],
        return_hosts=tuple(h.lower() for h in v["return_hosts"]),
        login_mode=v["login_mode"],
        expire_bucket=v["expire_bucket"],
        require_entitlement=v["require_entitlement"],
        visitor_ttl=v["visitor_ttl"],
        visitor_unpublished=v["visitor_unpublished"],
    )


def _api_key(
    reader: _Reader, name: str, raw: Any, sites: Mapping[str, Any]
) -> ApiKeySettings | None:
    prefix = f"api_keys.{name}"
    before = len(reader.problems)
    v = reader.table(raw, prefix, _API_KEY_SPEC)
    if v["sites"] is not None and not v["sites"]:
        reader.problem(f"{prefix}.sites", "must name at least one site")
    for site in v["sites"] or ():
        if site not in sites:
            reader.problem(f"{prefix}.sites", f"names no [sites.{site}] table")
    if len(reader.problems) > before:
        return None
    return ApiKeySettings(
        name=name,
        key_sha256=bytes.fromhex(v["key_sha256"]),
        sites=frozenset(v["sites"]),
        max_ttl=v["max_ttl"],
        rate_limit=v["rate_limit"],
    )


def parse_settings(
    data: Mapping[str, Any], env: Mapping[str, str] | None = None, source: str = "<memory>"
) -> Settings:
    """Validate a parsed TOML document; raise ConfigError listing every problem."""
    problems: list[str] = []
    reader = _Reader(problems)
    raw = _resolve_env(dict(data), "", os.environ if env is None else env, problems)
    for key in sorted(set(raw) - {"gateway", "sites", "store", "identity", "api_keys"}):
        reader.problem(key, "unknown section")

    gateway = _gateway(reader, raw.get("gateway", {}))
    store_values = reader.table(raw.get("store", {}), "store", _STORE_SPEC)

    raw_identities = _named_tables(reader, raw.get("identity"), "identity")
    identities = {n: _identity(reader, n, t) for n, t in raw_identities.items()}

    raw_sites = _named_tables(reader, raw.get("sites"), "sites")
    if raw.get("sites") in (None, {}):
        reader.problem("sites", "at least one [sites.<name>] table is required")
    sites = {n: _site(reader, n, t, raw_identities) for n, t in raw_sites.items()}

    raw_keys = _named_tables(reader, raw.get("api_keys"), "api_keys")
    api_keys = {n: _api_key(reader, n, t, raw_sites) for n, t in raw_keys.items()}
    digests = [k.key_sha256 for k in api_keys.values() if k]
    if len(digests) != len(set(digests)):
        reader.problem("api_keys", "two keys share the same key_sha256")

    if problems or gateway is None:
        raise ConfigError(problems or ["gateway: is required"])
    return Settings(
        gateway=gateway,
        sites=MappingProxyType({n: s for n, s in sites.items() if s}),
        store=StoreSettings(url=store_values["url"], database_url=store_values["database_url"]),
        identities=MappingProxyType({n: i for n, i in identities.items() if i}),
        api_keys=MappingProxyType({n: k for n, k in api_keys.items() if k}),
        source=source,
    )


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
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        raise SystemExit(2) from None
