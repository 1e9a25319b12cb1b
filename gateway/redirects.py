"""Return URLs: the one place that decides where a visitor may be sent back to.

Accepted: a site path (``/video/123?x=1#t``), or an absolute URL on the site's own host or a
host in ``return_hosts``, with the site's scheme (``https``; ``http`` only when the site itself
is http, i.e. a loopback development site). Everything else is refused before any upstream
call: other hosts, scheme-relative ``//host``, backslashes, user info, control characters and
whitespace, other schemes, and any of these hidden behind percent-encoding.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from gateway.errors import BadRequest
from gateway.settings import SiteSettings

MAX_LENGTH = 2048
DEFAULT = "/"
_DEFAULT_PORTS = {"http": "80", "https": "443"}
# Never in a return URL, raw or percent-encoded: C0 controls (tab, CR, LF...), DEL, backslash,
# and the Unicode spaces and separators some parsers treat as line breaks. A raw space is
# refused too; an encoded one (%20) is an ordinary part of a path or query.
_FORBIDDEN = re.compile(
    r"[\x00-\x1f\x7f\\\u0085\u00a0\u1680\u2000-\u200f\u2028\u2029\u202f"
    r"\u205f\u3000\ufeff]"
)
_HOST_RE = re.compile(r"^[a-z0-9.-]+(:[0-9]{1,5})?$")


class UnsafeReturnUrl(BadRequest, code="invalid_return_url"):
    """return_url must be a path on the video site or a URL on its own host."""


def _layers(value: str) -> list[str]:
    """The value and its percent-decodings (up to three deep), to catch encoded tricks."""
    layers = [value]
    for _ in range(3):
        decoded = unquote(layers[-1])
        if decoded == layers[-1]:
            break
        layers.append(decoded)
    return layers


def _host_key(scheme: str, netloc: str) -> str:
    host, _, port = netloc.lower().partition(":")
    return host if port in ("", _DEFAULT_PORTS.get(scheme, "")) else f"{host}:{port}"


def allowed_hosts(site: SiteSettings) -> frozenset[str]:
    parts = urlsplit(site.url)
    own = _host_key(parts.scheme, parts.netloc)
    return frozenset({own, *(_host_key(parts.scheme, h) for h in site.return_hosts)})


def safe_return_url(value: str | None, site: SiteSettings) -> str:
    """The return URL to hand to 23, or UnsafeReturnUrl. Absent or empty means the site root."""
    if value is None or value == "":
        return DEFAULT
    if len(value) > MAX_LENGTH or not value.isascii():
        raise UnsafeReturnUrl()
    if " " in value:
        raise UnsafeReturnUrl()
    layers = _layers(value)
    for layer in layers:
        if _FORBIDDEN.search(layer) or layer.startswith("//"):
            raise UnsafeReturnUrl()
    if value.startswith("/"):
        _check_path(layers)
        return value
    _check_absolute(value, layers, site)
    return value


def on_site(site: SiteSettings, checked_url: str) -> str:
    """An absolute URL for a return URL ``safe_return_url`` accepted (a path gets the site's
    origin), for links the gateway shows itself."""
    return site.url + checked_url if checked_url.startswith("/") else checked_url


def _check_path(layers: list[str]) -> None:
    for layer in layers:
        parts = urlsplit(layer)
        # A decoded layer that turns into "scheme:" or "//host" was a trick in disguise.
        if parts.scheme or parts.netloc or not layer.startswith("/"):
            raise UnsafeReturnUrl()


def _check_absolute(value: str, layers: list[str], site: SiteSettings) -> None:
    site_scheme = urlsplit(site.url).scheme
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise UnsafeReturnUrl() from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or (scheme == "http" and site_scheme != "http"):
        raise UnsafeReturnUrl()
    if not value.lower().startswith(f"{scheme}://"):
        raise UnsafeReturnUrl()  # "https:/host" or "https:host" parse oddly across libraries
    netloc = parts.netloc
    if not _plain_host(netloc, parts.hostname or ""):
        raise UnsafeReturnUrl()
    if _host_key(scheme, netloc) not in allowed_hosts(site):
        raise UnsafeReturnUrl()
    # Every decoded layer must point at the same place (no "%2F%2Fevil" in disguise).
    for layer in layers[1:]:
        decoded = urlsplit(layer)
        if decoded.netloc.lower() != netloc.lower() or decoded.scheme.lower() != scheme:
            raise UnsafeReturnUrl()


def _plain_host(netloc: str, host: str) -> bool:
    """No credentials, escapes, trailing dots or empty labels: a host means one thing."""
    if "@" in netloc or "%" in netloc or not _HOST_RE.fullmatch(netloc.lower()):
        return False
    return bool(host) and not host.endswith(".") and ".." not in host


def is_site_page(url: str | None, site: SiteSettings) -> bool:
    """Whether ``url`` (a Referer) is a page on the site's own host or one of its return_hosts."""
    if not url or len(url) > MAX_LENGTH or _FORBIDDEN.search(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    netloc = parts.netloc
    if parts.scheme != urlsplit(site.url).scheme or not _HOST_RE.fullmatch(netloc.lower()):
        return False
    return _host_key(parts.scheme, netloc) in allowed_hosts(site)


# The gateway's own visitor links: /embed/<site>/<id> and /download/<site>/<id>/<format>.
_NEXT_RE = re.compile(
    r"/(?:embed/(?P<e>[A-Za-z0-9_-]{1,63})/[1-9][0-9]{0,15}"
    r"|download/(?P<d>[A-Za-z0-9_-]{1,63})/[1-9][0-9]{0,15}/[a-z0-9_]{1,40}"
    r"|(?:upload|account)/(?P<u>[A-Za-z0-9_-]{1,63}))"
)


class UnsafeNext(BadRequest, code="invalid_next"):
    """next must be one of this gateway's video links for the same site."""


def safe_next(value: str | None, site: SiteSettings) -> str:
    """Where to send a visitor inside the gateway after sign-in instead of to 23: only this
    site's embed and download links and its upload page. Absent or empty means none."""
    if not value:
        return ""
    match = _NEXT_RE.fullmatch(value)
    if match is None or (match["e"] or match["d"] or match["u"]) != site.name:
        raise UnsafeNext()
    return value
