"""The one CSRF guard for every form the gateway serves: visitors' and the console's.

A form carries a signed, timed (binding, purpose). The binding is something a cross-site page
can neither read nor set: the browser's form-nonce cookie (``SameSite=Lax``, ``__Host-`` on
https) for visitor forms, the console session's id for the console. A post is accepted only
with a token for the same purpose and the same binding, so a token lifted from one form opens
no other form, browser or session.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Sequence

from flask import Request
from itsdangerous import BadSignature, SignatureExpired

from gateway.cookies import FORM, CookieJar
from gateway.errors import BadRequest
from gateway.signing import timed_serializer

FORM_MAX_AGE = 900  # seconds a form stays valid
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{22}")


class FormExpired(BadRequest, code="invalid_form"):
    """The form expired; please try again."""


class FormGuard:
    def __init__(self, purpose: str, secret_keys: Sequence[str], cookies: CookieJar) -> None:
        self.purpose = purpose
        self._signer = timed_serializer(secret_keys, "login-form")
        self._cookies = cookies

    # -------------------------------------------------------- bound to a session
    def token(self, binding: str) -> str:
        """A form token for this purpose, valid only with ``binding``."""
        return self._signer.dumps([binding, self.purpose])

    def check_bound(self, given: str, binding: str) -> None:
        """Raise FormExpired unless ``given`` is this purpose's token for ``binding``."""
        try:
            bound, purpose = self._signer.loads(given, max_age=FORM_MAX_AGE)
        except (SignatureExpired, BadSignature, ValueError, TypeError):
            raise FormExpired() from None
        if purpose != self.purpose or not binding or not isinstance(bound, str):
            raise FormExpired()
        if not hmac.compare_digest(binding.encode(), bound.encode()):
            raise FormExpired()

    # -------------------------------------------------------- bound to the browser
    def issue(self, request: Request) -> tuple[str, str]:
        """(the form's token, the nonce its cookie must carry). The browser's nonce is kept
        when it has one, so forms open in several tabs all stay valid."""
        current = self._cookies.get(request, FORM)
        nonce = current if _NONCE_RE.fullmatch(current) else secrets.token_urlsafe(16)
        return self.token(nonce), nonce

    def check(self, request: Request) -> None:
        """Raise FormExpired unless the post carries this purpose's token and its cookie."""
        self.check_bound(request.form.get("csrf", ""), self._cookies.get(request, FORM))
