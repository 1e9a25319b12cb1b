"""Sign-ins that end somewhere other than a site (the operator console). The one sign-in flow
in ``web.sso`` serves them too: whoever owns a scope registers which provider signs in, where
the sign-in lands and what opens once it is done, so ``web`` never imports the console (data
flows one way)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app
from flask.sansio.app import App
from werkzeug.wrappers import Response

from gateway.identity.base import Identity

_KEY = "gateway.sign_in_scopes"


@dataclass(frozen=True)
class SignInScope:
    identity: Callable[[], str]  # the [identity.<name>] that signs in (404 when none)
    landing: str  # where the sign-in lands, carried through the IdP
    complete: Callable[[str, Identity], Response]  # a provider vouched for someone


def register(app: App, name: str, scope: SignInScope) -> None:
    app.extensions.setdefault(_KEY, {})[name] = scope


def scope_named(name: str) -> SignInScope | None:
    found: SignInScope | None = current_app.extensions.get(_KEY, {}).get(name)
    return found
