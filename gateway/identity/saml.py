"""SAML 2.0 service provider (ADFS, Entra ID, Okta, Shibboleth, SimpleSAMLphp) through
pysaml2, whose signature and decryption checks run in Debian's ``xmlsec1``.

The visitor leaves with an AuthnRequest over the HTTP-Redirect binding; its id and a random
``RelayState`` are bound to the browser by a signed, short-lived cookie. The response comes
back to ``POST /sso/saml/<identity>/acs`` and is refused unless, on top of pysaml2's checks
(signature by a key of the IdP metadata over the element used, validity window with
``clock_skew``, recipient, ``InResponseTo`` = a request of this browser):

* the XML has no DTD or entity (checked before anything parses it for real);
* it holds exactly one assertion, whose audience is our entity id and whose issuer is the IdP;
* the Destination, and every bearer confirmation's Recipient, is our ACS URL (pysaml2 leaves
  the Recipient unchecked unless told more);
* the request id and the assertion id are used for the first time (marked in the shared
  store, so no instance accepts them again).

Attributes are read by name or OID (``email_attribute``...), the NameID serving as the
e-mail when it is one. Single logout works both ways at ``/sso/saml/<identity>/slo``: a
signed LogoutRequest from the IdP revokes the gateway sessions of that SessionIndex (or
NameID); the gateway's own logout sends one to the IdP. IdP metadata from a URL is cached
for ``METADATA_MAX_AGE`` and fetched again early when a signature fails (key rollover), the
last good copy kept when a fetch fails.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import json
import logging
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import requests
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from flask import Request, redirect
from pydantic import Field, model_validator
from werkzeug.wrappers import Response

from gateway import tracing
from gateway.cookies import SAML_STATE
from gateway.emails import email_domain
from gateway.errors import BadRequest, GatewayError
from gateway.identity.base import Completed, Identity, PendingLogin, Route, step_path
from gateway.identity.pending import STATE_MAX_AGE, PendingStates
from gateway.identity.provider_context import ProviderBase, ProviderContext
from gateway.logs import audit
from gateway.settings_fields import (
    Flag,
    IdentityModel,
    Integer,
    OptionalFetchUrl,
    ReadableFile,
    Text,
)

log = logging.getLogger("gateway.saml")
logging.getLogger("saml2").setLevel(logging.CRITICAL)  # it logs whole messages; we log reasons

METADATA_MAX_AGE = 3600
REFETCH_INTERVAL = 30.0  # at most this often on a failed signature (key rollover)
MAX_MESSAGE = 512 * 1024  # bytes of base64 in a SAMLResponse / SAMLRequest
SIG_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


class SamlSettings(IdentityModel):
    type: Literal["saml"]
    idp_metadata_url: OptionalFetchUrl = ""
    idp_metadata_file: ReadableFile = ""
    sp_entity_id: Text = ""  # default: <public_url>/sso/saml/<identity>/metadata
    sp_key_file: ReadableFile = ""  # PEM key + cert: signs AuthnRequests, decrypts assertions
    sp_cert_file: ReadableFile = ""
    email_attribute: Text = "email"  # attribute name or OID
    name_attribute: Text = "displayName"
    groups_attribute: Text = "groups"
    allow_idp_initiated: Flag = False  # unsolicited responses refused unless true
    clock_skew: Integer = Field(60, ge=0, le=600)  # seconds for NotBefore / NotOnOrAfter

    @model_validator(mode="after")
    def _consistent(self) -> SamlSettings:
        if bool(self.idp_metadata_url) == bool(self.idp_metadata_file):
            raise ValueError("set exactly one of idp_metadata_url or idp_metadata_file")
        if bool(self.sp_key_file) != bool(self.sp_cert_file):
            raise ValueError("set both sp_key_file and sp_cert_file, or neither")
        if shutil.which("xmlsec1") is None:
            raise ValueError("SAML needs the xmlsec1 program (Debian: apt-get install xmlsec1)")
        return self


LOGOUT_MAX_AGE = 300  # seconds a LogoutRequest is accepted after its IssueInstant


class SamlRefused(BadRequest):
    """A SAML message failed a check; ``reason`` (for the audit) says which."""

    code = "saml_refused"
    default_message = "The sign-in service's answer could not be accepted. Please start again."

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class SamlUnavailable(GatewayError, status=502, code="identity_provider_unavailable"):
    """The sign-in service is unavailable. Please try again shortly."""


def check_xml(xml: bytes | str) -> None:
    """Refuse a DTD, entities or external references before any real parser sees it."""
    try:
        safe_fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise SamlRefused("dtd_or_entities") from None
    except Exception:
        raise SamlRefused("not_xml") from None


class IdpMetadata:
    """The IdP's metadata document: a file, or a URL cached ``METADATA_MAX_AGE`` seconds whose
    last good copy is kept when a fetch fails."""

    def __init__(self, settings: SamlSettings, timeout: tuple[float, float]) -> None:
        self._url = settings.idp_metadata_url
        self._file = settings.idp_metadata_file
        self._timeout = timeout
        self._lock = threading.Lock()
        self._xml: str | None = None
        self._fetched_at = 0.0
        self._tried_at = 0.0

    def xml(self, *, refresh: bool = False) -> str:
        with self._lock:
            now = time.monotonic()
            if self._file:
                if self._xml is None or refresh:
                    self._xml = self._checked(Path(self._file).read_text())
                return self._xml
            due = self._xml is None or now - self._fetched_at > METADATA_MAX_AGE
            early = refresh and now - self._tried_at > REFETCH_INTERVAL
            if due or early:
                self._tried_at = now
                try:
                    self._xml = self._fetch()
                    self._fetched_at = now
                except SamlUnavailable:
                    if self._xml is None:
                        raise
                    log.warning("IdP metadata refresh failed; keeping the last good copy")
            assert self._xml is not None
            return self._xml

    def _fetch(self) -> str:
        try:
            with tracing.span("saml metadata", client=True):
                response = requests.get(self._url, timeout=self._timeout, allow_redirects=False)
            response.raise_for_status()
            if len(response.content) > 4 * 1024 * 1024:
                raise SamlUnavailable()
            return self._checked(response.text)
        except (requests.RequestException, SamlRefused) as exc:
            log.warning("IdP metadata unavailable", extra={"reason": type(exc).__name__})
            raise SamlUnavailable() from None

    @staticmethod
    def _checked(xml: str) -> str:
        check_xml(xml.encode())
        return xml


def _subject_key(name_id: Any) -> str:
    """A NameID as one string: what sessions remember and logout matches."""
    fields = [name_id.text or "", name_id.format or "", name_id.name_qualifier or ""]
    return "saml:" + json.dumps([*fields, name_id.sp_name_qualifier or ""], separators=(",", ":"))


class SamlProvider(ProviderBase[SamlSettings]):
    label = "Sign in with your organisation"
    kind = "saml"

    def __init__(self, settings: SamlSettings, ctx: ProviderContext) -> None:
        super().__init__(settings, ctx)
        base = ctx.gateway.public_url
        self.entity_id = settings.sp_entity_id or base + step_path(self.kind, self.name, "metadata")
        self.acs_url = base + step_path(self.kind, self.name, "acs")
        self.slo_url = base + step_path(self.kind, self.name, "slo")
        self._xmlsec = shutil.which("xmlsec1") or "xmlsec1"
        timeout = (ctx.gateway.upstream_connect_timeout, ctx.gateway.upstream_read_timeout)
        self._metadata = IdpMetadata(settings, timeout)
        self._in_flight = PendingStates(
            ctx.cookies, SAML_STATE, ctx.gateway.secret_keys, f"saml-state:{self.name}"
        )
        self._clients = threading.local()  # pysaml2's client keeps state: one per thread
        self._sp_metadata = self._describe()

    def routes(self) -> dict[str, Route]:
        return {
            "metadata": Route(("GET",), self.metadata),
            "acs": Route(("POST",), self.acs),
            "slo": Route(("GET", "POST"), self.slo),
        }

    # ------------------------------------------------------------------ pysaml2

    def _config(self, idp_xml: str) -> Any:
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
        from saml2.config import SPConfig

        signing = bool(self._settings.sp_key_file)
        conf: dict[str, Any] = {
            "entityid": self.entity_id,
            "service": {
                "sp": {
                    "endpoints": {
                        "assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)],
                        "single_logout_service": [
                            (self.slo_url, BINDING_HTTP_REDIRECT),
                            (self.slo_url, BINDING_HTTP_POST),
                        ],
                    },
                    "allow_unsolicited": self._settings.allow_idp_initiated,
                    "want_response_signed": False,
                    "want_assertions_signed": False,
                    "want_assertions_or_response_signed": True,
                    "authn_requests_signed": signing,
                    "logout_requests_signed": signing,
                    "allow_unknown_attributes": True,
                }
            },
            "metadata": {"inline": [idp_xml]} if idp_xml else {},
            "xmlsec_binary": self._xmlsec,
            "accepted_time_diff": self._settings.clock_skew,
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "delete_tmpfiles": True,
        }
        if signing:
            conf.update(key_file=self._settings.sp_key_file, cert_file=self._settings.sp_cert_file)
            pair = {
                "key_file": self._settings.sp_key_file,
                "cert_file": self._settings.sp_cert_file,
            }
            conf["encryption_keypairs"] = [pair]
        config = SPConfig()
        config.load(conf)
        return config

    def _client(self, refresh: bool = False) -> Any:
        """This thread's pysaml2 client for the current IdP metadata."""
        from saml2.client import Saml2Client

        xml = self._metadata.xml(refresh=refresh)
        digest = hashlib.sha256(xml.encode()).hexdigest()
        cached = getattr(self._clients, "client", None)
        if cached is None or self._clients.digest != digest:
            client = Saml2Client(self._config(xml))
            idps = list(client.metadata.identity_providers())
            if len(idps) != 1:
                log.error("IdP metadata must describe exactly one IdP", extra={"found": len(idps)})
                raise SamlUnavailable()
            self._clients.client, self._clients.digest, self._clients.idp = client, digest, idps[0]
            cached = client
        return cached

    def _idp(self) -> str:
        self._client()
        return str(self._clients.idp)

    def _describe(self) -> str:
        """Our SP metadata (entity id, ACS, SLO, the certificate when configured)."""
        from saml2.metadata import entity_descriptor

        descriptor = entity_descriptor(self._config(""))
        if descriptor.extensions is not None:
            descriptor.extensions = None  # pysaml2 lists every xmlsec1 algorithm, md5 included
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + str(descriptor)

    # ------------------------------------------------------------------ sign-in

    def metadata(self, request: Request) -> Response:
        return Response(self._sp_metadata, mimetype="application/samlmetadata+xml")

    def begin(self, request: Request, pending: PendingLogin) -> Response | Identity:
        from saml2 import BINDING_HTTP_REDIRECT

        relay = secrets.token_urlsafe(24)
        client = self._client()
        signed = bool(self._settings.sp_key_file)
        request_id, info = client.prepare_for_authenticate(
            entityid=self._idp(),
            relay_state=relay,
            binding=BINDING_HTTP_REDIRECT,
            sign=signed,
            sigalg=SIG_RSA_SHA256 if signed else None,
        )
        location = dict(info["headers"])["Location"]
        response = redirect(location)
        self._in_flight.add(request, response, request_id, {"p": pending.to_json(), "r": relay})
        return response

    def acs(self, request: Request) -> Completed:
        """The IdP's response (HTTP-POST binding). Refusals are audited with their reason."""
        try:
            return self._accept(request)
        except SamlRefused as exc:
            audit("saml_refused", provider=self.name, reason=exc.reason)
            raise

    def _accept(self, request: Request) -> Completed:
        from saml2 import BINDING_HTTP_POST

        raw = request.form.get("SAMLResponse", "")
        if not raw or len(raw) > MAX_MESSAGE:
            raise SamlRefused("no_response")
        try:
            check_xml(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError):
            raise SamlRefused("not_base64") from None
        relay = request.form.get("RelayState", "")
        in_flight = self._in_flight.read(request)
        expected = next((rid for rid, e in in_flight.items() if e.get("r") == relay), None)
        if expected is None and not self._settings.allow_idp_initiated:
            raise SamlRefused("unsolicited")
        entry = in_flight.get(expected or "")
        outstanding = {expected: "/"} if expected else {}
        response = self._parse(raw, BINDING_HTTP_POST, outstanding)
        assertion = self._checked(response, expected)
        self._use_once(expected, assertion)
        pending = PendingLogin.from_json(entry.get("p")) if entry else self._unsolicited(relay)
        if pending is None:
            raise SamlRefused("no_site")
        return Completed(self._identity(response, assertion), pending)

    def _parse(self, raw: str, binding: str, outstanding: dict[str, str]) -> Any:
        """pysaml2's parse and checks; on a signature failure, once more with fresh metadata
        (the IdP may have rolled its key over)."""
        for attempt in (1, 2):
            client = self._client(refresh=attempt == 2)
            try:
                response = client.parse_authn_request_response(raw, binding, outstanding)
            except Exception as exc:
                reason = type(exc).__name__
                if attempt == 1 and ("Signature" in reason or "Key" in reason):
                    continue
                raise SamlRefused(reason) from None
            if response is None:
                raise SamlRefused("unparsable")
            return response
        raise SamlRefused("signature")

    def _checked(self, response: Any, expected: str | None) -> Any:
        """What pysaml2 leaves to the SP: one assertion, for us, from the IdP, to our ACS."""
        idp = self._idp()
        self._check_envelope(response.response, expected, idp)
        if len(response.assertions) != 1:
            raise SamlRefused("not_one_assertion")
        assertion = response.assertions[0]
        if assertion.issuer is None or (assertion.issuer.text or "").strip() != idp:
            raise SamlRefused("wrong_issuer")
        self._check_audience(assertion)
        self._check_bearers(assertion, expected)
        return assertion

    def _check_envelope(self, message: Any, expected: str | None, idp: str) -> None:
        if message.destination != self.acs_url:
            raise SamlRefused("wrong_destination")
        if (message.in_response_to or None) != expected:
            raise SamlRefused("wrong_in_response_to")
        if message.issuer is not None and (message.issuer.text or "").strip() != idp:
            raise SamlRefused("wrong_issuer")

    def _check_audience(self, assertion: Any) -> None:
        conditions = assertion.conditions
        audiences = [
            (audience.text or "").strip()
            for restriction in (conditions.audience_restriction if conditions else [])
            for audience in restriction.audience
        ]
        if self.entity_id not in audiences:
            raise SamlRefused("wrong_audience")

    def _check_bearers(self, assertion: Any, expected: str | None) -> None:
        """pysaml2 checks the Recipient only when told a "conversation"; every bearer
        confirmation must be for our ACS, and for the request this browser made."""
        from saml2.saml import SCM_BEARER

        confirmations = assertion.subject.subject_confirmation if assertion.subject else []
        bearers = [c for c in confirmations if c.method == SCM_BEARER]
        if not bearers:
            raise SamlRefused("no_bearer_confirmation")
        for bearer in bearers:
            data = bearer.subject_confirmation_data
            if data is None or data.recipient != self.acs_url:
                raise SamlRefused("wrong_recipient")
            if (data.in_response_to or None) != expected:
                raise SamlRefused("wrong_in_response_to")

    def _use_once(self, request_id: str | None, assertion: Any) -> None:
        from saml2.time_util import str_to_time

        ends = assertion.conditions.not_on_or_after if assertion.conditions else None
        expires = calendar.timegm(str_to_time(ends)) if ends else time.time() + 300
        ttl = max(expires - time.time(), 0) + self._settings.clock_skew + 60
        store = self._ctx.store
        if request_id is not None:
            key = f"saml-request:{self.name}:" + hashlib.sha256(request_id.encode()).hexdigest()
            if not store.add(key, 1, ttl=STATE_MAX_AGE + self._settings.clock_skew):
                raise SamlRefused("request_replayed")
        key = (
            f"saml-assertion:{self.name}:" + hashlib.sha256(str(assertion.id).encode()).hexdigest()
        )
        if not store.add(key, 1, ttl=ttl):
            raise SamlRefused("assertion_replayed")

    def _unsolicited(self, relay: str) -> PendingLogin | None:
        """An IdP-initiated sign-in: RelayState may name the site; else this identity's only
        site."""
        sites = self._ctx.identity_sites.get(self.name, ())
        if relay in sites:
            return PendingLogin(relay, "/")
        return PendingLogin(sites[0], "/") if len(sites) == 1 else None

    def _identity(self, response: Any, assertion: Any) -> Identity:
        def values(wanted: str) -> list[str]:
            found: list[str] = []
            for statement in assertion.attribute_statement:
                for attribute in statement.attribute:
                    if wanted and wanted in (attribute.name, attribute.friendly_name):
                        found += [(v.text or "").strip() for v in attribute.attribute_value]
            return [v for v in found if v]

        name_id = response.name_id
        emails = values(self._settings.email_attribute)
        email = emails[0] if emails else ""
        if not email and name_id is not None and email_domain((name_id.text or "").strip()):
            email = (name_id.text or "").strip()
        if not email:
            raise SamlRefused("no_email")
        names = values(self._settings.name_attribute)
        statements = assertion.authn_statement
        session_index = statements[0].session_index if statements else ""
        return Identity(
            email=email,
            name=names[0][:200] if names else "",
            groups=tuple(values(self._settings.groups_attribute))[:100],
            provider=self.name,
            subject=_subject_key(name_id) if name_id is not None else "",
            idp_session=session_index or "",
        )

    # ------------------------------------------------------------------ single logout

    def end_session_url(
        self, identity: Identity, post_logout_redirect_uri: str, state: str
    ) -> str | None:
        """A LogoutRequest for this visitor's NameID and SessionIndex, to the IdP's SLO."""
        from saml2 import BINDING_HTTP_REDIRECT
        from saml2.saml import NameID

        if not identity.subject.startswith("saml:"):
            return None
        try:
            client = self._client()
            idp = self._idp()
            services = client.metadata.single_logout_service(idp, BINDING_HTTP_REDIRECT, "idpsso")
        except SamlUnavailable:
            return None
        if not services:
            return None
        destination = services[0]["location"]
        text, fmt, qualifier, sp_qualifier = json.loads(identity.subject[len("saml:") :])
        name_id = NameID(
            text=text,
            format=fmt or None,
            name_qualifier=qualifier or None,
            sp_name_qualifier=sp_qualifier or None,
        )
        sessions = [identity.idp_session] if identity.idp_session else None
        _, message = client.create_logout_request(
            destination, idp, name_id=name_id, session_indexes=sessions, sign=False
        )
        signed = bool(self._settings.sp_key_file)
        info = client.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(message),
            destination,
            relay_state=state,
            sign=signed,
            sigalg=SIG_RSA_SHA256 if signed else None,
        )
        return str(dict(info["headers"])["Location"])

    def slo(self, request: Request) -> Response:
        """Single logout, both directions: the IdP's LogoutRequest, or its LogoutResponse to
        ours (which ends at the signed-out page with the state we sent)."""
        if request.values.get("SAMLRequest"):
            try:
                return self._logout_requested(request)
            except SamlRefused as exc:
                audit("saml_logout_refused", provider=self.name, reason=exc.reason)
                raise
        if request.values.get("SAMLResponse"):
            state = request.values.get("RelayState", "")[:2048]
            query = urlencode({"state": state})
            return redirect(f"{self._ctx.gateway.public_url}/sso/signed-out?{query}", 303)
        raise BadRequest("Neither SAMLRequest nor SAMLResponse.", code="saml_refused")

    def _logout_requested(self, request: Request) -> Response:
        from saml2 import BINDING_HTTP_REDIRECT

        client = self._client()
        message = self._logout_request(request, client)
        self._check_logout_signature(request, client, message)
        self._check_logout_fresh_and_once(message)
        sessions = [s.text for s in message.session_index if s.text]
        for session_index in sessions:
            self._ctx.sessions.revoke_at_idp(self.name, idp_session=session_index)
        if not sessions and message.name_id is not None:
            self._ctx.sessions.revoke_at_idp(self.name, subject=_subject_key(message.name_id))
        audit("saml_logout", provider=self.name, by="session_index" if sessions else "name_id")
        answer = client.create_logout_response(message, [BINDING_HTTP_REDIRECT], sign=False)
        signed_answer = bool(self._settings.sp_key_file)
        info = client.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(answer),
            answer.destination,
            relay_state=request.values.get("RelayState", ""),
            response=True,
            sign=signed_answer,
            sigalg=SIG_RSA_SHA256 if signed_answer else None,
        )
        return redirect(dict(info["headers"])["Location"])

    def _logout_request(self, request: Request, client: Any) -> Any:
        """The LogoutRequest, parsed and from our IdP (its signature is checked next)."""
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

        binding = BINDING_HTTP_REDIRECT if request.method == "GET" else BINDING_HTTP_POST
        raw = request.values.get("SAMLRequest", "")
        if len(raw) > MAX_MESSAGE:
            raise SamlRefused("too_large")
        try:
            check_xml(client.unravel(raw, binding, "SAMLRequest"))
            parsed = client.parse_logout_request(
                raw,
                binding,
                relay_state=request.values.get("RelayState"),
                sigalg=request.values.get("SigAlg"),
                signature=request.values.get("Signature"),
            )
        except SamlRefused:
            raise
        except Exception as exc:
            raise SamlRefused(type(exc).__name__) from None
        message = parsed.message
        if message is None or message.issuer is None:
            raise SamlRefused("no_issuer")
        if (message.issuer.text or "").strip() != self._idp():
            raise SamlRefused("wrong_issuer")
        return message

    def _check_logout_signature(self, request: Request, client: Any, message: Any) -> None:
        from saml2.sigver import RSACrypto, verify_redirect_signature

        if request.method != "GET":  # HTTP-POST: the signature is inside the message
            if message.signature is None:
                raise SamlRefused("unsigned_logout_request")
            return
        names = ("SAMLRequest", "RelayState", "SigAlg", "Signature")
        signed = {k: request.args[k] for k in names if k in request.args}
        if "Signature" not in signed or "SigAlg" not in signed:
            raise SamlRefused("unsigned_logout_request")
        certs = client.metadata.certs(self._idp(), "any", "signing")
        try:
            # The IdP's key comes from its certificate; RSACrypto only names the algorithm.
            valid = any(verify_redirect_signature(signed, RSACrypto(None), c) for _, c in certs)
        except Exception:  # a malformed signature or algorithm is a refusal, never a 500
            valid = False
        if not valid:
            raise SamlRefused("unsigned_logout_request")

    def _check_logout_fresh_and_once(self, message: Any) -> None:
        """Issued within the last LOGOUT_MAX_AGE seconds (clock_skew either way), not past
        its NotOnOrAfter, and never seen before by any worker or instance."""
        from saml2.time_util import str_to_time

        now, skew = time.time(), self._settings.clock_skew
        try:
            issued = calendar.timegm(str_to_time(message.issue_instant))
            ends = message.not_on_or_after
            until = calendar.timegm(str_to_time(ends)) if ends else issued + LOGOUT_MAX_AGE
        except Exception:  # whatever pysaml2's parser raises for a malformed instant
            raise SamlRefused("bad_issue_instant") from None
        if not now - LOGOUT_MAX_AGE - skew <= issued <= now + skew:
            raise SamlRefused("stale_logout_request")
        if now >= until + skew:
            raise SamlRefused("expired_logout_request")
        key = f"saml-logout:{self.name}:" + hashlib.sha256(str(message.id).encode()).hexdigest()
        if not self._ctx.store.add(key, 1, ttl=LOGOUT_MAX_AGE + 2 * skew + 60):
            raise SamlRefused("replayed_logout_request")
