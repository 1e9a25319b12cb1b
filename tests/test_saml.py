"""SAML 2.0 sign-in over real HTTP: against SimpleSAMLphp (a real, independent IdP) for the
whole loop and single logout, and against the tests' own forging IdP (lxml + signxml) for
the hostile-response corpus, each refused with no call to 23."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from lxml import etree

from gateway.sessions import COOKIE
from tests.formclient import FormClient, forms
from tests.helpers import LiveServer, make_settings, site_table
from tests.saml_forge import (
    DS,
    NS,
    SAML,
    ForgedIdp,
    KeyPair,
    assertion_of,
    clone,
    drop_placeholders,
    encode,
    request_id_of,
)
from tests.saml_world import SamlWorld


@pytest.fixture(autouse=True)
def _reset(saml: SamlWorld) -> None:
    saml.reset()


# ---------------------------------------------------------------- SimpleSAMLphp, end to end


def idp_login(browser: FormClient, page: requests.Response, login: str) -> requests.Response:
    """SimpleSAMLphp's login form, then its auto-posting form back to our ACS."""
    password = {"alice": "alice-pass", "bob": "bob-pass"}[login]
    assert "loginuserpass" in page.url, page.url
    posted = browser.submit(page, username=login, password=password)
    assert "SAMLResponse" in posted.text, posted.text[:500]
    return browser.submit(posted, follow=False)


def test_metadata_for_the_idp(saml: SamlWorld) -> None:
    sp = saml.sp("corp")
    response = requests.get(sp["entity_id"], timeout=15)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/samlmetadata+xml")
    root = etree.fromstring(response.content)
    assert root.get("entityID") == sp["entity_id"]
    md = "urn:oasis:names:tc:SAML:2.0:metadata"
    acs = root.find(f".//{{{md}}}AssertionConsumerService")
    assert acs is not None and acs.get("Location") == sp["acs"]
    assert acs.get("Binding") == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    slo = {e.get("Binding").rsplit(":", 1)[1] for e in root.iter(f"{{{md}}}SingleLogoutService")}
    assert slo == {"HTTP-Redirect", "HTTP-POST"}
    assert b"md5" not in response.content.lower()  # no algorithm list advertising MD5


def test_the_whole_loop_with_simplesamlphp(
    saml: SamlWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.audit")
    browser = FormClient()
    page = browser.get(
        saml.devsite.url + "/video/1001", timeout=15
    )  # closed site -> gateway -> IdP
    back = idp_login(browser, page, "alice")
    assert back.status_code == 302 and "redeem-token" in back.headers["Location"], back.text[:300]
    landed = browser.get(back.headers["Location"], timeout=15)
    assert landed.url == saml.devsite.url + "/video/1001"
    assert "Welcome, Alice Example" in browser.get(saml.devsite.url + "/", timeout=15).text
    (call,) = saml.calls("session/get-token")
    assert call["params"]["email"] == "alice@example.com"
    assert call["params"]["full_name"] == "Alice Example"
    granted = [r for r in caplog.records if r.getMessage() == "sso_granted"]
    assert granted and granted[-1].__dict__["provider"] == "corp"


def test_signed_requests_and_encrypted_assertions(saml: SamlWorld) -> None:
    """An SP with a key: SimpleSAMLphp checks the AuthnRequest's signature and encrypts the
    assertion to our certificate; the gateway decrypts it."""
    browser = FormClient()
    page = browser.get(f"{saml.gateway}/sso/enc/login?return_url=/", timeout=15)
    assert "loginuserpass" in page.url, page.text[:300]  # the IdP accepted the signed request
    password_page = browser.submit(page, username="alice", password="alice-pass")
    posted = forms(password_page.text)[0]["fields"]["SAMLResponse"]
    assert b"EncryptedAssertion" in base64.b64decode(posted)
    back = browser.submit(password_page, follow=False)
    assert back.status_code == 302 and "redeem-token" in back.headers["Location"], back.text[:300]
    (call,) = saml.calls("session/get-token")
    assert call["params"]["email"] == "alice@example.com"


def test_the_domain_policy_applies_to_saml(saml: SamlWorld) -> None:
    browser = FormClient()
    page = browser.get(f"{saml.gateway}/sso/corp/login?return_url=/", timeout=15)
    back = idp_login(browser, page, "bob")  # bob@other.org
    assert back.status_code == 403
    assert saml.calls("session/get-token") == []


def signed_in_with_simplesamlphp(saml: SamlWorld) -> FormClient:
    browser = FormClient()
    page = browser.get(f"{saml.gateway}/sso/corp/login?return_url=/", timeout=15)
    assert idp_login(browser, page, "alice").status_code == 302
    return browser


def test_logout_at_the_gateway_ends_the_idp_session_too(saml: SamlWorld) -> None:
    """Sign-out on the video site: our session dies, the IdP gets a LogoutRequest, its
    LogoutResponse lands on our SLO and the visitor on the signed-out page."""
    browser = signed_in_with_simplesamlphp(saml)
    copied = browser.cookies.get(COOKIE)
    page = browser.get(f"{saml.gateway}/sso/corp/logout", timeout=15)
    out = browser.submit(page, follow=False)
    assert out.status_code == 303 and out.headers["Location"].startswith(saml.idp.url), out.text[
        :300
    ]
    assert "SAMLRequest=" in out.headers["Location"]
    done = browser.get(out.headers["Location"], timeout=15)  # IdP -> our /slo -> signed out
    assert done.status_code == 200 and "You are signed out" in done.text, done.url
    again = browser.get(
        f"{saml.gateway}/sso/corp/login?return_url=/", allow_redirects=False, timeout=15
    )
    assert again.headers["Location"].startswith(saml.idp.url)  # the IdP session is gone as well
    relogin = browser.get(again.headers["Location"], timeout=15)
    assert "loginuserpass" in relogin.url
    thief = requests.Session()
    thief.cookies.set(COOKIE, copied or "")
    stolen = thief.get(
        f"{saml.gateway}/sso/corp/login?return_url=/", allow_redirects=False, timeout=15
    )
    assert stolen.headers["Location"].startswith(saml.idp.url)


def test_logout_started_at_the_idp_revokes_the_gateway_session(saml: SamlWorld) -> None:
    """The IdP's signed LogoutRequest (front channel, HTTP-Redirect) ends our session."""
    browser = signed_in_with_simplesamlphp(saml)
    copied = browser.cookies.get(COOKIE)
    done = browser.get(
        f"{saml.idp.url}/saml2/idp/initSLO.php",
        params={"RelayState": f"{saml.gateway}/sso/signed-out"},
        timeout=15,
    )
    assert done.status_code == 200 and "You are signed out" in done.text, done.url
    assert any("/sso/saml/corp/slo" in r.url for r in done.history)  # our SLO was asked
    thief = requests.Session()
    thief.cookies.set(COOKIE, copied or "")
    stolen = thief.get(
        f"{saml.gateway}/sso/corp/login?return_url=/", allow_redirects=False, timeout=15
    )
    assert stolen.headers["Location"].startswith(saml.idp.url)


# ---------------------------------------------------------------- the forging IdP


def start(
    saml: SamlWorld, site: str = "forged", browser: FormClient | None = None
) -> tuple[FormClient, str, str]:
    """A browser that has just been sent to the IdP: (browser, request id, RelayState)."""
    browser = browser or FormClient()
    to_idp = browser.get(
        f"{saml.gateway}/sso/{site}/login?return_url=/", allow_redirects=False, timeout=15
    )
    location = to_idp.headers["Location"]
    assert location.startswith(saml.forged.sso_url), location
    relay = parse_qs(urlsplit(location).query)["RelayState"][0]
    return browser, request_id_of(location), relay


def post(
    saml: SamlWorld, browser: requests.Session, response: Any, relay: str, identity: str = "forge"
) -> requests.Response:
    return browser.post(
        saml.sp(identity)["acs"],
        data={
            "SAMLResponse": response if isinstance(response, str) else encode(response),
            "RelayState": relay,
        },
        headers={"Accept": "application/json"},
        allow_redirects=False,
        timeout=15,
    )


def valid(
    saml: SamlWorld, request_id: str | None, identity: str = "forge", **kw: Any
) -> etree._Element:
    """A correct, signed response for ``request_id`` (``kw`` changes one thing)."""
    sp = saml.sp(identity)
    kw.setdefault("audience", sp["entity_id"])
    return saml.forged.signed_response(acs=sp["acs"], in_response_to=request_id, **kw)


def test_a_valid_forged_idp_response_signs_in(saml: SamlWorld) -> None:
    browser, request_id, relay = start(saml)
    answer = post(saml, browser, valid(saml, request_id, email="ada@corp.example"), relay)
    assert answer.status_code == 302 and "redeem-token" in answer.headers["Location"], answer.text
    (call,) = saml.calls("session/get-token")
    assert call["params"]["email"] == "ada@corp.example"


def test_the_nameid_is_the_email_when_the_attribute_is_missing(saml: SamlWorld) -> None:
    browser, request_id, relay = start(saml)
    response = valid(saml, request_id, name_id="nameid@corp.example", attributes={})
    assert post(saml, browser, response, relay).status_code == 302
    assert saml.calls("session/get-token")[0]["params"]["email"] == "nameid@corp.example"


def test_a_signed_response_around_an_unsigned_assertion(saml: SamlWorld) -> None:
    """Some IdPs sign the Response, not the assertion: accepted."""
    browser, request_id, relay = start(saml)
    sp = saml.sp("forge")
    response = saml.forged.response(
        acs=sp["acs"], audience=sp["entity_id"], in_response_to=request_id, email="r@corp.example"
    )
    drop_placeholders(response)
    issuer = response.find("saml:Issuer", NS)
    assert issuer is not None
    issuer.addnext(etree.Element(f"{{{DS}}}Signature", Id="placeholder"))
    answer = post(saml, browser, saml.forged.sign(response), relay)
    assert answer.status_code == 302, answer.text
    assert saml.calls("session/get-token")[0]["params"]["email"] == "r@corp.example"


def test_attributes_by_oid(saml: SamlWorld) -> None:
    browser, request_id, relay = start(saml, "oid")
    attributes = {
        "urn:oid:0.9.2342.19200300.100.1.3": ["oid@corp.example"],
        "urn:oid:2.16.840.1.113730.3.1.241": ["By Oid"],
    }
    response = valid(saml, request_id, "forge_oid", name_id="x", attributes=attributes)
    assert post(saml, browser, response, relay, "forge_oid").status_code == 302
    (call,) = saml.calls("session/get-token")
    assert call["params"]["email"] == "oid@corp.example" and call["params"]["full_name"] == "By Oid"


def test_idp_initiated_only_where_allowed(saml: SamlWorld) -> None:
    response = valid(saml, None, "unsolicited", email="ada@corp.example")
    allowed = post(saml, requests.Session(), response, "portal", "unsolicited")
    assert allowed.status_code == 302 and "redeem-token" in allowed.headers["Location"]
    refused = post(saml, requests.Session(), valid(saml, None), "")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "saml_refused"


# ---------------------------------------------------------------- the hostile corpus

Mutation = Callable[[SamlWorld, str], Any]


def _signed_then(change: Callable[[etree._Element], None]) -> Mutation:
    def build(saml: SamlWorld, request_id: str) -> Any:
        response = valid(saml, request_id, email="ada@corp.example")
        change(response)
        return response

    return build


def _with(**kw: Any) -> Mutation:
    return lambda saml, request_id: valid(saml, request_id, **kw)


def _unsigned(saml: SamlWorld, request_id: str) -> Any:
    sp = saml.sp("forge")
    return drop_placeholders(
        saml.forged.response(acs=sp["acs"], audience=sp["entity_id"], in_response_to=request_id)
    )


def _other_key(saml: SamlWorld, request_id: str) -> Any:
    return valid(saml, request_id, keys=KeyPair.generate("impostor"))


def _set_email(response: etree._Element, email: str) -> None:
    for value in response.iter(f"{{{SAML}}}AttributeValue"):
        if "@" in (value.text or ""):
            value.text = email
    name_id = response.find(".//saml:NameID", NS)
    assert name_id is not None
    name_id.text = email


def _evil_twin(response: etree._Element) -> etree._Element:
    """A copy of the signed assertion, unsigned, with the attacker's address."""
    twin = clone(assertion_of(response))
    for signature in twin.findall("ds:Signature", NS):
        twin.remove(signature)
    _set_email(twin, "admin@corp.example")
    return twin


def _xsw_sibling_before(response: etree._Element) -> None:
    """XSW: the forged assertion first, the signed original after it."""
    original = assertion_of(response)
    response.insert(response.index(original), _evil_twin(response))


def _xsw_sibling_after(response: etree._Element) -> None:
    response.append(_evil_twin(response))


def _xsw_same_id(response: etree._Element) -> None:
    """Two assertions with one ID: the signature's reference finds the good one."""
    twin = _evil_twin(response)
    twin.set("ID", assertion_of(response).get("ID"))
    response.insert(response.index(assertion_of(response)), twin)


def _xsw_original_inside_forged(response: etree._Element) -> None:
    original = assertion_of(response)
    twin = _evil_twin(response)
    response.replace(original, twin)
    twin.append(original)


def _xsw_original_in_extensions(response: etree._Element) -> None:
    original = assertion_of(response)
    twin = _evil_twin(response)
    response.replace(original, twin)
    extensions = etree.SubElement(response, "{urn:oasis:names:tc:SAML:2.0:protocol}Extensions")
    response.remove(extensions)
    response.insert(1, extensions)
    extensions.append(original)


def _xsw_signature_moved_into_forged(response: etree._Element) -> None:
    """The original's signature, carrying the original in its Object, in the forged one."""
    original = assertion_of(response)
    twin = _evil_twin(response)
    response.replace(original, twin)
    signature = original.find("ds:Signature", NS)
    assert signature is not None
    original.remove(signature)
    etree.SubElement(signature, f"{{{DS}}}Object").append(original)
    twin.insert(1, signature)


def _signature_over_another_element(saml: SamlWorld, request_id: str) -> Any:
    """A valid signature, but over the Extensions element, not the assertion used."""
    sp = saml.sp("forge")
    response = saml.forged.response(
        acs=sp["acs"], audience=sp["entity_id"], in_response_to=request_id
    )
    assertion = assertion_of(response)
    _set_email(assertion, "admin@corp.example")
    extensions = etree.Element("{urn:oasis:names:tc:SAML:2.0:protocol}Extensions", ID="_ext1")
    etree.SubElement(extensions, f"{{{DS}}}Signature", Id="placeholder")
    response.insert(1, extensions)
    placeholder = assertion.find("ds:Signature", NS)
    assert placeholder is not None
    assertion.remove(placeholder)
    saml.forged.sign(extensions)
    signature = extensions.find("ds:Signature", NS)
    assert signature is not None
    assertion.insert(1, deepcopy(signature))  # a signature in the assertion... over _ext1
    return response


def _tampered_after_signing(response: etree._Element) -> None:
    _set_email(assertion_of(response), "admin@corp.example")


def _status(response: etree._Element) -> None:
    code = response.find("samlp:Status/samlp:StatusCode", NS)
    assert code is not None
    code.set("Value", "urn:oasis:names:tc:SAML:2.0:status:Responder")


def _xxe(saml: SamlWorld, request_id: str) -> Any:
    body = etree.tostring(valid(saml, request_id)).decode()
    return encode(
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + body.replace("alice@example.com", "&x;")
    )


def _billion_laughs(saml: SamlWorld, request_id: str) -> Any:
    body = etree.tostring(valid(saml, request_id)).decode()
    entities = (
        '<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">'
    )
    return encode(
        f'<?xml version="1.0"?><!DOCTYPE r [{entities}]>' + body.replace("Alice Example", "&c;")
    )


def _doctype_only(saml: SamlWorld, request_id: str) -> Any:
    body = etree.tostring(valid(saml, request_id)).decode()
    return encode('<?xml version="1.0"?><!DOCTYPE samlp:Response>' + body)


# Each case: how to build it, and the refusal expected. A response whose signature is good
# but whose address the site's policy refuses gets the policy's code (403); all else is
# saml_refused (400).
REFUSED = "saml_refused"
CORPUS: dict[str, tuple[Mutation, str]] = {
    "unsigned": (_unsigned, REFUSED),
    "signed by another key": (_other_key, REFUSED),
    "tampered after signing": (_signed_then(_tampered_after_signing), REFUSED),
    "XSW forged assertion before the signed one": (_signed_then(_xsw_sibling_before), REFUSED),
    "XSW forged assertion after the signed one": (_signed_then(_xsw_sibling_after), REFUSED),
    "XSW two assertions with one ID": (_signed_then(_xsw_same_id), REFUSED),
    "XSW signed original inside the forged one": (
        _signed_then(_xsw_original_inside_forged),
        REFUSED,
    ),
    "XSW signed original moved into Extensions": (
        _signed_then(_xsw_original_in_extensions),
        REFUSED,
    ),
    "XSW signature and original moved into the forged one": (
        _signed_then(_xsw_signature_moved_into_forged),
        REFUSED,
    ),
    "signature over a different element": (_signature_over_another_element, REFUSED),
    "wrong audience": (_with(audience="https://someone-else.example/sp"), REFUSED),
    "no audience restriction": (_with(with_audience=False), REFUSED),
    "wrong destination": (_with(destination="https://evil.example/acs"), REFUSED),
    "no destination": (_with(destination=None), REFUSED),
    "wrong recipient": (_with(recipient="https://evil.example/acs"), REFUSED),
    "unknown InResponseTo": (lambda saml, _: valid(saml, "_not_my_request"), REFUSED),
    "expired": (_with(not_before=-900, not_on_or_after=-600, confirmation_until=-600), REFUSED),
    "not yet valid": (_with(not_before=600, not_on_or_after=900), REFUSED),
    "subject confirmation expired": (_with(confirmation_until=-600), REFUSED),
    "issued by another IdP": (_with(issuer="https://other-idp.example/metadata"), REFUSED),
    "status not success": (_signed_then(_status), REFUSED),
    "XXE entity": (_xxe, REFUSED),
    "billion laughs": (_billion_laughs, REFUSED),
    "a DTD at all": (_doctype_only, REFUSED),
    "not base64": (lambda saml, _: "%%%not-base64%%%", REFUSED),
    "not XML": (lambda saml, _: encode(b"<<<not xml"), REFUSED),
    "no e-mail anywhere": (_with(name_id="opaque", attributes={"displayName": ["N"]}), REFUSED),
    # The canonical text (comments dropped), never the prefix before the comment:
    "comment truncation": (_with(email="admin@corp.example<!---->.evil.io"), "domain_not_allowed"),
    "whitespace inside the address": (_with(email="admin@corp.example\n.evil.io"), "invalid_email"),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_hostile_responses_are_refused_and_never_reach_23(
    saml: SamlWorld, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.audit")
    build, code = CORPUS[case]
    browser, request_id, relay = start(saml)
    answer = post(saml, browser, build(saml, request_id), relay)
    assert answer.json()["error"]["code"] == code, (case, answer.status_code, answer.text[:300])
    assert answer.status_code == (400 if code == "saml_refused" else 403), case
    assert saml.calls("session/get-token") == [], case
    if code == "saml_refused":
        assert any(r.getMessage() == "saml_refused" for r in caplog.records), case
    assert COOKIE not in answer.headers.get("Set-Cookie", "")


def test_the_corpus_is_what_the_issue_asks_for() -> None:
    assert len(CORPUS) >= 25


def test_a_response_is_accepted_once(saml: SamlWorld) -> None:
    browser, request_id, relay = start(saml)
    response = encode(valid(saml, request_id, email="ada@corp.example"))
    assert post(saml, browser, response, relay).status_code == 302
    replay = post(saml, browser, response, relay)
    assert replay.status_code == 400 and replay.json()["error"]["code"] == "saml_refused"
    assert len(saml.calls("session/get-token")) == 1


def test_an_assertion_id_is_accepted_once_even_for_a_new_request(saml: SamlWorld) -> None:
    browser, first, relay = start(saml)
    assert (
        post(
            saml, browser, valid(saml, first, email="ada@corp.example", assertion_id="_same"), relay
        ).status_code
        == 302
    )
    browser, second, relay = start(saml)
    again = post(
        saml, browser, valid(saml, second, email="ada@corp.example", assertion_id="_same"), relay
    )
    assert again.status_code == 400
    assert len(saml.calls("session/get-token")) == 1


def test_a_response_for_another_browser_is_refused(saml: SamlWorld) -> None:
    _, request_id, relay = start(saml)
    stranger = requests.Session()  # has no gw_saml cookie for that request
    answer = post(saml, stranger, valid(saml, request_id, email="ada@corp.example"), relay)
    assert answer.status_code == 400 and saml.calls("session/get-token") == []


def test_a_wrong_relay_state_is_refused(saml: SamlWorld) -> None:
    browser, request_id, _ = start(saml)
    answer = post(saml, browser, valid(saml, request_id, email="ada@corp.example"), "other-relay")
    assert answer.status_code == 400 and saml.calls("session/get-token") == []


def test_a_refusal_is_a_clear_page_for_a_browser(saml: SamlWorld) -> None:
    browser, request_id, relay = start(saml)
    page = browser.post(
        saml.sp("forge")["acs"],
        data={"SAMLResponse": encode(_unsigned(saml, request_id)), "RelayState": relay},
        allow_redirects=False,
        timeout=15,
    )
    assert page.status_code == 400 and "text/html" in page.headers["Content-Type"]
    assert "could not be accepted" in page.text


# ---------------------------------------------------------------- metadata from a URL


class MetadataHost:
    """Serves an IdP's metadata document, which a test may change or break."""

    def __init__(self, xml: str) -> None:
        self.xml = xml
        self.broken = False
        app = Flask("metadata-host")

        @app.get("/metadata.xml")
        def metadata() -> Any:
            if self.broken:
                return "down", 500
            return self.xml, 200, {"Content-Type": "application/samlmetadata+xml"}

        self.server = LiveServer(app)
        self.url = f"{self.server.url}/metadata.xml"


@pytest.fixture()
def rolling(saml: SamlWorld, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A gateway whose IdP publishes its metadata at a URL."""
    from gateway import create_app
    from tests.helpers import free_port

    idp = ForgedIdp("https://rolling.idp.test/metadata", "http://127.0.0.1:9/rolling-sso")
    host = MetadataHost(idp.metadata())
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    settings = make_settings(
        {"roll": site_table(saml.devsite.url, identity="roll")},
        gateway={"public_url": gateway},
        identity={"roll": {"type": "saml", "idp_metadata_url": host.url}},
    )
    server = LiveServer(create_app(settings), port)
    monkeypatch.setattr("gateway.identity.saml.REFETCH_INTERVAL", 0.0)
    yield gateway, idp, host
    server.stop()
    host.server.stop()


def _rolling_login(gateway: str, idp: ForgedIdp, keys: KeyPair | None = None) -> int:
    browser = FormClient()
    to_idp = browser.get(
        f"{gateway}/sso/roll/login?return_url=/", allow_redirects=False, timeout=15
    )
    location = to_idp.headers["Location"]
    relay = parse_qs(urlsplit(location).query)["RelayState"][0]
    base = f"{gateway}/sso/saml/roll"
    response = idp.signed_response(
        keys, acs=f"{base}/acs", audience=f"{base}/metadata", in_response_to=request_id_of(location)
    )
    answer = browser.post(
        f"{base}/acs",
        data={"SAMLResponse": encode(response), "RelayState": relay},
        allow_redirects=False,
        timeout=15,
    )
    return answer.status_code


def test_idp_key_rollover_without_a_restart(rolling: Any) -> None:
    gateway, idp, host = rolling
    assert _rolling_login(gateway, idp) == 302
    idp.keys = KeyPair.generate("rolled-over")
    host.xml = idp.metadata()  # the IdP publishes its new key...
    assert _rolling_login(gateway, idp) == 302  # ...and the gateway notices at once


def test_a_failed_metadata_refresh_keeps_the_last_good_copy(
    rolling: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway, idp, host = rolling
    assert _rolling_login(gateway, idp) == 302
    host.broken = True
    monkeypatch.setattr("gateway.identity.saml.METADATA_MAX_AGE", 0.0)  # every use refetches
    assert _rolling_login(gateway, idp) == 302


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({}, "identity.adfs: set exactly one of idp_metadata_url or idp_metadata_file"),
        (
            {"idp_metadata_url": "https://a.example/m", "idp_metadata_file": "x.xml"},
            "identity.adfs.idp_metadata_file: is not a readable file",
        ),
        (
            {"idp_metadata_url": "http://adfs.example.com/m"},
            "identity.adfs.idp_metadata_url: must be https",
        ),
        (
            {"idp_metadata_file": "/nonexistent.xml"},
            "identity.adfs.idp_metadata_file: is not a readable file",
        ),
        (
            {"idp_metadata_url": "https://a.example/m", "sp_key_file": __file__},
            "identity.adfs: set both sp_key_file and sp_cert_file, or neither",
        ),
        (
            {"idp_metadata_url": "https://a.example/m", "clock_skew": 3600},
            "identity.adfs.clock_skew: must be at most 600",
        ),
        (
            {"idp_metadata_url": "https://a.example/m", "allow_idp_initated": True},
            "identity.adfs.allow_idp_initated: unknown key (did you mean `allow_idp_initiated`?)",
        ),
    ],
)
def test_saml_settings_problems(table: dict[str, Any], problem: str) -> None:
    from gateway.settings import ConfigError

    with pytest.raises(ConfigError) as caught:
        make_settings(
            {"x": site_table("https://v.example.com", identity="adfs")},
            identity={"adfs": {"type": "saml", **table}},
        )
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_the_sp_certificate_is_in_the_metadata(saml: SamlWorld, tmp_path: Path) -> None:
    from gateway import create_app

    keys = KeyPair.generate("our-sp")
    (tmp_path / "sp.key").write_bytes(keys.key_pem)
    (tmp_path / "sp.crt").write_bytes(keys.cert_pem)
    idp_xml = tmp_path / "idp.xml"
    idp_xml.write_text(saml.forged.metadata())
    settings = make_settings(
        {"x": site_table(saml.devsite.url, identity="adfs")},
        identity={
            "adfs": {
                "type": "saml",
                "idp_metadata_file": str(idp_xml),
                "sp_key_file": str(tmp_path / "sp.key"),
                "sp_cert_file": str(tmp_path / "sp.crt"),
                "sp_entity_id": "urn:example:gateway",
            }
        },
    )
    client = create_app(settings).test_client()
    metadata = client.get("/sso/saml/adfs/metadata").get_data(as_text=True)
    assert 'entityID="urn:example:gateway"' in metadata
    assert keys.cert_b64[:60] in re.sub(r"\s", "", metadata)
    login = client.get("/sso/x/login?return_url=/")
    query = parse_qs(urlsplit(login.headers["Location"]).query)
    assert query["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]  # signed
    assert query["Signature"][0]


def test_the_state_cookie_survives_the_idps_cross_site_post(
    saml: SamlWorld, tmp_path: Path
) -> None:
    """The IdP posts to the ACS from its own site: on https the state cookie must be
    SameSite=None (a Lax cookie is not sent on a cross-site POST), and still __Host-."""
    from gateway import create_app

    idp_xml = tmp_path / "idp.xml"
    idp_xml.write_text(saml.forged.metadata())
    settings = make_settings(
        {"x": site_table(saml.devsite.url, identity="adfs")},
        gateway={"public_url": "https://sso.example.test"},
        identity={"adfs": {"type": "saml", "idp_metadata_file": str(idp_xml)}},
    )
    login = create_app(settings).test_client().get("/sso/x/login?return_url=/")
    cookie = next(c for c in login.headers.getlist("Set-Cookie") if "gw_saml=" in c)
    assert cookie.startswith("__Host-gw_saml=")
    assert "SameSite=None" in cookie and "Secure" in cookie and "HttpOnly" in cookie


# ---------------------------------------------------------------- LogoutRequests from the IdP


def _logout(saml: SamlWorld, request: etree._Element, identity: str = "forge") -> requests.Response:
    return requests.post(
        saml.sp(identity)["slo"],
        data={"SAMLRequest": encode(request)},
        headers={"Accept": "application/json"},
        allow_redirects=False,
        timeout=15,
    )


def _signed_logout(saml: SamlWorld, **kw: Any) -> etree._Element:
    request = saml.forged.logout_request(destination=saml.sp("forge")["slo"], **kw)
    return saml.forged.sign(request)


def test_a_logout_request_without_an_issuer_is_a_400(saml: SamlWorld) -> None:
    """Red-team round 3: it was read before the signature check and answered 500."""
    request = saml.forged.logout_request(destination=saml.sp("forge")["slo"], issuer=None)
    answer = _logout(saml, drop_placeholders(request))
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "saml_refused"
    signed = _logout(saml, _signed_logout(saml, issuer=None))
    assert signed.status_code == 400


@pytest.mark.parametrize(
    "timing",
    [
        {"issued": -400 * 86400},  # issued 400 days ago
        {"issued": 300 * 86400},  # or 300 days from now
        {"issued": -150, "not_on_or_after": -90},  # past its NotOnOrAfter (and clock_skew)
    ],
)
def test_a_logout_request_out_of_its_time_is_refused(
    saml: SamlWorld, timing: dict[str, float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.audit")
    answer = _logout(saml, _signed_logout(saml, **timing))
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "saml_refused"
    reasons = [
        r.__dict__["reason"] for r in caplog.records if r.getMessage() == "saml_logout_refused"
    ]
    assert reasons and reasons[-1] in ("stale_logout_request", "expired_logout_request")


def test_a_logout_request_is_accepted_once(saml: SamlWorld) -> None:
    """Red-team round 3: the same signed URL logged the user out again after she signed back
    in. A request ID is accepted once, by any instance."""
    request = _signed_logout(saml)
    first = _logout(saml, request)
    assert first.status_code == 302, first.text
    replayed = _logout(saml, request)
    assert replayed.status_code == 400 and replayed.json()["error"]["code"] == "saml_refused"


@pytest.mark.parametrize("signature", [{"Signature": "AAAA"}, {"Signature": "!!!", "SigAlg": "x"}])
def test_a_malformed_redirect_signature_is_a_400(
    saml: SamlWorld, signature: dict[str, str]
) -> None:
    """Review of round 3: a Redirect-binding LogoutRequest from the right (public) Issuer with
    a malformed Signature, or none of SigAlg, raised before it was refused: a 500."""
    import zlib

    request = saml.forged.logout_request(destination=saml.sp("forge")["slo"])
    xml = etree.tostring(drop_placeholders(request))
    deflated = zlib.compressobj(wbits=-15)
    raw = base64.b64encode(deflated.compress(xml) + deflated.flush()).decode()
    answer = requests.get(
        saml.sp("forge")["slo"],
        params={"SAMLRequest": raw, **signature},
        headers={"Accept": "application/json"},
        allow_redirects=False,
        timeout=15,
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "saml_refused"
