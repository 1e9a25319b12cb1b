"""A fixed list of accounts with scrypt password hashes, for small teams and the demo, signed
in through the gateway's own password form (limits and audit lines in ``password_form``)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from flask import Request
from pydantic import BeforeValidator

from gateway.emails import canonical_email
from gateway.identity.base import Identity, Page, PendingLogin
from gateway.identity.password_form import PasswordForm, Refused
from gateway.identity.provider_context import ProviderBase, ProviderContext
from gateway.passwords import hash_password, verify_password
from gateway.settings_fields import IdentityModel, problem


@dataclass(frozen=True)
class StaticUser:
    email: str
    password_hash: str
    name: str = ""
    groups: tuple[str, ...] = ()


def _users(value: Any) -> tuple[StaticUser, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise problem("must be a non-empty list of {email, name, password_hash, groups} tables")
    users = []
    for user in value:
        if isinstance(user, StaticUser):
            users.append(user)
            continue
        if not isinstance(user, dict) or set(user) - {"email", "name", "password_hash", "groups"}:
            raise problem("each user has only the keys email, name, password_hash, groups")
        if not all(isinstance(user.get(k), str) and user[k] for k in ("email", "password_hash")):
            raise problem("each user needs a non-empty email and password_hash")
        if not user["password_hash"].startswith("scrypt$"):
            raise problem("password_hash must come from `gateway hash-password`")
        groups = user.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise problem("groups must be a list of strings")
        name = user.get("name", "")
        if not isinstance(name, str):
            raise problem("name must be a string")
        users.append(StaticUser(user["email"], user["password_hash"], name, tuple(groups)))
    return tuple(users)


class StaticSettings(IdentityModel):
    type: Literal["static"]
    users: Annotated[tuple[StaticUser, ...], BeforeValidator(_users)]


class StaticProvider(ProviderBase[StaticSettings]):
    label = "Sign in with your password"

    def __init__(self, settings: StaticSettings, ctx: ProviderContext) -> None:
        super().__init__(settings, ctx)
        self._users = {canonical_email(u.email) or u.email: u for u in settings.users}
        self._form = PasswordForm(self.name, ctx)
        # Checked when the account is unknown, so a miss costs as much time as a hit.
        self._decoy = hash_password(secrets.token_urlsafe(16))

    def begin(self, request: Request, pending: PendingLogin) -> Page | Identity:
        return self._form.answer(request, pending, self._check)

    def knows(self, email: str) -> bool:
        """Whether an account with this address exists here (the console's "why")."""
        key = canonical_email(email)
        return key is not None and key in self._users

    def _check(self, email: str, password: str) -> Identity | Refused:
        key = canonical_email(email)
        user = self._users.get(key) if key is not None else None
        ok = verify_password(password, user.password_hash if user else self._decoy)
        if user is None:
            return Refused("unknown_account")
        if not ok:
            return Refused("wrong_password")
        return Identity(email=user.email, name=user.name, groups=user.groups, provider=self.name)
