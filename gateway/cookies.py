"""The gateway's cookies: one place for their names, paths and flags.

Every cookie is ``HttpOnly``, and ``Secure`` when ``public_url`` is https. On https at the root
path each one is ``__Host-`` prefixed (Secure, ``Path=/``, no ``Domain``), so a page on a
sibling subdomain can neither plant nor overwrite it. The player's ``SameSite=None`` copy keeps
its narrow path instead, under ``__Secure-``, so it is sent nowhere but ``/protection/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Request
from werkzeug.wrappers import Response


@dataclass(frozen=True)
class Cookie:
    """One cookie the gateway sets: its base name, natural path and SameSite mode."""

    name: str
    path: str = "/"
    samesite: str = "Lax"
    narrow: bool = False  # must keep its path (never widened to "/" for __Host-)
    https_only: bool = False  # only set on https (browsers refuse SameSite=None without it)
    # Read on a POST from another site (the SAML HTTP-POST binding): SameSite=None on https,
    # where Lax would not be sent; Lax on loopback http, where None is refused.
    cross_site_post: bool = False


SESSION = Cookie("gw_session")
PLAYER = Cookie("gw_player", path="/protection/", samesite="None", narrow=True, https_only=True)
OIDC_STATE = Cookie("gw_oidc", path="/sso/")
FORM = Cookie("gw_form", path="/sso/")
CHECKOUT = Cookie("gw_checkout", path="/sso/")
SAML_STATE = Cookie("gw_saml", path="/sso/", cross_site_post=True)
DEVICE = Cookie("gw_device", path="/sso/")  # accounts this browser signed in as (login limits)
ADMIN = Cookie("gw_admin", path="/admin", samesite="Strict", narrow=True)  # its own scope


class CookieJar:
    """Sets, reads and deletes the gateway's cookies the same way everywhere."""

    def __init__(self, public_url: str) -> None:
        parts = urlsplit(public_url)
        self.secure = parts.scheme == "https"
        self._prefix = parts.path.rstrip("/")  # a gateway mounted under a path
        self._host_prefix = self.secure and not self._prefix

    def _where(self, cookie: Cookie) -> tuple[str, str]:
        """(the cookie's full name, its path)."""
        if self._host_prefix and not cookie.narrow:
            return "__Host-" + cookie.name, "/"
        path = self._prefix + cookie.path
        return ("__Secure-" + cookie.name if self.secure else cookie.name), path

    def name(self, cookie: Cookie) -> str:
        return self._where(cookie)[0]

    def get(self, request: Request, cookie: Cookie) -> str:
        return request.cookies.get(self._where(cookie)[0], "")

    def set(self, response: Response, cookie: Cookie, value: str, max_age: int) -> None:
        if cookie.https_only and not self.secure:
            return
        name, path = self._where(cookie)
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path,
            secure=self.secure,
            httponly=True,
            samesite=self._samesite(cookie),
        )

    def _samesite(self, cookie: Cookie) -> str:
        return "None" if cookie.cross_site_post and self.secure else cookie.samesite

    def delete(self, response: Response, cookie: Cookie) -> None:
        if cookie.https_only and not self.secure:
            return
        name, path = self._where(cookie)
        response.delete_cookie(
            name, path=path, secure=self.secure, httponly=True, samesite=self._samesite(cookie)
        )
