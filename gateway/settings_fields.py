"""The building blocks of every settings model: one frozen base model and field types whose
problems read as short sentences about the key (``must be an integer``), never echoing the
value (any value may be a secret).

Used by ``settings.py`` and by each identity type's own model in ``gateway/identity/``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, field_validator
from pydantic_core import PydanticCustomError

_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class Model(BaseModel):
    """Frozen, unknown keys refused, inputs never repeated in errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class Named(Model):
    """A table whose name is its key in the file (``[sites.<name>]``), not a key in it.

    ``name`` is a plain field (read on every request: a private attribute would cost a slow
    ``__getattr__`` each time), set by the loader after validation; a file that sets it is
    told the key is unknown."""

    name: str = ""

    @field_validator("name")
    @classmethod
    def _not_from_the_file(cls, value: str) -> str:
        if value:
            raise problem("unknown key")
        return value

    def named(self, name: str) -> Self:
        return self.model_copy(update={"name": name})


def problem(message: str) -> PydanticCustomError:
    """A validation problem whose text is exactly ``message`` (a sentence about the key)."""
    return PydanticCustomError("gateway", message)


# ---------------------------------------------------------------- scalar checks


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise problem("must be a string")
    return value


def _non_empty(value: Any) -> str:
    if _string(value) == "":
        raise problem("must not be empty")
    return str(value)


# Words the examples (and most others) use where a real secret belongs, compared with case,
# spaces and punctuation folded away: "replace-me", "CHANGE_ME", "<your secret>" ...
PLACEHOLDER_MARKERS = (
    "replaceme",
    "changeme",
    "changethis",
    "placeholder",
    "yoursecret",
    "secretgoeshere",
    "insertsecret",
)


def refuse_placeholder(secret: str) -> str:
    """A secret copied from an example unchanged is refused, naming the marker (never the value)."""
    folded = re.sub(r"[^a-z0-9]", "", secret.lower())
    for marker in PLACEHOLDER_MARKERS:
        if marker in folded:
            raise problem(f"is a placeholder (contains {marker!r}): set a real secret")
    return secret


def _secret(value: Any) -> Any:
    return value if isinstance(value, SecretStr) else refuse_placeholder(_string(value))


def _required_secret(value: Any) -> Any:
    return value if isinstance(value, SecretStr) else refuse_placeholder(_non_empty(value))


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise problem("must be an integer")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise problem("must be a number")
    return float(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise problem("must be true or false")
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise problem("must be a list of non-empty strings")
    return tuple(value)


def as_names(value: Any) -> tuple[str, ...]:
    """A name or a list of names (``identity = "corp"`` or ``["corp", "team"]``)."""
    if isinstance(value, str):
        return (value,) if value else ()
    return _strings(value)


# Numbers take their ranges as Field(ge=..., le=...); choices are Literal[...].
Text = Annotated[str, BeforeValidator(_string)]
RequiredText = Annotated[str, BeforeValidator(_non_empty)]
Secret = Annotated[SecretStr, BeforeValidator(_secret)]
RequiredSecret = Annotated[SecretStr, BeforeValidator(_required_secret)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Integer = Annotated[int, BeforeValidator(_integer)]
Number = Annotated[float, BeforeValidator(_number)]
Strings = Annotated[tuple[str, ...], BeforeValidator(_strings)]
Names = Annotated[tuple[str, ...], BeforeValidator(as_names)]


# ---------------------------------------------------------------- hosts and URLs


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(value: str, *, origin_only: bool, query_ok: bool = False) -> str | None:
    """A sentence saying what is wrong with a URL, or None."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URL"
    if parts.username is not None or parts.password is not None:
        return "must not contain user info"
    if parts.fragment or (parts.query and not query_ok):
        return "must not contain a fragment" if query_ok else "must not contain a query or fragment"
    if origin_only and parts.path not in ("", "/"):
        return "must be an origin (scheme, host and optional port) without a path"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return "must be https (http:// is accepted only for loopback hosts)"
    return None


def _url(origin_only: bool, optional: bool, query_ok: bool = False) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _string(value) if optional else _non_empty(value)
        if not text:
            return ""
        found = url_problem(text, origin_only=origin_only, query_ok=query_ok)
        if found:
            raise problem(found)
        return text if query_ok else text.rstrip("/")

    return check


Url = Annotated[str, BeforeValidator(_url(origin_only=False, optional=False))]
OptionalUrl = Annotated[str, BeforeValidator(_url(origin_only=False, optional=True))]
Origin = Annotated[str, BeforeValidator(_url(origin_only=True, optional=False))]
# A document to fetch (metadata, key sets): a query string is part of its address.
OptionalFetchUrl = Annotated[
    str, BeforeValidator(_url(origin_only=False, optional=True, query_ok=True))
]


def domain_problem(value: str) -> str | None:
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_LABEL_RE.fullmatch(x) for x in labels):
        return "must hold plain lower-case domain names (like example.com)"
    return None


def _domains(value: Any) -> tuple[str, ...]:
    out = tuple(d.lower().lstrip("@") for d in _strings(value))
    for domain in out:
        found = domain_problem(domain)
        if found:
            raise problem(found)
    return out


def _hosts(value: Any) -> tuple[str, ...]:
    out = tuple(h.lower() for h in _strings(value))
    for item in out:
        host, _, port = item.partition(":")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise problem("must hold host names with an optional :port")
        if not is_loopback_host(host) and domain_problem(host):
            raise problem("must hold host names with an optional :port")
    return out


def _header(value: Any) -> str:
    if not _HEADER_RE.fullmatch(_non_empty(value)):
        raise problem("must be an HTTP header name")
    return str(value)


def _readable_file(value: Any) -> str:
    from pathlib import Path

    if _string(value) and not Path(value).is_file():
        raise problem("is not a readable file")
    return str(value)


Domains = Annotated[tuple[str, ...], BeforeValidator(_domains)]

_COLOR_RE = re.compile(r"#[0-9a-fA-F]{6}")


def _color(value: Any) -> str:
    text = _string(value)
    if text and not _COLOR_RE.fullmatch(text):
        raise problem('must be a colour like "#1f6feb"')
    return text.lower()


AccentColor = Annotated[str, BeforeValidator(_color)]
ReadableFile = Annotated[str, BeforeValidator(_readable_file)]  # "" = none
Hosts = Annotated[tuple[str, ...], BeforeValidator(_hosts)]
HeaderName = Annotated[str, BeforeValidator(_header)]


class IdentityModel(Named):
    """What every ``[identity.<name>]`` table has; each type's model adds its own keys."""

    type: str
    label: Text = ""  # the text of its button on the chooser
