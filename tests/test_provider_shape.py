"""A new identity type is one module and one registry line: this file is the module (settings
model and provider, using two optional capabilities), the monkeypatched line is the registry,
and nothing else in the gateway changes. Also: web/ never names a concrete provider class and
identity/ never imports web/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest
from flask import Request, redirect
from werkzeug.wrappers import Response

from gateway import create_app
from gateway.identity.base import Completed, Identity, PendingLogin, Route
from gateway.identity.provider_context import ProviderContext
from gateway.identity.registry import PROVIDER_TYPES, ProviderType
from gateway.settings import ConfigError
from gateway.settings_fields import IdentityModel, RequiredText
from gateway.signing import timed_serializer
from tests.helpers import Devsite, make_settings, site_table

ROOT = Path(__file__).resolve().parent.parent


class PassphraseSettings(IdentityModel):
    type: Literal["passphrase"]
    passphrase: RequiredText
    email: RequiredText


class PassphraseProvider:
    """Sends the visitor to its own step, which signs them in when the passphrase matches."""

    label = "Say the passphrase"
    kind = "passphrase"

    def __init__(self, settings: PassphraseSettings, ctx: ProviderContext) -> None:
        self.name = settings.name
        self._settings = settings
        self._pending = timed_serializer(ctx.gateway.secret_keys, f"passphrase:{self.name}")

    def begin(self, request: Request, pending: PendingLogin) -> Response | Identity:
        state = self._pending.dumps(pending.to_json())
        return redirect(f"/sso/passphrase/{self.name}/say?state={state}")

    def routes(self) -> dict[str, Route]:
        return {"say": Route(("GET",), self._say)}

    def _say(self, request: Request) -> Response | Completed:
        pending = PendingLogin.from_json(self._pending.loads(request.args["state"], max_age=60))
        assert pending is not None
        if request.args.get("word") != self._settings.passphrase:
            return Response("Say the word.", 200, mimetype="text/plain")
        return Completed(Identity(email=self._settings.email, provider=self.name), pending)


@pytest.fixture()
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    # The one registry line:
    monkeypatch.setitem(
        PROVIDER_TYPES, "passphrase", ProviderType(PassphraseSettings, PassphraseProvider)
    )


def test_a_new_provider_type_signs_in_through_the_gateway(
    registered: None, devsite: Devsite
) -> None:
    settings = make_settings(
        {"hall": site_table(devsite.url, identity="door")},
        identity={
            "door": {"type": "passphrase", "passphrase": "mellon", "email": "frodo@shire.example"}
        },
    )
    client = create_app(settings).test_client()
    start = client.get("/sso/hall/login?return_url=/video/1001")
    assert start.status_code == 302 and start.headers["Location"].startswith(
        "/sso/passphrase/door/say"
    )
    asked = client.get(start.headers["Location"])
    assert asked.status_code == 200 and "Say the word" in asked.get_data(as_text=True)
    done = client.get(start.headers["Location"] + "&word=mellon")
    assert done.status_code == 302
    assert done.headers["Location"].startswith(devsite.url + "/api/session/redeem-token")
    (call,) = [c for c in devsite.calls() if c["method"] == "session/get-token"]
    assert call["params"]["email"] == "frodo@shire.example"
    assert call["params"]["return_url"] == "/video/1001"


def test_its_settings_are_checked_like_every_others(registered: None) -> None:
    with pytest.raises(ConfigError) as caught:
        make_settings(
            {"hall": site_table("https://v.example.com", identity="door")},
            identity={"door": {"type": "passphrase", "pasphrase": "x"}},
        )
    problems = caught.value.problems
    assert "identity.door.passphrase: is required" in problems
    assert "identity.door.email: is required" in problems
    assert "identity.door.pasphrase: unknown key (did you mean `passphrase`?)" in problems


def test_without_the_registry_line_the_type_is_unknown() -> None:
    with pytest.raises(ConfigError) as caught:
        make_settings(
            {"hall": site_table("https://v.example.com", identity="door")},
            identity={"door": {"type": "passphrase", "passphrase": "x", "email": "a@b.c"}},
        )
    assert any(p.startswith("identity.door.type: must be one of") for p in caught.value.problems)


def test_web_names_no_concrete_provider_and_identity_never_imports_web() -> None:
    classes = {"OidcProvider", "HeaderProvider", "StaticProvider", "PaywallJwtProvider"}
    classes |= {"StripeCheckoutProvider", "EmailLinkProvider"}
    for path in (ROOT / "gateway" / "web").glob("*.py"):
        text = path.read_text()
        for name in classes:
            assert name not in text, f"{path.name} names {name}"
        assert not re.search(r"from gateway\.identity\.(?!base|forms\b)\w+ import", text), path.name
    for path in (ROOT / "gateway" / "identity").glob("*.py"):
        assert "gateway.web" not in path.read_text(), f"{path.name} imports web"
    for path in (ROOT / "gateway" / "twentythree").glob("*.py"):
        assert not re.search(r"^(from|import) (flask|werkzeug)", path.read_text(), re.M), path.name
