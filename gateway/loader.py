"""Loading the configuration: the TOML file, ``env:`` values, and every model of
``gateway.settings`` with the identity types the registry knows (a discriminated union on
``type``), every problem at once. The loader imports the registry; the settings models never
do, so nothing imports back up into it.
"""

from __future__ import annotations

import difflib
import os
import sys
import tomllib
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError

from gateway.identity.registry import PROVIDER_TYPES
from gateway.settings import (
    _ENV_RE,
    _NAME_RE,
    SECTIONS,
    AccessRule,
    AdminSettings,
    ApiKeySettings,
    ConfigError,
    GatewaySettings,
    Settings,
    SiteSettings,
    StoreSettings,
    config_path,
)
from gateway.settings_fields import IdentityModel, Model

# --------------------------------------------------------------------------- identity union


@cache
def _identity_adapter(types: tuple[tuple[str, type[IdentityModel]], ...]) -> TypeAdapter[Any]:
    """dict[name, one of the registered identity models, chosen by ``type``]."""
    models = tuple(model for _, model in types)
    union: Any = models[0] if len(models) == 1 else Union[models]  # noqa: UP007 - built at run time
    tagged: Any = Annotated[union, Field(discriminator="type")]
    return TypeAdapter(dict[str, tagged])


def _registered() -> tuple[tuple[str, type[IdentityModel]], ...]:
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
        _typed_addresses_as_users(name, site, identities, problems)
    admin = raw.get("admin")
    for ident in _missing(admin.get("identity") if isinstance(admin, dict) else None, identities):
        problems.append(f"admin.identity: names no [identity.{ident}] table")
    _api_key_references(raw, sites, problems)


def _typed_addresses_as_users(
    name: str, site: Any, identities: dict[str, Any], problems: list[str]
) -> None:
    """login_mode = "user" signs a visitor in as the 23 user with their address: a stripe
    identity's address is whatever the payer typed, so the two do not go together."""
    if not isinstance(site, dict) or site.get("login_mode") != "user":
        return
    for ident in _listed(site.get("identity")):
        table = identities.get(ident)
        if isinstance(table, dict) and table.get("type") == "stripe":
            problems.append(
                f"sites.{name}.identity: [identity.{ident}] is a stripe checkout, whose e-mail "
                'address the payer types unchecked; login_mode = "user" would sign them in as '
                "that 23 user"
            )


def _api_key_references(raw: dict[str, Any], sites: Any, problems: list[str]) -> None:
    keys = {n: k for n, k in (raw.get("api_keys") or {}).items() if isinstance(k, dict)}
    for name, key in keys.items():
        for site in _missing(key.get("sites", ()), sites):
            problems.append(f"api_keys.{name}.sites: names no [sites.{site}] table")
    digests = [
        k["key_sha256"].lower() for k in keys.values() if isinstance(k.get("key_sha256"), str)
    ]
    if len(digests) != len(set(digests)):
        problems.append("api_keys: two keys share the same key_sha256")


def _listed(names: Any) -> list[str]:
    """One name or a list of them, as a list (anything else: none)."""
    listed = [names] if isinstance(names, str) else names if isinstance(names, list | tuple) else []
    return [n for n in listed if isinstance(n, str) and n]


def _missing(names: Any, defined: Mapping[str, Any]) -> list[str]:
    """The names (one string or a list of them) that ``defined`` has no table for."""
    return [n for n in _listed(names) if n not in defined]


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
