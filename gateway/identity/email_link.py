"""Sign-in links by e-mail, for returning subscribers.

The visitor gives an address; the gateway mails a signed link (``link_ttl`` seconds, single
use) through the configured SMTP server with the standard library's ``smtplib``. The answer
page is the same whoever asks, so the form does not reveal who is a subscriber; the site's
policy (entitlements included) decides after the link is used. Opening the link shows a
"continue" button and only its POST signs in, so mail scanners that fetch links cannot use up
the link or sign anyone in. That POST carries a form token bound to the browser that opened
the link, so another site cannot post a link of its own choosing (login CSRF).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any, Literal

from flask import Request
from itsdangerous import BadSignature, SignatureExpired
from pydantic import Field, SecretStr

from gateway.clientip import client_bucket, visitor_ip
from gateway.csrf import FormGuard
from gateway.emails import email_domain
from gateway.errors import BadRequest, GatewayError
from gateway.identity.base import (
    Completed,
    Identity,
    Page,
    PendingLogin,
    Route,
    Shown,
    step_path,
)
from gateway.identity.provider_context import ProviderBase, ProviderContext
from gateway.logs import audit
from gateway.settings_fields import Flag, IdentityModel, Integer, RequiredText, Secret, Text
from gateway.signing import timed_serializer

log = logging.getLogger("gateway.email")

SMTP_TIMEOUT = 10  # seconds, for the whole conversation's each step
LINKS_PER_ADDRESS = 3  # per 10 minutes
LINKS_PER_IP = 10  # per 10 minutes


class SignInLinkInvalid(BadRequest, code="invalid_sign_in_link"):
    """This sign-in link is not valid or has expired. Please ask for a new one."""


class SignInLinkUsed(BadRequest, code="sign_in_link_used"):
    """This sign-in link was already used. Please ask for a new one."""


class MailUnavailable(GatewayError, status=502, code="mail_unavailable"):
    """The sign-in e-mail could not be sent right now. Please try again shortly."""


class EmailLinkSettings(IdentityModel):
    type: Literal["email"]
    smtp_host: RequiredText
    smtp_port: Integer = Field(587, ge=1, le=65535)
    smtp_user: Text = ""
    smtp_password: Secret = SecretStr("")
    starttls: Flag = True
    sender: RequiredText
    link_ttl: Integer = Field(900, ge=60, le=86400)


class EmailLinkProvider(ProviderBase[EmailLinkSettings]):
    label = "E-mail me a sign-in link"
    kind = "email"

    def proves_mailbox(self) -> bool:
        return True  # the visitor opened a link sent to the address

    def __init__(self, settings: EmailLinkSettings, ctx: ProviderContext) -> None:
        super().__init__(settings, ctx)
        self._ttl = settings.link_ttl
        self._links = timed_serializer(ctx.gateway.secret_keys, f"email-link:{self.name}")
        self._forms = FormGuard(self.name, ctx.gateway.secret_keys, ctx.cookies)
        self._confirm = FormGuard(f"email-verify:{self.name}", ctx.gateway.secret_keys, ctx.cookies)
        self.verify_path = step_path(self.kind, self.name, "verify")
        self.verify_url = ctx.gateway.public_url + self.verify_path

    def routes(self) -> dict[str, Route]:
        return {"verify": Route(("GET", "POST"), self._verify)}

    # ------------------------------------------------------------------ asking for a link

    def begin(self, request: Request, pending: PendingLogin) -> Shown | Identity:
        if request.method != "POST":
            return self._form(pending)
        self._forms.check(request)
        email = request.form.get("email", "").strip()[:254]
        if email_domain(email) is None:
            return self._form(pending, "That does not look like an e-mail address.", email, 400)
        ip = visitor_ip(request, self._ctx.gateway.trusted_proxies)
        limiter = self._ctx.limiter
        limiter.limit(f"email-link-ip:{self.name}:{client_bucket(ip)}", LINKS_PER_IP, 600)
        limiter.limit(f"email-link:{self.name}:{email.lower()}", LINKS_PER_ADDRESS, 600)
        token = self._links.dumps(
            {"e": email, "p": pending.to_json(), "n": secrets.token_urlsafe(16)}
        )
        self._send(email, f"{self.verify_url}?token={token}")
        audit("sign_in_link_sent", identity=self.name, site=pending.site, email=email)
        return Page(
            "email_sent.html", {"site": pending.site, "email": email, "minutes": self._ttl // 60}
        )

    def _form(
        self, pending: PendingLogin, error: str = "", email: str = "", status: int = 200
    ) -> Page:
        return Page.sign_in_form(
            "email_login.html", self.name, pending, status, error=error, email=email
        )

    def _send(self, to: str, link: str) -> None:
        message = EmailMessage()
        message["From"] = self._settings.sender
        message["To"] = to
        message["Subject"] = "Your sign-in link"
        minutes = self._ttl // 60
        message.set_content(
            "Hello,\n\nUse this link to sign in and watch. It works once, for "
            f"{minutes} minutes:\n\n{link}\n\nIf you did not ask for it, ignore this e-mail.\n"
        )
        try:
            with smtplib.SMTP(
                self._settings.smtp_host, self._settings.smtp_port, timeout=SMTP_TIMEOUT
            ) as smtp:
                if self._settings.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._settings.smtp_user:
                    smtp.login(
                        self._settings.smtp_user, self._settings.smtp_password.get_secret_value()
                    )
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("sign-in mail not sent", extra={"reason": type(exc).__name__})
            raise MailUnavailable() from None

    # ------------------------------------------------------------------ using the link

    def _read(self, token: str) -> tuple[str, PendingLogin, str]:
        """(e-mail, pending login, nonce) of a valid link, else SignInLinkInvalid."""
        try:
            data: Any = self._links.loads(token, max_age=self._ttl)
        except (SignatureExpired, BadSignature):
            raise SignInLinkInvalid() from None
        pending = PendingLogin.from_json(data.get("p")) if isinstance(data, dict) else None
        if pending is None or not all(isinstance(data.get(k), str) for k in "en"):
            raise SignInLinkInvalid()
        return data["e"], pending, data["n"]

    def _verify(self, request: Request) -> Page | Completed:
        if request.method == "GET":
            return self.confirm_page(request)
        return Completed(*self.complete(request))

    def confirm_page(self, request: Request) -> Page:
        """What opening the link shows: one button, so only a person's click signs in."""
        token = request.args.get("token", "")
        email, pending, _ = self._read(token)
        return Page(
            "email_confirm.html",
            {"site": pending.site, "email": email, "token": token, "action": self.verify_path},
            form=self._confirm.purpose,
            headers={"Referrer-Policy": "no-referrer"},  # the link's token stays out of logs
        )

    def complete(self, request: Request) -> tuple[Identity, PendingLogin]:
        self._confirm.check(request)
        email, pending, nonce = self._read(request.form.get("token", ""))
        marker = f"email-link:{self.name}:" + hashlib.sha256(nonce.encode()).hexdigest()
        if not self._ctx.store.add(marker, 1, ttl=self._ttl + 60):
            raise SignInLinkUsed()
        return Identity(email=email, provider=self.name), pending
