"""LDAP and Active Directory sign-in through the gateway's own password form, with ldap3
(pure Python: nothing to compile on a fresh machine).

A sign-in: the service account (a pooled, already-bound connection) searches ``user_filter``
under ``base_dn`` with the typed name escaped (RFC 4515) and a size limit of 2; exactly one
entry, or refusal. Then a **fresh** connection binds as that entry's DN with the typed
password. E-mail, name and groups come from the entry (``memberOf``) or from a group search
under ``group_base_dn``. The form refuses an empty password before any LDAP call, because an
unauthenticated bind "succeeds" on many servers. Referrals are never chased, certificates
are always verified (the system's CAs, or ``ca_file``), and every connect and operation is
bounded by ``timeout``: a directory that is down or slow makes the form say "sign-in is
unavailable" (503), and the next attempt tries again. An Active Directory account whose
``userAccountControl`` has the ACCOUNTDISABLE bit (2) is refused.
"""

from __future__ import annotations

import logging
import math
import queue
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from flask import Request
from pydantic import BeforeValidator, Field, ValidationInfo, field_validator

from gateway import tracing
from gateway.identity.base import Identity, Page, PendingLogin
from gateway.identity.password_form import PasswordForm, Refused, SignInUnavailable
from gateway.identity.provider_context import ProviderBase, ProviderContext
from gateway.settings_fields import (
    Flag,
    IdentityModel,
    Number,
    ReadableFile,
    RequiredSecret,
    RequiredText,
    Text,
    is_loopback_host,
    problem,
)

log = logging.getLogger("gateway.ldap")

ACCOUNT_DISABLED = 0x2  # userAccountControl's ACCOUNTDISABLE bit
POOL_SIZE = 4
MAX_GROUPS = 200


def _ldap_url(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise problem("must be an ldap:// or ldaps:// URL")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise problem("is not a valid URL") from None
    if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
        raise problem("must be an ldap:// or ldaps:// URL")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise problem("must be scheme, host and optional port only")
    return value.rstrip("/")


LdapUrl = Annotated[str, BeforeValidator(_ldap_url)]


class LdapSettings(IdentityModel):
    type: Literal["ldap"]
    start_tls: Flag = False  # (before url: url's check reads it)
    url: LdapUrl  # ldaps://host[:port], or ldap:// with start_tls (or on a loopback host)
    ca_file: ReadableFile = ""  # PEM bundle to verify the server; default: the system's CAs
    bind_dn: RequiredText
    bind_password: RequiredSecret
    base_dn: RequiredText
    user_filter: Text = "(&(objectClass=person)(|(uid={username})(mail={username})))"
    email_attribute: Text = "mail"
    name_attribute: Text = "displayName"
    group_base_dn: Text = ""  # empty: read the user's memberOf
    group_filter: Text = "(&(objectClass=groupOfNames)(member={dn}))"
    group_name_attribute: Text = "cn"
    timeout: Number = Field(5.0, ge=0.5, le=30)  # seconds for connect and each operation

    @field_validator("url")
    @classmethod
    def _safe_transport(cls, url: str, info: ValidationInfo) -> str:
        parts = urlsplit(url)
        start_tls = bool(info.data.get("start_tls"))
        loopback = is_loopback_host(parts.hostname or "")
        if parts.scheme == "ldap" and not start_tls and not loopback:
            raise problem("ldap:// needs start_tls = true (or a loopback host); or use ldaps://")
        if parts.scheme == "ldaps" and start_tls:
            raise problem("is ldaps:// already TLS: start_tls is for ldap:// URLs")
        return url

    @field_validator("user_filter")
    @classmethod
    def _has_username(cls, value: str) -> str:
        if "{username}" not in value:
            raise problem("must contain {username}")
        return value


class LdapProvider(ProviderBase[LdapSettings]):
    label = "Sign in with your directory account"

    def __init__(self, settings: LdapSettings, ctx: ProviderContext) -> None:
        from ldap3 import Tls

        super().__init__(settings, ctx)
        parts = urlsplit(settings.url)
        tls = None
        if parts.scheme == "ldaps" or settings.start_tls:
            tls = Tls(
                validate=ssl.CERT_REQUIRED,  # never CERT_NONE
                version=ssl.PROTOCOL_TLS_CLIENT,
                ca_certs_file=settings.ca_file or None,
            )
        # A new Server per connection: ldap3 benches an address for 5 s after one failure,
        # and a directory that is back must be used at once.
        self._server_args: dict[str, Any] = {
            "host": parts.hostname or "",
            "port": parts.port,
            "use_ssl": parts.scheme == "ldaps",
            "tls": tls,
            "connect_timeout": settings.timeout,
            "get_info": "NO_INFO",
        }
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue(maxsize=POOL_SIZE)
        self._form = PasswordForm(
            self.name,
            ctx,
            username_label="Username or e-mail",
            username_hint="Use your company account (username or e-mail) and its password.",
        )

    def begin(self, request: Request, pending: PendingLogin) -> Page | Identity:
        return self._form.answer(request, pending, self._check)

    # ------------------------------------------------------------------ connections

    def _connection(self, user: str | None = None, password: str | None = None) -> Any:
        """An open (StartTLS'd) connection; bound when ``user`` is given."""
        from ldap3 import Connection, Server

        conn = Connection(
            Server(**self._server_args),
            user=user,
            password=password,
            auto_bind="NONE",
            auto_referrals=False,  # referrals are never chased
            receive_timeout=math.ceil(self._settings.timeout),  # ldap3 packs it as a whole number
            raise_exceptions=False,
            read_only=True,
        )
        conn.open()
        if self._settings.start_tls and not conn.start_tls():
            conn.unbind()
            raise _Down("start_tls_refused")
        return conn

    @contextmanager
    def _service(self) -> Iterator[Any]:
        """A bound service connection from the pool; a broken one is dropped, not reused.
        A pooled one the directory has dropped meanwhile (it restarted) raises _Stale."""
        from ldap3.core.exceptions import LDAPException

        reused = True
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            reused = False
            conn = self._connection(
                self._settings.bind_dn, self._settings.bind_password.get_secret_value()
            )
            with tracing.span("ldap bind", client=True, **{"gateway.provider": self.name}):
                bound = conn.bind()
            if not bound:
                reason = conn.result.get("description", "bind_failed")
                conn.unbind()
                log.error("the LDAP service account cannot bind", extra={"reason": reason})
                raise _Down("service_bind_refused") from None
        try:
            yield conn
        except (LDAPException, OSError) as exc:
            conn.unbind()
            if reused:
                raise _Stale() from exc
            raise
        except BaseException:
            conn.unbind()
            raise
        try:
            self._pool.put_nowait(conn)
        except queue.Full:
            conn.unbind()

    # ------------------------------------------------------------------ the check

    def _check(self, username: str, password: str) -> Identity | Refused:
        from ldap3.core.exceptions import LDAPException

        try:
            try:
                return self._lookup_and_bind(username, password)
            except _Stale:  # once more, on a fresh connection
                return self._lookup_and_bind(username, password)
        except (LDAPException, OSError, _Down, _Stale) as exc:
            cause = exc.__cause__ if isinstance(exc, _Stale) else exc
            log.warning(
                "directory unavailable",
                extra={
                    "identity": self.name,
                    "cause": type(cause).__name__,
                    "detail": str(exc)[:200],
                },
            )
            raise SignInUnavailable() from None

    def _lookup_and_bind(self, username: str, password: str) -> Identity | Refused:

        wanted = [
            self._settings.email_attribute,
            self._settings.name_attribute,
            "userAccountControl",
        ]
        if not self._settings.group_base_dn:
            wanted.append("memberOf")
        with self._service() as conn:
            entries = self._find(conn, username, [a for a in wanted if a])
            if entries is None:
                return Refused("ambiguous_user")
            if not entries:
                return Refused("no_such_user")
            entry = entries[0]
            attributes = entry.get("attributes", {})
            if _disabled(attributes.get("userAccountControl")):
                return Refused("account_disabled")
            groups = self._groups(conn, entry["dn"], attributes, username)
        if not self._bind_as(entry["dn"], password):
            return Refused("wrong_password")
        email = _first(attributes.get(self._settings.email_attribute))
        if not email:
            return Refused("no_email")
        return Identity(
            email=email,
            name=_first(attributes.get(self._settings.name_attribute))[:200],
            groups=groups,
            provider=self.name,
            subject=str(entry["dn"]),
        )

    def _find(self, conn: Any, username: str, attributes: list[str]) -> list[Any] | None:
        """The directory's entries for ``username`` under the user filter (at most one is
        wanted), or None when it names more than one."""
        from ldap3 import SUBTREE
        from ldap3.utils.conv import escape_filter_chars

        search = self._settings.user_filter.replace("{username}", escape_filter_chars(username))
        if not conn.search(
            self._settings.base_dn,
            search,
            search_scope=SUBTREE,
            attributes=attributes,
            size_limit=2,
            time_limit=max(1, int(self._settings.timeout)),
        ) and conn.result.get("result") not in (0, 4):  # ok, or more than one found
            # noSuchObject included: a base_dn that is wrong (or hidden from the service
            # account) must not look like "no such user" to everyone.
            raise _Down(str(conn.result.get("description", "search_failed")))
        entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        return None if conn.result.get("result") == 4 or len(entries) > 1 else entries

    def knows(self, email: str) -> bool | None:
        """Whether the directory has an account for this address (the console's "why"),
        asked with the service account; None when it cannot say (down, or ambiguous)."""
        from ldap3 import NO_ATTRIBUTES
        from ldap3.core.exceptions import LDAPException

        try:
            with self._service() as conn:
                entries = self._find(conn, email, [NO_ATTRIBUTES])
        except (LDAPException, OSError, _Down, _Stale):
            return None
        return None if entries is None else bool(entries)

    def _bind_as(self, dn: str, password: str) -> bool:
        """The typed password, on a fresh connection: the pool's belong to the service."""
        conn = self._connection(dn, password)
        try:
            with tracing.span("ldap bind", client=True, **{"gateway.provider": self.name}):
                bound = bool(conn.bind())
            if not bound and conn.result.get("result") not in (49, 50, 53):  # bad creds etc.
                raise _Down(str(conn.result.get("description", "bind_failed")))
            return bound
        finally:
            conn.unbind()

    def _groups(
        self, conn: Any, dn: str, attributes: dict[str, Any], username: str
    ) -> tuple[str, ...]:
        from ldap3 import SUBTREE
        from ldap3.utils.conv import escape_filter_chars

        if not self._settings.group_base_dn:
            names = [_rdn_value(group) for group in _values(attributes.get("memberOf"))]
            return tuple(n for n in names if n)[:MAX_GROUPS]
        group_filter = self._settings.group_filter.replace("{dn}", escape_filter_chars(dn))
        group_filter = group_filter.replace("{username}", escape_filter_chars(username))
        conn.search(
            self._settings.group_base_dn,
            group_filter,
            search_scope=SUBTREE,
            attributes=[self._settings.group_name_attribute],
            size_limit=MAX_GROUPS,
            time_limit=max(1, int(self._settings.timeout)),
        )
        names = [
            _first(e.get("attributes", {}).get(self._settings.group_name_attribute))
            for e in conn.response or []
            if e.get("type") == "searchResEntry"
        ]
        return tuple(n for n in names if n)


class _Down(Exception):
    """The directory did not do its part (not: the visitor typed something wrong)."""


class _Stale(Exception):
    """A pooled connection failed: the directory may have dropped it (a restart)."""


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return [str(v).strip() for v in items if str(v).strip()]


def _first(value: Any) -> str:
    found = _values(value)
    return found[0] if found else ""


def _rdn_value(dn: str) -> str:
    """``cn=Video,ou=groups,...`` -> ``Video`` (a malformed DN names no group)."""
    from ldap3.core.exceptions import LDAPInvalidDnError
    from ldap3.utils.dn import parse_dn

    try:
        return str(parse_dn(dn)[0][1])
    except (LDAPInvalidDnError, IndexError):
        return ""


def _disabled(value: Any) -> bool:
    try:
        return bool(int(_first(value) or 0) & ACCOUNT_DISABLED)
    except ValueError:
        return True  # an account-control value we cannot read: do not let it in
