"""The mint API against the emulated site: every URL fetched there, upstream calls counted."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from gateway import create_app
from gateway.twentythree.cache import PhotoInfo
from gateway.twentythree.minting import Mintable
from gateway.twentythree.tokens import time_limited_token, verify_token
from tests.helpers import Devsite, LiveServer, make_settings, site_table, wait_for_a_fresh_second

CMS_KEY = "cms-key-0123456789abcdef"
SHOP_KEY = "shop-key-0123456789abcdef"


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _settings(devsite: Devsite, **site_extra: Any) -> Any:
    return make_settings(
        {"demo": site_table(devsite.url, **site_extra), "other": site_table(devsite.url)},
        api_keys={
            "cms": {"key_sha256": _sha(CMS_KEY), "sites": ["demo"], "max_ttl": 7200},
            "shop": {"key_sha256": _sha(SHOP_KEY), "sites": ["other"], "rate_limit": 0.1},
        },
    )


@pytest.fixture()
def app(devsite: Devsite) -> Flask:
    return create_app(_settings(devsite))


def mint(client: FlaskClient, body: Any, key: str = CMS_KEY, site: str = "demo") -> Any:
    return client.post(
        f"/api/v1/sites/{site}/tokens", json=body, headers={"Authorization": f"Bearer {key}"}
    )


def api_calls(devsite: Devsite) -> list[dict[str, Any]]:
    return [c for c in devsite.calls() if c["method"] == "photo/list"]


def test_mint_one_and_fetch_every_url(client: FlaskClient, devsite: Devsite) -> None:
    before = int(time.time())
    response = mint(client, {"photo_ids": [1002], "ttl": 600})
    assert response.status_code == 200, response.json
    (item,) = response.json["tokens"]
    photo = devsite.photos[1002]
    assert before + 600 <= item["expire"] <= int(time.time()) + 601
    assert item["token"] == time_limited_token(photo.token, 1002, item["expire"])
    assert set(item["urls"]) == {"embed", "download", "video", "thumbnail", "api"}
    for name, url in item["urls"].items():
        assert url.startswith(devsite.url + "/") and photo.token not in url
        fetched = requests.get(url, timeout=5)
        assert fetched.status_code == 200, (name, url)
    assert "video_hd" in item["urls"]["video"] and "video_1080p" in item["urls"]["download"]


def test_unpublished_and_protected_videos_mint(client: FlaskClient, devsite: Devsite) -> None:
    items = mint(client, {"photo_ids": [1003, 1004]}).json["tokens"]
    for item in items:
        assert requests.get(item["urls"]["embed"], timeout=5).status_code == 200
    body = str(items)
    assert "original_filename" not in body and "/var/spool" not in body
    assert devsite.photos[1004].protected_token not in body


def test_expired_and_tampered_urls_are_refused(client: FlaskClient, devsite: Devsite) -> None:
    item = mint(client, {"photo_ids": [1001], "expire": int(time.time()) + 1}).json["tokens"][0]
    url = item["urls"]["embed"]
    tampered = url.replace(
        item["token"], ("0" if item["token"][0] != "0" else "1") + item["token"][1:]
    )
    assert requests.get(tampered, timeout=5).status_code == 403
    assert requests.get(url, timeout=5).status_code == 200
    # The same photo's token for a second that has passed: the site refuses it.
    photo = devsite.photos[1001]
    past = int(time.time()) - 1
    expired = url.replace(item["token"], time_limited_token(photo.token, 1001, past))
    assert requests.get(expired, timeout=5).status_code == 403


def test_warm_mints_make_no_upstream_call(client: FlaskClient, devsite: Devsite) -> None:
    mint(client, {"photo_ids": [1001, 1002]})
    assert len(api_calls(devsite)) == 2
    for _ in range(5):
        assert mint(client, {"photo_ids": [1002, 1001], "ttl": 60}).status_code == 200
    assert len(api_calls(devsite)) == 2


def test_unknown_videos_are_per_item_errors_and_negative_cached(
    client: FlaskClient, devsite: Devsite
) -> None:
    for _ in range(3):
        items = mint(client, {"photo_ids": [1001, 424242]}).json["tokens"]
        assert items[0]["photo_id"] == 1001 and "token" in items[0]
        assert items[1] == {
            "photo_id": 424242,
            "error": {"code": "no_such_photo", "message": "The video does not exist."},
        }
    assert sorted(c["params"]["photo_id"] for c in api_calls(devsite)) == ["1001", "424242"]


def test_batch_of_100_with_cold_photos_in_parallel(client: FlaskClient, devsite: Devsite) -> None:
    ids = [1001, 1002, 1003, 1004] * 25
    response = mint(client, {"photo_ids": ids})
    assert response.status_code == 200
    assert [i["photo_id"] for i in response.json["tokens"]] == ids
    assert len(api_calls(devsite)) == 4


@pytest.fixture()
def live_gateway(app: Flask) -> Iterator[str]:
    server = LiveServer(app)
    yield server.url
    server.stop()


def test_single_flight_100_concurrent_cold_mints(live_gateway: str, devsite: Devsite) -> None:
    devsite.mode("slow", seconds=0.5)

    def one(_: int) -> int:
        return requests.post(
            f"{live_gateway}/api/v1/sites/demo/tokens",
            json={"photo_ids": [1002]},
            timeout=10,
            headers={"Authorization": f"Bearer {CMS_KEY}"},
        ).status_code

    with cf.ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(one, range(100)))
    assert statuses == [200] * 100
    assert len(api_calls(devsite)) == 1


def test_pingback_drops_the_cached_photo(client: FlaskClient, devsite: Devsite) -> None:
    first = mint(client, {"photo_ids": [1001]}).json["tokens"][0]
    photo = devsite.photos[1001]
    old_token = photo.token
    photo.token = "rotated0123456789abcdef01234567"  # the site changed the video's secret
    try:
        stale = mint(client, {"photo_ids": [1001]}).json["tokens"][0]
        assert not verify_token(photo.token, 1001, stale["token"])  # still the cached secret
        response = client.post("/pingback/demo?type=photo&photo_id=1001")
        assert response.status_code == 200 and response.json == {"status": "ok"}
        fresh = mint(client, {"photo_ids": [1001]}).json["tokens"][0]
        assert verify_token(photo.token, 1001, fresh["token"])
        assert requests.get(fresh["urls"]["embed"], timeout=5).status_code == 200
        assert requests.get(first["urls"]["embed"], timeout=5).status_code == 403
    finally:
        photo.token = old_token
    assert len(api_calls(devsite)) == 2


def test_pingback_reads_the_form_body_too(client: FlaskClient, devsite: Devsite) -> None:
    mint(client, {"photo_ids": [1001]})
    assert (
        client.post("/pingback/demo", data={"type": "photo", "photo_id": "1001"}).status_code == 200
    )
    mint(client, {"photo_ids": [1001]})
    assert len(api_calls(devsite)) == 2


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/pingback/demo?type=album&photo_id=1", 400, "invalid_type"),
        ("/pingback/demo?type=photo&photo_id=abc", 400, "invalid_photo_id"),
        ("/pingback/demo?type=photo&photo_id=-5", 400, "invalid_photo_id"),
        ("/pingback/demo?type=photo", 400, "invalid_photo_id"),
        ("/pingback/nosite?type=photo&photo_id=1", 404, "no_such_site"),
    ],
)
def test_bad_pingbacks(
    client: FlaskClient, devsite: Devsite, path: str, status: int, code: str
) -> None:
    response = client.post(path)
    assert response.status_code == status and response.json["error"]["code"] == code
    assert devsite.calls() == []


def test_pingbacks_are_rate_limited(client: FlaskClient) -> None:
    wait_for_a_fresh_second()  # all 60 within one second's window
    statuses = [client.post("/pingback/demo?type=photo&photo_id=1").status_code for _ in range(60)]
    assert statuses == [200] * 20 + [429] * 40  # 20 a second per site and sender


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"photo_ids": ["12a"]}, "invalid_photo_id"),
        ({"photo_ids": [1.5]}, "invalid_photo_id"),
        ({"photo_ids": [True]}, "invalid_photo_id"),
        ({"photo_ids": [None]}, "invalid_photo_id"),
        ({"photo_ids": [0]}, "invalid_photo_id"),
        ({"photo_ids": [-1]}, "invalid_photo_id"),
        ({"photo_ids": [2**80]}, "invalid_photo_id"),
        ({"photo_ids": []}, "invalid_photo_ids"),
        ({"photo_ids": 1001}, "invalid_photo_ids"),
        ({"photo_ids": list(range(1, 102))}, "too_many_photo_ids"),
        ({"photo_ids": [1], "ttl": -5}, "invalid_ttl"),
        ({"photo_ids": [1], "ttl": 0}, "invalid_ttl"),
        ({"photo_ids": [1], "ttl": 10**12}, "ttl_too_long"),
        ({"photo_ids": [1], "ttl": "60"}, "invalid_ttl"),
        ({"photo_ids": [1], "ttl": 60.5}, "invalid_ttl"),
        ({"photo_ids": [1], "expire": 1292438117}, "invalid_expire"),
        ({"photo_ids": [1], "expire": 10**15}, "ttl_too_long"),
        ({"photo_ids": [1], "ttl": 60, "expire": 10**10}, "ttl_and_expire"),
        ({"photo_ids": [1], "tll": 60}, "unknown_field"),
        ([1, 2], "invalid_body"),
        ("photo_ids", "invalid_body"),
    ],
)
def test_hostile_bodies(client: FlaskClient, devsite: Devsite, body: Any, code: str) -> None:
    response = mint(client, body)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == code
    assert devsite.calls() == []


def test_transport_errors(client: FlaskClient, devsite: Devsite) -> None:
    auth = {"Authorization": f"Bearer {CMS_KEY}"}
    url = "/api/v1/sites/demo/tokens"
    wrong_type = client.post(
        url, data='{"photo_ids": [1]}', headers={**auth, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    broken = client.post(
        url, data='{"photo_ids": [1', headers={**auth, "Content-Type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json["error"]["code"] == "invalid_json"
    huge = client.post(
        url,
        data='{"photo_ids": [' + "1," * 40000 + "1]}",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413 and "error" in huge.json
    assert devsite.calls() == []


def test_the_mint_path_answers_like_every_endpoint(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mint endpoint runs in front of Flask; its edges still answer as Flask's do."""
    url = "/api/v1/sites/demo/tokens"
    auth = {"Authorization": f"Bearer {CMS_KEY}"}
    wrong_method = client.get(url, headers=auth)
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
    assert wrong_method.json["error"]["code"] == "method_not_allowed"
    assert wrong_method.headers["X-Request-Id"] and wrong_method.headers["Cache-Control"]
    assert client.post(url + "/", json={"photo_ids": [1001]}, headers=auth).status_code == 404
    assert client.post("/api/v1/sites/demo/x/tokens", headers=auth).status_code == 404
    bad_length = client.post(
        url,
        data=b"{}",
        headers={**auth, "Content-Type": "application/json"},
        environ_overrides={"CONTENT_LENGTH": "x"},
    )
    assert bad_length.status_code == 400
    assert bad_length.json["error"]["code"] == "invalid_content_length"
    charset = client.post(
        url,
        data=b'{"photo_ids": [1001]}',
        headers={**auth, "Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert charset.status_code == 200 and charset.headers["Content-Type"] == "application/json"

    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(app.extensions["gateway.runtime"].minters["demo"], "mint", broken)
    failed = mint(client, {"photo_ids": [1001]})
    assert failed.status_code == 500 and failed.json["error"]["code"] == "internal_error"
    assert "a bug" not in failed.get_data(as_text=True)
    metrics_text = client.get("/metrics").get_data(as_text=True)
    assert 'endpoint="/api/v1/sites/<site_name>/tokens",method="GET",status="405"' in metrics_text


def test_authentication_and_authorization(client: FlaskClient, devsite: Devsite) -> None:
    body = {"photo_ids": [1001]}
    missing = client.post("/api/v1/sites/demo/tokens", json=body)
    assert missing.status_code == 401 and missing.json["error"]["code"] == "missing_api_key"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert mint(client, body, key="nope").status_code == 401
    assert mint(client, body, key=CMS_KEY + "x").status_code == 401
    basic = client.post(
        "/api/v1/sites/demo/tokens", json=body, headers={"Authorization": f"Basic {CMS_KEY}"}
    )
    assert basic.status_code == 401
    assert mint(client, body, key=SHOP_KEY).status_code == 403  # shop may only mint for other
    assert mint(client, body, site="elsewhere").status_code == 404
    unauthenticated_unknown_site = client.post("/api/v1/sites/elsewhere/tokens", json=body)
    assert unauthenticated_unknown_site.status_code == 401  # no site enumeration without a key
    assert devsite.calls() == []


def test_rate_limit_per_key(client: FlaskClient) -> None:
    assert mint(client, {"photo_ids": [1001]}, key=SHOP_KEY, site="other").status_code == 200
    limited = mint(client, {"photo_ids": [1001]}, key=SHOP_KEY, site="other")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_ttl_is_capped_by_the_keys_max_ttl(client: FlaskClient) -> None:
    now = int(time.time())
    item = mint(client, {"photo_ids": [1001], "ttl": 86400}).json["tokens"][0]
    assert now + 7200 <= item["expire"] <= now + 7202
    item = mint(client, {"photo_ids": [1001], "expire": now + 80000}).json["tokens"][0]
    assert item["expire"] <= now + 7202


def test_expire_bucket_makes_links_identical(devsite: Devsite) -> None:
    client = create_app(_settings(devsite, expire_bucket=300)).test_client()
    first = mint(client, {"photo_ids": [1001], "ttl": 600}).json["tokens"][0]
    second = mint(client, {"photo_ids": [1001], "ttl": 600}).json["tokens"][0]
    assert first["expire"] % 300 == 0 and first == second


@pytest.mark.parametrize(("mode", "status"), [("down", 502), ("garbage", 502), ("hang", 504)])
def test_upstream_failures(client: FlaskClient, devsite: Devsite, mode: str, status: int) -> None:
    devsite.mode(mode, seconds=3)
    started = time.monotonic()
    response = mint(client, {"photo_ids": [1001, 1002]})
    assert response.status_code == status
    assert response.json["error"]["code"].startswith("upstream_")
    assert time.monotonic() - started < 15
    devsite.mode("ok")
    assert mint(client, {"photo_ids": [1001]}).status_code == 200  # and then it works again


def test_audit_line_without_the_token(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.audit"):
        item = mint(client, {"photo_ids": [1001, 999999]}).json["tokens"][0]
    (record,) = [r for r in caplog.records if r.name == "gateway.audit"]
    assert record.__dict__["api_key"] == "cms" and record.__dict__["site"] == "demo"
    assert record.__dict__["photo_ids"] == [1001] and record.__dict__["refused"] == [999999]
    assert record.__dict__["expire"] == item["expire"]
    assert item["token"] not in str(record.__dict__) and item["token"][:40] not in caplog.text


def test_the_prepared_json_is_the_item_encoded() -> None:
    info = PhotoInfo(
        photo_id=1002,
        tree_id=77,
        token="abcDEF_-09",
        protected_token="",
        published=True,
        files={"video_hd": "clip.mp4", "video_original": ""},
        still="large",
    )
    ready = Mintable("https://video.example.com", info)
    for expire in (1, 1796156116, 10**11):
        assert ready.item_json(expire) == orjson.dumps(ready.item(expire)).decode()
