"""Identity from an authenticating reverse proxy's headers, believed only from trusted peers."""

from __future__ import annotations

from flask import Request
from werkzeug.wrappers import Response

from gateway.errors import Unauthorized
from gateway.identity.base import Identity, PendingLogin
from gateway.identity.context import ProviderContext
from gateway.settings import IdentitySettings
from gateway.web.clientip import is_trusted


class HeaderProvider:
    label = "Company sign-in"

    def __init__(self, settings: IdentitySettings, ctx: ProviderContext) -> None:
        self.name = settings.name
        self.label = settings.options["label"] or self.label  # shown on the chooser
        self._options = settings.options
        self._trusted = ctx.gateway.trusted_proxies

    def begin(self, request: Request, pending: PendingLogin) -> Response | Identity:
        # The TCP peer itself must be the proxy: X-Forwarded-For is no proof of anything here.
        if not is_trusted(request.remote_addr or "", self._trusted):
            raise Unauthorized(
                "Sign-in headers are accepted only from the trusted proxy.", code="untrusted_proxy"
            )
        email = request.headers.get(self._options["email_header"], "").strip()
        if not email:
            raise Unauthorized("The proxy did not say who you are.", code="no_identity_header")
        name = request.headers.get(self._options["name_header"], "").strip()
        raw_groups = request.headers.get(self._options["groups_header"], "")
        groups = tuple(g.strip() for g in raw_groups.split(",") if g.strip())
        return Identity(email=email, name=name[:200], groups=groups[:100], provider=self.name)
