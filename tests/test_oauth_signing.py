"""The gateway's client signs the reference's worked request (§2.4) exactly: the same base
string and signature, from the parameters the client really sends.

(The reference's request_token and access_token vectors are for the three-legged flow, which
the gateway never runs: it holds privileged credentials. Checking them would test oauthlib,
not the gateway.)"""

from __future__ import annotations

from urllib.parse import unquote

import requests
from oauthlib.oauth1.rfc5849 import signature
from pydantic import SecretStr

from gateway.settings import SiteSettings
from gateway.twentythree.client import TwentyThreeClient

CONSUMER = ("571156-cuQla8tP5tzjf70znIwS", "u5pHMUpV8wB7LxwieAnrexE8CkzoZTVs6G626KKqfPVqFp0TxT")
TOKEN = ("3-gnS3NKP74AzcJsvbFi3Z", "83x7n5rR2eT1IV0zLNptvxxy1R3WFptGozka38tDtLZmSDYboW")
URL = "http://v.23video.com/api/photo/list"
BASE_STRING = (
    "POST&http%3A%2F%2Fv.23video.com%2Fapi%2Fphoto%2Flist&format%3Dxml%26oauth_consumer_key"
    "%3D571156-cuQla8tP5tzjf70znIwS%26oauth_nonce%3Da666b90c2339a866c8ed405e3e2821c3"
    "%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1267547771%26oauth_token"
    "%3D3-gnS3NKP74AzcJsvbFi3Z%26oauth_version%3D1.0"
)


def _header_params(header: str) -> dict[str, str]:
    assert header.startswith("OAuth ")
    params = {}
    for part in header[len("OAuth ") :].split(","):
        key, _, value = part.strip().partition("=")
        params[key] = unquote(value.strip('"'))
    return params


def _signed_by_our_client() -> requests.PreparedRequest:
    # The reference's site is plain http on a public host, which the config would refuse:
    # build the settings directly, exactly as the document has them.
    site = SiteSettings.model_construct(
        url="http://v.23video.com",
        consumer_key=CONSUMER[0],
        consumer_secret=SecretStr(CONSUMER[1]),
        access_token=TOKEN[0],
        access_token_secret=SecretStr(TOKEN[1]),
    )
    auth = TwentyThreeClient(site).auth  # the same OAuth1 object every call uses
    auth.client.nonce = "a666b90c2339a866c8ed405e3e2821c3"
    auth.client.timestamp = "1267547771"
    return requests.Request("POST", URL, data={"format": "xml"}, auth=auth).prepare()


def test_client_signs_the_documented_request() -> None:
    request = _signed_by_our_client()
    assert request.body == b"format=xml"
    header = request.headers["Authorization"]
    params = _header_params(header.decode() if isinstance(header, bytes) else header)
    assert params["realm"] == "http://v.23video.com/"
    assert params["oauth_signature_method"] == "HMAC-SHA1" and params["oauth_version"] == "1.0"
    assert params["oauth_signature"] == "R6etDqoM8JLzuXK+3BiVeXCEqRQ="


def test_what_the_client_sends_makes_the_documented_base_string() -> None:
    """realm and oauth_signature stay out; the form body's fields go in."""
    request = _signed_by_our_client()
    header = request.headers["Authorization"]
    sent = _header_params(header.decode() if isinstance(header, bytes) else header)
    collected = [(k, v) for k, v in sent.items() if k not in ("realm", "oauth_signature")]
    collected += [("format", "xml")]
    base = signature.signature_base_string("POST", URL, signature.normalize_parameters(collected))
    assert base == BASE_STRING
