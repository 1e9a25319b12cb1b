"""A fixed list of accounts with scrypt password hashes, for small teams and the demo, signed
in through the gateway's own password form (limits and audit lines in ``password_form``)."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Request
from werkzeug.wrappers import Response

from gateway.identity.base import Identity, PendingLogin
from gateway.identity.context import ProviderContext
from gateway.identity.password_form import PasswordForm, Refused
from gateway.passwords import hash_password, verify_password
from gateway.settings import IdentitySettings


class StaticProvider:
    label = "Sign in with your password"

    def __init__(self, settings: IdentitySettings, ctx: ProviderContext) -> None:
        self.name = settings.name
        self.label = settings.options["label"] or self.label  # shown on the chooser
        self._users: dict[str, dict[str, Any]] = {
            u["email"].lower(): u for u in settings.options["users"]
        }
        self._form = PasswordForm(self.name, ctx)
        # Checked when the account is unknown, so a miss costs as much time as a hit.
        self._decoy = hash_password(secrets.token_urlsafe(16))

    def begin(self, request: Request, pending: PendingLogin) -> Response | Identity:
        if request.method != "POST":
            return self._form.page(pending)
        return self._form.submit(request, pending, self._check)

    def _check(self, email: str, password: str) -> Identity | Refused:
        user = self._users.get(email.lower())
        ok = verify_password(password, user["password_hash"] if user else self._decoy)
        if user is None:
            return Refused("unknown_account")
        if not ok:
            return Refused("wrong_password")
        return Identity(
            email=user["email"],
            name=user.get("name", ""),
            groups=tuple(user.get("groups", ())),
            provider=self.name,
        )
