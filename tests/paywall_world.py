"""A running world for the paywall flows: the emulated 23 site (its remote login points at the
paywalled site "shop"), a Stripe stand-in reached by the real stripe library, a real SMTP server
(aiosmtpd) capturing sign-in mail, a JWKS host for RS256 paywall tokens, and the gateway."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from flask import Flask, jsonify
from joserfc.jwk import KeySet, RSAKey

from gateway.devsite import DevsiteOptions, create_devsite
from tests.cluster import Gateway, start_gateway
from tests.helpers import (
    Devsite,
    LiveServer,
    free_port,
    make_settings,
    site_table,
)
from tests.stripe_standin import PRICE, SECRET_KEY, WEBHOOK_SECRET, StripeStandin

PAYWALL_SECRET = "paywall-shared-secret-0123456789abcdef"
ISSUER = "https://paywall.example"
AUDIENCE = "23-gateway"


class MailCatcher:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted"


@dataclass
class JwksHost:
    keys: list[RSAKey] = field(default_factory=list)

    def app(self) -> Flask:
        app = Flask("jwks-host")

        @app.get("/jwks.json")
        def jwks() -> Any:
            return jsonify(KeySet(self.keys).as_dict(private=False))  # type: ignore[arg-type]

        return app


@dataclass
class PaywallWorld:
    gateway: str
    devsite: Devsite
    stripe: StripeStandin
    stripe_url: str
    mail: MailCatcher
    jwks: JwksHost
    served: Gateway

    @property
    def app(self) -> Any:
        return self.served.app

    def reset(self) -> None:
        self.devsite.reset()
        self.served.forget_state()
        self.stripe.down = False
        with self.mail.lock:
            self.mail.messages.clear()

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [c for c in self.devsite.calls() if c.get("method") == method]

    @property
    def entitlements(self) -> Any:
        return self.app.extensions["gateway.runtime"].entitlements


def _identities(stripe_api: str, smtp_port: int, jwks_url: str) -> dict[str, Any]:
    """Stripe checkout, e-mail links for subscribers, and a publisher's own JWTs (shared
    secret, and RSA keys from a JWKS)."""
    jwt = {"type": "jwt", "issuer": ISSUER, "audience": AUDIENCE}
    return {
        "gold": {
            "type": "stripe",
            "label": "Subscribe (gold)",
            "secret_key": SECRET_KEY,
            "webhook_secret": WEBHOOK_SECRET,
            "price": PRICE,
            "product": "gold",
            "grace_days": 3,
            "portal": True,
            "api_base": stripe_api,
        },
        "mail": {
            "type": "email",
            "label": "Already a subscriber? E-mail me a link",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "starttls": False,
            "sender": "videos@example.com",
        },
        "paywall": jwt | {"secret": PAYWALL_SECRET},
        "paywall-rsa": jwt | {"jwks_url": jwks_url},
    }


def running_paywall_world(
    tmp: Path, topology: str = "one-instance", redis_url: str = ""
) -> Iterator[PaywallWorld]:
    gw_port = free_port()
    gateway = f"http://127.0.0.1:{gw_port}"
    stripe = StripeStandin()
    stripe_server = LiveServer(stripe.app)  # type: ignore[arg-type]
    jwks = JwksHost([RSAKey.generate_key(2048, parameters={"kid": "k1"})])
    jwks_server = LiveServer(jwks.app())
    mail = MailCatcher()
    smtp_port = free_port()
    smtp = Controller(mail, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    devsite = Devsite(create_devsite(DevsiteOptions(remote_login_url=f"{gateway}/sso/shop/login")))
    build = lambda store: make_settings(  # noqa: E731
        {
            "shop": site_table(devsite.url, identity=["gold", "mail"], require_entitlement="gold"),
            "paywalled": site_table(devsite.url, identity="paywall", require_entitlement="gold"),
            "open": site_table(devsite.url, identity="paywall"),
            "rsa": site_table(devsite.url, identity="paywall-rsa"),
        },
        gateway={"public_url": gateway},
        store={"database_url": f"sqlite:///{tmp / 'entitlements.db'}", **store},
        identity=_identities(stripe_server.url, smtp_port, f"{jwks_server.url}/jwks.json"),
    )
    served = start_gateway(topology, build, gw_port, redis_url)
    yield PaywallWorld(served.url, devsite, stripe, stripe_server.url, mail, jwks, served)
    served.stop()
    devsite.stop()
    smtp.stop()
    jwks_server.stop()
    stripe_server.stop()
    for app in served.apps:
        app.extensions["gateway.runtime"].entitlements.dispose()
