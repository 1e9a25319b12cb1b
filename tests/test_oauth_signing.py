"""The client's OAuth 1.0a signing reproduces the reference's worked test vectors (§2.4)."""

from __future__ import annotations

from urllib.parse import unquote

import requests
from oauthlib.oauth1 import Client

from gateway.settings import SiteSettings
from gateway.twentythree.client import TwentyThreeClient

CONSUMER = ("571156-cuQla8tP5tzjf70znIwS", "u5pHMUpV8wB7LxwieAnrexE8CkzoZTVs6G626KKqfPVqFp0TxT")
TOKEN = ("3-gnS3NKP74AzcJsvbFi3Z", "83x7n5rR2eT1IV0zLNptvxxy1R3WFptGozka38tDtLZmSDYboW")
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


def test_client_signs_the_documented_request() -> None:
    site = SiteSettings(
        name="v",
        url="http://v.23video.com",
        consumer_key=CONSUMER[0],
        consumer_secret=CONSUMER[1],
        access_token=TOKEN[0],
        access_token_secret=TOKEN[1],
    )
    auth = TwentyThreeClient(site)._auth
    auth.client.nonce = "a666b90c2339a866c8ed405e3e2821c3"
    auth.client.timestamp = "1267547771"
    request = requests.Request(
        "POST", "http://v.23video.com/api/photo/list", data={"format": "xml"}, auth=auth
    ).prepare()
    assert request.body == b"format=xml"
    header = request.headers["Authorization"]
    params = _header_params(header.decode() if isinstance(header, bytes) else header)
    assert params["realm"] == "http://v.23video.com/"
    assert params["oauth_signature"] == "R6etDqoM8JLzuXK+3BiVeXCEqRQ="
    assert params["oauth_version"] == "1.0"


def test_base_string_matches_the_document() -> None:
    client = Client(
        CONSUMER[0],
        client_secret=CONSUMER[1],
        resource_owner_key=TOKEN[0],
        resource_owner_secret=TOKEN[1],
        nonce="a666b90c2339a866c8ed405e3e2821c3",
        timestamp="1267547771",
    )
    from oauthlib.common import Request
    from oauthlib.oauth1.rfc5849 import signature

    req = Request(
        "http://v.23video.com/api/photo/list",
        "POST",
        "format=xml",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    req.oauth_params = client.get_oauth_params(req)
    collected = signature.collect_parameters(
        body=req.body, headers={}, exclude_oauth_signature=True
    )
    collected += req.oauth_params
    normalized = signature.normalize_parameters(collected)
    base = signature.signature_base_string(
        "POST", "http://v.23video.com/api/photo/list", normalized
    )
    assert base == BASE_STRING
    assert signature.sign_hmac_sha1_with_client(base, client) == "R6etDqoM8JLzuXK+3BiVeXCEqRQ="


def test_access_token_step_vector() -> None:
    client = Client(
        CONSUMER[0],
        client_secret=CONSUMER[1],
        resource_owner_key="12-8vr9EplGHHR8Ciem8SLu",
        resource_owner_secret="qQptayCQG1ZQYbS73FE6WdNz4wKjYJqcvLzI9DjGD1UKP9wruL",
        verifier="z3pjUoZU6KN8B5n4V2Fy",
        nonce="936dff7fa3d5674b1eb5c217ce6701b3",
        timestamp="1267547767",
    )
    _, headers, _ = client.sign("http://api.visualplatform.net/oauth/access_token")
    assert (
        _header_params(headers["Authorization"])["oauth_signature"]
        == "vFb0a6CGy6rtXeuEfZlhOHvjhjk="
    )


def test_request_token_step_vector() -> None:
    client = Client(
        CONSUMER[0],
        client_secret=CONSUMER[1],
        callback_uri="http://my.example.com/callback",
        nonce="48e12d7291d99b0416f3bb30a9d2ea72",
        timestamp="1267547746",
    )
    _, headers, _ = client.sign("http://api.visualplatform.net/oauth/request_token")
    assert (
        _header_params(headers["Authorization"])["oauth_signature"]
        == "ozL65XeaXv4LHnJ6y3Q8H/5tERI="
    )
