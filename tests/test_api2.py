"""23 as documented today: /api/2 with typed JSON and HTTP statuses, pages capped at
pagination_max, listings that move while they are read, bearer tokens from an api_token,
pingback keys. Against the emulated site run as a stand-in of 23's 2026 OpenAPI file: pages
of at most 40, newest first unless asked otherwise, bearer tokens that expire quickly."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway import create_app
from gateway.devsite.catalog import Photo, demo_photos, generated_photos
from gateway.twentythree.cache import PhotoInfo
from gateway.twentythree.client import TwentyThreeClient
from tests.helpers import (
    DEMO_READ,
    Devsite,
    first_sync,
    free_port,
    make_settings,
    records_of,
    serving,
    site_table,
)

VIDEOS = 998
PAGE_MAX = 40
API_TOKEN = "demo-api-token-0123456789abcdef"
PINGBACK_KEY = "pingback-key-0123456789"
CMS_KEY = "cms-key-0123456789abcdef"
TWO_HOURS = 7200


def _photos() -> list[Photo]:
    return [*demo_photos(), *generated_photos(VIDEOS - len(demo_photos()))]


@dataclass
class Api2World:
    gateway: str
    devsite: Devsite
    app: Any

    def runtime(self) -> Any:
        return self.app.extensions["gateway.runtime"]

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.devsite.calls() if method is None or c.get("method") == method]

    def sign_in(self, site: str, email: str) -> requests.Response:
        """A visitor the trusted proxy names, sent by the site to its remote login URL."""
        return requests.get(
            f"{self.gateway}/sso/{site}/login",
            params={"return_url": f"{self.devsite.url}/"},
            headers={"X-Email": email, "Accept": "application/json"},
            allow_redirects=False,
            timeout=15,
        )

    def mint(self, ids: list[int], site: str = "spec", **body: Any) -> list[dict[str, Any]]:
        answer = requests.post(
            f"{self.gateway}/api/v1/sites/{site}/tokens",
            json={"photo_ids": ids, **body},
            headers={"Authorization": f"Bearer {CMS_KEY}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        tokens: list[dict[str, Any]] = answer.json()["tokens"]
        return tokens


@pytest.fixture(scope="module")
def world() -> Iterator[Api2World]:
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    devsite = Devsite.for_gateway(
        gateway, "spec", photos=_photos(), page_max=PAGE_MAX, bearer_lifetime=15
    )
    bearer = {"url": devsite.url, "api_token": API_TOKEN, "identity": ["team"]}
    sites = {
        # Synced, bearer credentials, pingbacks only with the key.
        "spec": bearer | {"catalogue": "sync", "pingback_key": PINGBACK_KEY},
        # On demand, the four OAuth keys, /api/2 (the default).
        "ondemand": site_table(devsite.url, identity="team"),
        # Read-level keys: 23 answers 403 to session/get-token.
        "readonly": site_table(devsite.url, DEMO_READ, identity="team"),
        # Signs visitors in as their own 23 user (user/list, user/get, user/get-login-token).
        "users": site_table(devsite.url, identity="team", login_mode="user"),
    }
    settings = make_settings(
        sites,
        gateway={"public_url": gateway, "trusted_proxies": ["127.0.0.1/32"]},
        identity={"team": {"type": "header", "email_header": "X-Email"}},
        api_keys={
            "cms": {
                "key_sha256": hashlib.sha256(CMS_KEY.encode()).hexdigest(),
                "sites": ["spec", "ondemand", "readonly", "users"],
            }
        },
    )
    with serving(settings, port, devsite, synced="spec") as app:
        yield Api2World(gateway, devsite, app)


@pytest.fixture()
def spec(world: Api2World) -> Iterator[Api2World]:
    world.devsite.reset()
    yield world
    world.devsite.reset()


def _resync(world: Api2World) -> Any:
    catalogue = world.runtime().catalogues["spec"]
    assert catalogue.sync(force=True)
    for cache in world.runtime().caches.values():
        cache.forget_all()
    return catalogue.state(fresh=True)


def test_a_sync_reads_every_page_23_serves_and_asks_only_for_what_it_uses(
    spec: Api2World,
) -> None:
    """Field report: pages capped at 40 and the sync stopped after the first page (a short
    page "ended" the listing), so 963 of 998 real videos were answered no_such_photo."""
    state = _resync(spec)
    listing = spec.calls("photo/list")
    assert state.videos == VIDEOS and state.settled
    assert len(listing) == -(-VIDEOS // PAGE_MAX)  # every page of 40, nothing more
    for call in listing:
        assert call["api2"] and call["auth"] == "bearer" and call["level"] == "super"
        params = call["params"]
        assert params["orderby"] == "uploaded" and params["order"] == "asc"
        assert "photo_id" in params["fields"].split(",") and "title" not in params["fields"]
    spec.devsite.reset()
    ids = [p.photo_id for p in _photos()]
    refused = []
    for start in range(0, len(ids), 100):
        tokens = spec.mint(ids[start : start + 100])
        refused += [t["photo_id"] for t in tokens if "error" in t]
    assert refused == [] and spec.calls() == []  # every one from the catalogue


def test_a_listing_that_moves_is_not_believed_until_a_clean_re_read(spec: Api2World) -> None:
    """Five videos deleted while the first page is read: the listing shifts, so a video the
    sync did not see is asked of 23 rather than called missing; the next clean read
    settles it, and the deleted ones are no_such_photo."""
    deleted = [2100, 2101, 2102, 2103, 2104]
    spec.devsite.post_json("/_devsite/listing-moves", {"after_page": 1, "delete": deleted})
    state = _resync(spec)
    assert not state.settled
    catalogue = spec.runtime().catalogues["spec"]
    skipped = [p.photo_id for p in _photos() if p.photo_id not in deleted]
    found, unresolved = catalogue.lookup(skipped) or ({}, [])
    assert len(unresolved) <= PAGE_MAX  # only the stretch that moved is asked of 23
    assert all(not hasattr(f, "code") for f in found.values())  # no real video called missing
    spec.devsite.reset()  # the catalogue as it started; then the five go for good
    for photo_id in deleted:
        requests.delete(f"{spec.devsite.url}/_devsite/photos/{photo_id}", timeout=5)
    state = _resync(spec)
    assert state.settled and state.videos == VIDEOS - len(deleted)
    tokens = spec.mint([deleted[0], 1001])
    assert tokens[0]["error"]["code"] == "no_such_photo" and "token" in tokens[1]
    spec.devsite.reset()
    _resync(spec)


def test_typed_values_are_read_right(spec: Api2World) -> None:
    """api/2 sends numbers and booleans: a two-hour video gets a two-hour token, an
    unpublished one stays closed to visitors."""
    cache = spec.runtime().caches["ondemand"]
    board = cache.fetch(1005)
    draft = cache.fetch(1003)
    assert isinstance(board, PhotoInfo) and board.length == TWO_HOURS and board.published
    assert isinstance(draft, PhotoInfo) and not draft.published
    (token,) = spec.mint([1005], site="ondemand", ttl=60, cover_playback=True)
    assert token["expire"] - time.time() > 2 * TWO_HOURS
    visitor = requests.get(
        f"{spec.gateway}/embed/ondemand/1003",
        headers={"X-Email": "ada@example.com"},
        allow_redirects=False,
        timeout=15,
    )
    assert visitor.status_code in (403, 404)


def test_frames_and_playlists_are_not_downloads(spec: Api2World) -> None:
    info = spec.runtime().caches["ondemand"].fetch(1002)
    assert isinstance(info, PhotoInfo)
    assert "video_frames" not in info.files and "video_hls" not in info.files
    assert {"video_hd", "audio"} <= set(info.files)


def test_refused_credentials_are_a_502_naming_site_method_and_cause(spec: Api2World) -> None:
    answer = spec.sign_in("readonly", "ada@example.com")
    assert answer.status_code == 502, answer.text
    error = answer.json()["error"]
    assert error["site"] == "readonly" and error["api_method"] == "session/get-token"
    assert error["cause"] == "permission_denied"
    (call,) = spec.calls("session/get-token")
    assert call["api2"] and call["http_method"] == "GET"  # the spec's verb


def test_an_unknown_video_is_no_such_photo_per_item(spec: Api2World) -> None:
    tokens = spec.mint([1001, 987654], site="ondemand")
    assert "token" in tokens[0] and tokens[1]["error"]["code"] == "no_such_photo"
    (miss,) = [c for c in spec.calls("photo/list") if c["params"].get("photo_id") == "987654"]
    assert miss["code"] == "no_such_photo"  # answered 404 by the stand-in


def test_pingbacks_need_the_key_and_cost_nothing_without_it(spec: Api2World) -> None:
    for path in ("/pingback/spec", "/pingback/spec/wrong-key-0123456789"):
        answer = requests.post(
            spec.gateway + path, data={"type": "photo", "photo_id": 1001}, timeout=15
        )
        assert answer.status_code == 404
    assert spec.calls() == []
    answer = requests.post(
        f"{spec.gateway}/pingback/spec/{PINGBACK_KEY}",
        data={"type": "photo", "photo_id": 1001},
        timeout=15,
    )
    assert answer.status_code == 200
    (reread,) = spec.calls("photo/list")
    assert reread["params"]["photo_id"] == "1001"


def test_bearer_tokens_are_refreshed_before_they_expire_and_after_a_401(
    spec: Api2World,
) -> None:
    """Bearer tokens of 15 s: 20 s of sign-ins, every call authorised, a handful of
    exchanges (not one per call); a token 23 drops early costs one exchange and no failure."""
    deadline = time.monotonic() + 20
    signed_in = 0
    while time.monotonic() < deadline:
        answer = requests.get(
            f"{spec.gateway}/sso/spec/login",
            params={"return_url": f"{spec.devsite.url}/"},
            headers={"X-Email": f"v{signed_in}@example.com"},
            allow_redirects=False,
            timeout=15,
        )
        assert answer.status_code == 302, answer.text
        signed_in += 1
        time.sleep(0.05)
    handoffs = spec.calls("session/get-token")
    exchanges = spec.calls("user/tokens")
    assert len(handoffs) == signed_in and all(c["status"] == "ok" for c in handoffs)
    assert all(c["auth"] == "bearer" for c in handoffs)
    assert 1 <= len(exchanges) <= 4, len(exchanges)
    assert all(c["params"].get("cross_sites_p") == "1" for c in exchanges)

    spec.devsite.state.bearers.clear()  # 23 forgets every token early
    spec.devsite.reset()
    answer = spec.sign_in("spec", "late@example.com")
    assert answer.status_code == 302
    assert [c["method"] for c in spec.calls()] == [
        "session/get-token",  # 401: the token was dropped
        "user/tokens",
        "session/get-token",
    ]


def test_the_exchange_picks_this_sites_token_and_keeps_it_out_of_the_store(
    spec: Api2World,
) -> None:
    client: TwentyThreeClient = spec.runtime().site("spec").client
    assert client.bearer is not None
    token = client.bearer.current()
    stored = spec.runtime().store.get("bearer:spec")
    assert isinstance(stored, str) and token not in stored  # sealed with the api_token
    assert token in spec.devsite.state.bearers
    assert repr(client.bearer._local).startswith("BearerToken(expires=")
    assert token not in repr(client.bearer._local)


# ---------------------------------------------------------------- the contract

# Facts of 23's 2026 OpenAPI file (verbs, permission levels, parameter and response field
# types, error statuses), derived from packages/twentythree-cli/specs/twentythree-api-swagger.json
# in the public repository 23/twentythree-cli at commit 0d0d1ac3d0edd2b1c9dbe80f825792df28b846af
# (MIT licence); see the file's own "source" entry.
FACTS = json.loads((Path(__file__).parent / "contract" / "23-api2-facts.json").read_text())
# twentythree-cli's token exchange, which the OpenAPI file does not describe.
EXTRA = {"user/tokens": {"verb": "get", "parameters": {"cross_sites_p": {"type": "boolean"}}}}
_PARAM = {
    "integer": re.compile(r"-?[0-9]+"),
    "number": re.compile(r"-?[0-9]+(\.[0-9]+)?"),
    "boolean": re.compile(r"(?i)0|1|t|f|true|false"),
}


def _spec(method: str) -> dict[str, Any]:
    found: dict[str, Any] = FACTS["methods"].get(method) or EXTRA[method]
    return found


def _param_problems(call: dict[str, Any]) -> list[str]:
    spec = _spec(call["method"])
    problems = []
    if call["http_method"].lower() != spec["verb"]:
        problems.append(f"{call['method']}: {call['http_method']}, the spec says {spec['verb']}")
    for name, value in call["params"].items():
        declared = spec["parameters"].get(name)
        if declared is None:
            problems.append(f"{call['method']}: no parameter {name}")
        elif declared["type"] in _PARAM and not _PARAM[declared["type"]].fullmatch(value):
            problems.append(f"{call['method']}: {name}={value!r} is no {declared['type']}")
    if "fields" in call["params"]:
        known = set(spec.get("response", {}).get("data_item", {}))
        asked = set(call["params"]["fields"].split(","))
        problems += [f"{call['method']}: fields names {f}" for f in sorted(asked - known)]
    return problems


def _type_ok(declared: str, value: Any, nullable: bool) -> bool:
    if value is None:
        return nullable
    if declared == "number" or declared == "integer":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if declared == "boolean":
        return isinstance(value, bool)
    if declared == "string":
        return isinstance(value, str)
    if declared.startswith("array"):
        return isinstance(value, list)
    return isinstance(value, dict) if declared == "object" else True


def _answer_problems(method: str, envelope: dict[str, Any]) -> list[str]:
    response = _spec(method).get("response", {})
    problems = [
        f"{method}: envelope {key} is {type(envelope[key]).__name__}, not {declared}"
        for key, declared in response.get("envelope", {}).items()
        if key in envelope and not _type_ok(declared, envelope[key], False)
    ]
    shape = response.get("data_item") or response.get("data") or {}
    nullable = set(response.get("data_item_fields_with_example_null", ()))
    data = envelope.get("data")
    for item in data if isinstance(data, list) else [data]:
        problems += [
            f"{method}: {key} is {type(item[key]).__name__}, not {declared}"
            for key, declared in shape.items()
            if isinstance(item, dict)
            and key in item
            and not _type_ok(declared, item[key], key in nullable)
        ]
    return problems


def test_every_call_the_gateway_makes_follows_the_spec(spec: Api2World) -> None:
    _resync(spec)  # the listing, page by page
    spec.mint([1001, 987654], site="ondemand")  # single lookups, one unknown
    for site in ("spec", "users"):  # session/get-token; user/list, user/get, get-login-token
        answer = spec.sign_in(site, "ada@example.com")
        assert answer.status_code == 302, answer.text
    calls = [c for c in spec.calls() if c.get("method")]
    used = {c["method"] for c in calls}
    assert {"photo/list", "session/get-token", "user/list", "user/get-login-token"} <= used
    assert all(c["api2"] for c in calls)  # every call on /api/2
    problems = [p for c in calls for p in _param_problems(c)]
    assert problems == []


def test_the_emulated_site_answers_as_the_spec_says(spec: Api2World) -> None:
    client: TwentyThreeClient = spec.runtime().site("ondemand").client
    answers = {
        "photo/list": client.call("photo/list", {"size": 40, "include_unpublished_p": 1}),
        "user/list": client.call("user/list", {"search": "ada"}),
        "user/get": client.call("user/get", {"user_id": 501}),
        "session/get-token": client.call(
            "session/get-token", {"email": "a@example.com", "return_url": "/"}, read=False
        ),
        "user/get-login-token": client.call(
            "user/get-login-token", {"user_id": 501, "return_url": "/"}, read=False
        ),
    }
    problems = [p for m, a in answers.items() for p in _answer_problems(m, dict(a.envelope))]
    assert problems == []
    listing = answers["photo/list"].envelope
    assert listing["size"] == PAGE_MAX and listing["total_count"] >= VIDEOS
    newest = [p["photo_id"] for p in listing["data"]]
    assert newest == sorted(newest, reverse=True)  # default-published, desc: newest first
    with pytest.raises(Exception) as refused:
        client.call("photo/list", {"photo_id": 987654})
    assert getattr(refused.value, "upstream_code", "") == "no_such_photo"
    (miss,) = [c for c in spec.calls() if c["params"].get("photo_id") == "987654"]
    assert miss["status"] == "error"
    status = requests.get(f"{spec.devsite.url}/api/2/photo/list?photo_id=987654", timeout=5)
    assert status.status_code == 404 and status.json()["code"] == "no_such_photo"
    assert status.json()["status"] in FACTS["error_envelope"]["enums"]["status"]
    assert status.status_code in FACTS["error_envelope"]["statuses"]


# ---------------------------------------------------------------- the legacy dialect


@pytest.mark.parametrize("api_version", [1, 2])
def test_both_dialects_sync_mint_and_sign_in(devsite: Devsite, api_version: int) -> None:
    """``api_version = 1`` keeps the legacy <url>/api/<method>?format=json&raw dialect
    (strings, errors on HTTP 200, writes as POSTs); 2 speaks /api/2."""
    site = site_table(devsite.url, identity="team", catalogue="sync", api_version=api_version)
    app = create_app(
        make_settings(
            {"demo": site},
            gateway={"trusted_proxies": ["127.0.0.1/32"]},
            identity={"team": {"type": "header", "email_header": "X-Email"}},
            api_keys={
                "cms": {
                    "key_sha256": hashlib.sha256(CMS_KEY.encode()).hexdigest(),
                    "sites": ["demo"],
                }
            },
        )
    )
    runtime = app.extensions["gateway.runtime"]
    first_sync(runtime.catalogues["demo"], 30)
    client = app.test_client()
    minted = client.post(
        "/api/v1/sites/demo/tokens",
        json={"photo_ids": [1002, 1005, 424242], "ttl": 60, "cover_playback": True},
        headers={"Authorization": f"Bearer {CMS_KEY}"},
    ).get_json()["tokens"]
    assert minted[1]["expire"] - time.time() > 2 * TWO_HOURS  # 1005 is two hours long
    assert minted[2]["error"]["code"] == "no_such_photo"
    answer = client.get(
        "/sso/demo/login",
        query_string={"return_url": f"{devsite.url}/"},
        headers={"X-Email": "ada@example.com"},
    )
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(f"{devsite.url}/api/session/redeem-token?")
    calls = [c for c in devsite.calls() if c.get("method")]
    assert {c["api2"] for c in calls} == {api_version == 2}
    (handoff,) = [c for c in calls if c["method"] == "session/get-token"]
    assert handoff["http_method"] == ("GET" if api_version == 2 else "POST")
    if api_version == 1:
        assert all(c["params"].get("format") == "json" for c in calls)
    runtime.catalogues["demo"].stop()


# ---------------------------------------------------------------- red team of the /api/2 work


def test_a_refused_api_token_is_a_502_never_a_missing_video(devsite: Devsite) -> None:
    """Review: 23's code at the exchange ("no_such_object") reached photo lookups as the
    lookup's own answer, and real videos were cached as missing. A refused api_token is a
    502 naming user/tokens; a run of calls costs one exchange per backoff, not one each."""
    site = {"url": devsite.url, "api_token": "not-the-right-token-0123456789", "identity": []}
    app = create_app(
        make_settings(
            {"demo": site},
            api_keys={
                "cms": {
                    "key_sha256": hashlib.sha256(CMS_KEY.encode()).hexdigest(),
                    "sites": ["demo"],
                }
            },
        )
    )
    app.extensions["gateway.runtime"].close()  # no sync loop left retrying after this test
    client = app.test_client()
    for _ in range(5):
        answer = client.post(
            "/api/v1/sites/demo/tokens",
            json={"photo_ids": [1001]},
            headers={"Authorization": f"Bearer {CMS_KEY}"},
        )
        assert answer.status_code == 502, answer.get_data(as_text=True)
        error = answer.get_json()["error"]
        assert error["api_method"] == "user/tokens" and error["site"] == "demo"
        assert error["cause"] == "missing_authentication"
        assert "not-the-right-token" not in answer.get_data(as_text=True)
    assert len([c for c in devsite.calls() if c["method"] == "user/tokens"]) == 1


def test_odd_expiration_times_are_not_believed() -> None:
    from gateway.twentythree.bearer import _when

    now = time.time()
    assert _when(int(now) + 60) == int(now) + 60
    assert _when(str(int(now) + 60)) == int(now) + 60
    assert _when("2026-12-05T16:00:00Z") is not None
    for odd in (float("nan"), float("inf"), 1e400, "1" * 40, True, None, now + 10 * 366 * 86400):
        assert _when(odd) is None


def test_the_pingback_key_stays_out_of_access_lines() -> None:
    from gateway.serve.access import log_access

    with records_of("gateway.access") as seen:
        log_access(
            remote="198.51.100.7",
            method="POST",
            path=f"/pingback/intranet/{PINGBACK_KEY}",
            status=200,
            size=2,
            seconds=0.001,
            request_id="r",
            user_agent="23",
        )
    (line,) = seen
    assert line.__dict__["path"] == "/pingback/intranet/***"


def test_idp_logout_marks_outlive_console_sessions() -> None:
    """Review: with session_max_age = 300 the IdP's logout mark expired after five minutes,
    and an 8-hour console session came back."""
    from gateway.sessions import CONSOLE_AGE, SessionCodec, Sessions
    from gateway.store import MemoryStore

    store = MemoryStore()
    ttls: list[float] = []
    original = store.set

    def spy(key: str, value: Any, ttl: float) -> None:
        ttls.append(ttl)
        original(key, value, ttl)

    store.set = spy  # type: ignore[method-assign]
    Sessions(SessionCodec(["k" * 32], 300, 300), store).revoke_at_idp("idp", subject="s")
    assert ttls and min(ttls) >= CONSOLE_AGE
