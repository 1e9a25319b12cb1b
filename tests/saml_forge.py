"""An IdP of the tests' own: its key, its metadata and the SAML Responses it signs, built with
lxml and signxml (not the SP's pysaml2/xmlsec1), plus the mutations attackers use."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import zlib
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    XMLSigner,
)

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NS = {"samlp": SAMLP, "saml": SAML, "ds": DS}
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"


@dataclass
class KeyPair:
    key_pem: bytes
    cert_pem: bytes

    @property
    def cert_b64(self) -> str:
        return "".join(self.cert_pem.decode().splitlines()[1:-1])

    @classmethod
    def generate(cls, name: str = "test-idp") -> KeyPair:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return cls(key_pem, cert.public_bytes(serialization.Encoding.PEM))


def stamp(seconds: float = 0) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def request_id_of(location: str) -> str:
    """The ID of the AuthnRequest in a Redirect-binding URL (what the SP sent)."""
    raw = parse_qs(urlsplit(location).query)["SAMLRequest"][0]
    xml = zlib.decompress(base64.b64decode(raw), -15)
    return str(etree.fromstring(xml).get("ID"))


ALICE_GROUPS = {"groups": ["staff", "video"]}


def _audience_restriction(audience: str) -> str:
    return (
        f"<saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience>"
        "</saml:AudienceRestriction>"
    )


def _attribute_statement(attributes: dict[str, list[str]]) -> str:
    """An AttributeStatement with these values, or nothing for none."""
    values = "".join(
        f'<saml:Attribute Name="{name}">'
        + "".join(f"<saml:AttributeValue>{v}</saml:AttributeValue>" for v in vals)
        + "</saml:Attribute>"
        for name, vals in attributes.items()
    )
    return f"<saml:AttributeStatement>{values}</saml:AttributeStatement>" if values else ""


@dataclass
class ForgedIdp:
    """Signs responses as ``entity_id`` with ``keys`` (what its metadata publishes)."""

    entity_id: str
    sso_url: str
    keys: KeyPair = field(default_factory=KeyPair.generate)

    def metadata(self, slo_url: str = "") -> str:
        slo = (
            f'<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"'
            f' Location="{slo_url}"/>'
            if slo_url
            else ""
        )
        return (
            f'<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}" entityID="{self.entity_id}">'
            f'<md:IDPSSODescriptor protocolSupportEnumeration="{SAMLP}">'
            f'<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
            f"{self.keys.cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
            f"</md:KeyDescriptor>{slo}"
            f"<md:NameIDFormat>{EMAIL_FORMAT}</md:NameIDFormat>"
            f'<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"'
            f' Location="{self.sso_url}"/></md:IDPSSODescriptor></md:EntityDescriptor>'
        )

    def response(
        self,
        *,
        acs: str,
        audience: str,
        in_response_to: str | None,
        email: str = "alice@example.com",
        name_id: str | None = None,
        attributes: dict[str, list[str]] | None = None,
        not_before: float = -30,
        not_on_or_after: float = 300,
        confirmation_until: float = 300,
        recipient: str | None = None,
        destination: str | None = "",
        issuer: str | None = None,
        status: str = "urn:oasis:names:tc:SAML:2.0:status:Success",
        with_audience: bool = True,
        assertion_id: str | None = None,
    ) -> etree._Element:
        """An unsigned, well-formed Response with one assertion (sign it with ``sign``)."""
        if attributes is None:
            attributes = {"email": [email], "displayName": ["Alice Example"]} | ALICE_GROUPS
        irt = f' InResponseTo="{in_response_to}"' if in_response_to else ""
        dest = (
            f' Destination="{acs if destination == "" else destination}"'
            if destination is not None
            else ""
        )
        who = issuer or self.entity_id
        audience_xml = _audience_restriction(audience) if with_audience else ""
        xml = (
            f'<samlp:Response xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}"'
            f' ID="_r{secrets.token_hex(16)}" Version="2.0" IssueInstant="{stamp()}"{dest}{irt}>'
            f"<saml:Issuer>{who}</saml:Issuer>"
            f'<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status>'
            f'<saml:Assertion ID="{assertion_id or "_a" + secrets.token_hex(16)}" Version="2.0"'
            f' IssueInstant="{stamp()}"><saml:Issuer>{who}</saml:Issuer>'
            f'<ds:Signature xmlns:ds="{DS}" Id="placeholder"/>'
            f'<saml:Subject><saml:NameID Format="{EMAIL_FORMAT}">{name_id or email}</saml:NameID>'
            f'<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
            f'<saml:SubjectConfirmationData NotOnOrAfter="{stamp(confirmation_until)}"'
            f' Recipient="{recipient or acs}"{irt}/></saml:SubjectConfirmation></saml:Subject>'
            f'<saml:Conditions NotBefore="{stamp(not_before)}"'
            f' NotOnOrAfter="{stamp(not_on_or_after)}">'
            f"{audience_xml}</saml:Conditions>"
            f'<saml:AuthnStatement AuthnInstant="{stamp()}"'
            f' SessionIndex="_s{secrets.token_hex(8)}">'
            "<saml:AuthnContext><saml:AuthnContextClassRef>"
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
            "</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"
            + _attribute_statement(attributes)
            + "</saml:Assertion></samlp:Response>"
        )
        return etree.fromstring(xml)

    def logout_request(
        self,
        *,
        destination: str,
        name_id: str = "alice@corp.example",
        session_index: str | None = None,
        issued: float = 0,
        not_on_or_after: float | None = None,
        issuer: str | None = "",
        request_id: str | None = None,
    ) -> etree._Element:
        """An unsigned LogoutRequest (``issued`` seconds from now; ``issuer=None``: none)."""
        who = "" if issuer is None else f"<saml:Issuer>{issuer or self.entity_id}</saml:Issuer>"
        noa = f' NotOnOrAfter="{stamp(not_on_or_after)}"' if not_on_or_after is not None else ""
        index = f"<samlp:SessionIndex>{session_index}</samlp:SessionIndex>" if session_index else ""
        xml = (
            f'<samlp:LogoutRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}"'
            f' ID="{request_id or "_l" + secrets.token_hex(16)}" Version="2.0"'
            f' IssueInstant="{stamp(issued)}" Destination="{destination}"{noa}>'
            f'{who}<ds:Signature xmlns:ds="{DS}" Id="placeholder"/>'
            f'<saml:NameID Format="{EMAIL_FORMAT}">{name_id}</saml:NameID>{index}'
            "</samlp:LogoutRequest>"
        )
        return etree.fromstring(xml)

    def sign(self, element: etree._Element, keys: KeyPair | None = None) -> etree._Element:
        """Sign ``element`` in place (enveloped, RSA-SHA256, exclusive c14n) at its
        placeholder, and return the document's root."""
        keys = keys or self.keys
        signer = XMLSigner(
            signature_algorithm=SignatureMethod.RSA_SHA256,
            digest_algorithm=DigestAlgorithm.SHA256,
            c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        )
        signer.namespaces = {"ds": DS}
        parent = element.getparent()
        index = parent.index(element) if parent is not None else 0
        signed = signer.sign(
            element, key=keys.key_pem, cert=keys.cert_pem.decode(), reference_uri=element.get("ID")
        )
        if parent is None:
            return signed
        parent.remove(element)
        parent.insert(index, signed)
        return parent.getroottree().getroot()

    def signed_response(self, keys: KeyPair | None = None, **kw: Any) -> etree._Element:
        """A Response whose assertion is signed (what most IdPs send)."""
        response = self.response(**kw)
        return self.sign(assertion_of(response), keys)


def assertion_of(response: etree._Element) -> etree._Element:
    found = response.find("saml:Assertion", NS)
    assert found is not None
    return found


def drop_placeholders(response: etree._Element) -> etree._Element:
    for node in response.iter(f"{{{DS}}}Signature"):
        if node.get("Id") == "placeholder":
            node.getparent().remove(node)
    return response


def encode(response: etree._Element | str | bytes) -> str:
    if isinstance(response, etree._Element):
        response = etree.tostring(response)
    if isinstance(response, str):
        response = response.encode()
    return base64.b64encode(response).decode()


def clone(element: etree._Element) -> etree._Element:
    return deepcopy(element)
