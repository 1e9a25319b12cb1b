"""Photo facts from 23's loosely typed photo objects, and the cache shared across instances."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import time
from typing import Any

import pytest
import redis

from gateway import create_app
from gateway.errors import UpstreamBadResponse
from gateway.runtime import GatewayRuntime
from gateway.store import open_store
from gateway.twentythree.cache import PhotoInfo
from tests.helpers import Devsite, make_settings, site_table

KEY = "cache-test-key-0123456789"


def test_photo_info_from_a_legacy_photo_object() -> None:
    info = PhotoInfo.from_api(
        {
            "photo_id": "11623454",
            "tree_id": "10820441",
            "token": "5622160c758c5d18423d31153458b5f7",
            "published_p": 1,
            "protected_p": 0,
            "original_filename": "/srv/x.mov",
            "video_hd_download": "/10820441/11623454/5622160c758c5d18423d31153458b5f7/video_hd/"
            "example-video.mp4",
            "video_4k_download": "",
            "video_original_download": "/10820441/11623454/t/video_original",
            "portrait_download": "/10820441/11623454/t/portrait",
            "large_download": "/x/y/z/large",
        }
    )
    assert info.photo_id == 11623454 and info.tree_id == 10820441
    assert info.files == {"video_hd": "example-video.mp4", "video_original": ""}
    assert info.still == "large" and info.published and info.protected_token == ""
    assert "original_filename" not in str(info.to_json())
    assert PhotoInfo.from_json(info.to_json()) == info


def test_tree_id_from_the_download_paths_when_absent() -> None:
    info = PhotoInfo.from_api(
        {"photo_id": 5, "token": "abc", "published_p": "f", "medium_download": "/77/5/abc/medium"}
    )
    assert info.tree_id == 77 and not info.published and info.still == "medium"


@pytest.mark.parametrize(
    "obj",
    [
        {"photo_id": 5, "tree_id": 1},
        {"photo_id": "x", "tree_id": 1, "token": "abc"},
        {"photo_id": 5, "tree_id": 1, "token": "a/b"},
        {"photo_id": 5, "token": "abc"},
    ],
)
def test_unusable_photo_objects(obj: dict[str, Any]) -> None:
    with pytest.raises(UpstreamBadResponse):
        PhotoInfo.from_api(obj)


def test_hostile_file_names_are_dropped() -> None:
    info = PhotoInfo.from_api(
        {
            "photo_id": 5,
            "tree_id": 1,
            "token": "abc",
            "video_hd_download": "/1/5/abc/video_hd/a b<script>.mp4",
            "Video-HD_download": "/1/5/abc/x/y",
        }
    )
    assert info.files == {"video_hd": ""}


def _two_instances(devsite: Devsite, redis_url: str) -> tuple[Any, Any]:
    redis.Redis.from_url(redis_url).flushdb()
    settings = make_settings(
        {"demo": site_table(devsite.url)},
        store={"url": redis_url},
        api_keys={
            "cms": {"key_sha256": hashlib.sha256(KEY.encode()).hexdigest(), "sites": ["demo"]}
        },
    )
    return create_app(settings).test_client(), create_app(settings).test_client()


def _mint(client: Any, photo_id: int = 1001) -> Any:
    return client.post(
        "/api/v1/sites/demo/tokens",
        json={"photo_ids": [photo_id]},
        headers={"Authorization": f"Bearer {KEY}"},
    )


def _photo_calls(devsite: Devsite) -> int:
    return sum(1 for c in devsite.calls() if c["method"] == "photo/list")


def test_redis_shares_the_cache_and_pingbacks_between_instances(
    devsite: Devsite, redis_url: str
) -> None:
    a, b = _two_instances(devsite, redis_url)
    assert _mint(a).status_code == 200
    assert _mint(b).status_code == 200
    assert _photo_calls(devsite) == 1  # b used what a fetched
    assert b.post("/pingback/demo?type=photo&photo_id=1001").status_code == 200
    deadline = time.monotonic() + 1.0  # the promise: every worker knows within a second
    while _photo_calls(devsite) < 2 and time.monotonic() < deadline:
        assert _mint(a).status_code == 200
        time.sleep(0.02)
    assert _photo_calls(devsite) == 2  # a saw b's pingback: one re-read, no more
    assert _mint(a).status_code == 200 and _mint(b).status_code == 200
    assert _photo_calls(devsite) == 2


def test_single_flight_across_instances(devsite: Devsite, redis_url: str) -> None:
    a, b = _two_instances(devsite, redis_url)
    devsite.mode("slow", seconds=0.5)
    with cf.ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda i: _mint(a if i % 2 else b, 1002).status_code, range(20)))
    assert statuses == [200] * 20
    assert _photo_calls(devsite) == 1


def test_services_build_a_redis_store(devsite: Devsite, redis_url: str) -> None:
    settings = make_settings({"demo": site_table(devsite.url)}, store={"url": redis_url})
    assert type(GatewayRuntime.build(settings).store) is type(open_store(redis_url))


def test_a_request_that_joins_a_failing_fetch_fetches_again() -> None:
    """An earlier request's fetch, retrying against a 23 that has just recovered, fails: a
    request that joined it moments ago asks 23 itself rather than share that failure."""
    import threading

    from gateway.errors import UpstreamUnavailable
    from gateway.store import MemoryStore
    from gateway.twentythree.cache import PhotoCache
    from gateway.twentythree.client import ApiResponse

    joined = threading.Event()
    answers: list[str] = []

    class Flaky:
        calls = 0

        def call(self, method: str, params: dict[str, Any]) -> ApiResponse:
            self.calls += 1
            if self.calls == 1:  # the earlier request's fetch: fails once the other has joined
                joined.wait(5)
                time.sleep(0.2)
                raise UpstreamUnavailable("23 was down")
            photo = {
                "photo_id": "7",
                "tree_id": "1",
                "token": "t7",
                "large_download": "/1/7/t7/large",
            }
            return ApiResponse(method, {"status": "ok", "photos": [photo]})

    client = Flaky()
    cache = PhotoCache("s", client, MemoryStore())  # type: ignore[arg-type]
    with cf.ThreadPoolExecutor(2) as pool:
        first = pool.submit(cache.load, 7)
        time.sleep(0.05)
        second = pool.submit(cache.load, 7)
        time.sleep(0.05)
        joined.set()
        with pytest.raises(UpstreamUnavailable):
            first.result(5)
        answers.append(type(second.result(5)).__name__)
    assert answers == ["PhotoInfo"] and client.calls == 2
