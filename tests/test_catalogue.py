"""The synced catalogue, over real HTTP against an emulated site of 1,200+ videos whose API
calls are counted: paging, mints that need no call, pingbacks, failures, readiness, metrics;
on one instance and on two sharing Redis behind nginx."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
import requests

from gateway.twentythree.catalogue import PAGE_SIZE
from gateway.web import pingback as pingback_module
from tests.catalogue_world import GENERATED, CatalogueWorld

FIRST_GENERATED = 2001
UNKNOWN = list(range(900_001, 900_101))  # ids the site has never had


@pytest.fixture(autouse=True)
def _fresh(catalogue_world: CatalogueWorld) -> None:
    catalogue_world.devsite.mode("ok")
    catalogue_world.devsite.reset()


def test_a_sync_pages_through_every_video_once(catalogue_world: CatalogueWorld) -> None:
    world = catalogue_world
    assert world.catalogue().sync(force=True)
    pages = world.devsite.photo_list_pages()
    expected = -(-world.videos // PAGE_SIZE)
    assert expected >= 10
    assert pages == list(range(1, expected + 1))  # none skipped, none twice, in order
    calls = world.calls()
    assert all(c["params"]["size"] == "100" for c in calls)
    assert all(c["params"]["include_unpublished_p"] == "1" for c in calls)
    state = world.catalogue().state(fresh=True)
    assert state.videos == world.videos and state.settled and state.failures == 0
    # Every instance reads the same catalogue.
    for instance in range(len(world.served.apps)):
        assert world.catalogue(instance).state(fresh=True).version == state.version


def test_one_process_syncs_at_a_time(catalogue_world: CatalogueWorld) -> None:
    world = catalogue_world
    catalogues = [world.catalogue(i) for i in range(len(world.served.apps))] * 2
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda c=c: results.append(c.sync(force=True))) for c in catalogues
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) >= 1
    pages = world.devsite.photo_list_pages()
    # Whoever did not get the lock did nothing; syncs that ran, ran one after the other.
    n = -(-world.videos // PAGE_SIZE)
    assert len(pages) == results.count(True) * n
    assert all(pages[i : i + n] == list(range(1, n + 1)) for i in range(0, len(pages), n))


def test_mints_after_a_sync_make_no_upstream_call(catalogue_world: CatalogueWorld) -> None:
    world = catalogue_world
    world.forget_first_levels()  # every video's first mint in every worker
    cold = list(range(FIRST_GENERATED, FIRST_GENERATED + 100))
    first = world.mint({"photo_ids": cold})
    assert first.status_code == 200
    assert all("token" in item for item in first.json()["tokens"])
    again = world.mint({"photo_ids": cold})  # warm
    assert again.status_code == 200
    for _ in range(5):  # five calls of 100 unknown ids: 500 signed calls before the catalogue
        unknown = world.mint({"photo_ids": UNKNOWN})
        assert unknown.status_code == 200
        assert {i["error"]["code"] for i in unknown.json()["tokens"]} == {"no_such_photo"}
    assert world.calls() == []
    # The catalogue holds unpublished videos too (the mint API mints them).
    assert "token" in world.mint({"photo_ids": [1003]}).json()["tokens"][0]
    assert world.calls() == []


def test_every_minted_url_opens_on_the_site(catalogue_world: CatalogueWorld) -> None:
    world = catalogue_world
    item = world.mint({"photo_ids": [FIRST_GENERATED + 7]}).json()["tokens"][0]
    for name in ("embed", "video", "thumbnail"):
        assert requests.get(item["urls"][name], timeout=15).status_code == 200, name


def test_a_pingback_re_reads_one_video(catalogue_world: CatalogueWorld) -> None:
    world = catalogue_world
    changed = FIRST_GENERATED + 4
    try:
        old = world.mint({"photo_ids": [changed]}).json()["tokens"][0]
        world.devsite.put_photo(changed, new_token=True, video_length=4000)
        assert requests.get(old["urls"]["embed"], timeout=15).status_code == 403  # re-tokened
        world.devsite.reset()
        world.pingback(changed)
        reread = world.calls()
        assert len(reread) == 1 and reread[0]["params"]["photo_id"] == str(changed)
        # Every instance now mints with the new token, without asking 23 again.
        for url in world.served.instances:
            item = requests.post(
                f"{url}/api/v1/sites/videos/tokens",
                json={"photo_ids": [changed], "ttl": 60, "cover_playback": True},
                headers={"Authorization": "Bearer cms-key-0123456789abcdef"},
                timeout=15,
            ).json()["tokens"][0]
            assert requests.get(item["urls"]["embed"], timeout=15).status_code == 200
            assert item["expire"] - time.time() > 2 * 4000  # the new length counts
        assert len(world.calls()) == 1

        # A new upload and a deletion, each announced by a pingback.
        world.devsite.put_photo(8001, title="Fresh upload", video_length=60)
        world.pingback(8001)
        world.devsite.delete_photo(changed)
        seen = len(world.calls())
        world.pingback(changed)  # again within a second: one re-read at the window's end
        # The other instance hears of the pingback over pub/sub, within milliseconds.
        deadline = time.monotonic() + 2 + pingback_module.REPEAT_WINDOW
        while True:
            items = world.mint({"photo_ids": [8001, changed]}).json()["tokens"]
            if "error" in items[1] or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert "token" in items[0]
        assert items[1]["error"]["code"] == "no_such_photo"
        assert [c["params"]["photo_id"] for c in world.calls()[seen:]] == [str(changed)]
    finally:
        world.resync()


def test_a_pingback_while_23_is_down_keeps_the_entry(catalogue_world: CatalogueWorld) -> None:
    """Red-team round 3: pingbacks are unsigned, and one that could not be re-read used to
    turn its entry into "ask 23 on use"; a burst of them during an outage did that to a whole
    catalogue. The entry is now kept until the next sync."""
    world = catalogue_world
    photo = FIRST_GENERATED + 11
    try:
        world.devsite.mode("down", seconds=60)
        world.pingback(photo)  # the pingback itself still succeeds
        world.devsite.mode("ok")
        world.devsite.reset()
        assert "token" in world.mint({"photo_ids": [photo]}).json()["tokens"][0]
        assert world.calls() == []  # from the catalogue: 23 is not asked
    finally:
        world.resync()


def test_a_failed_sync_keeps_the_last_good_catalogue(catalogue_world: CatalogueWorld) -> None:
    world = catalogue_world
    catalogue = world.catalogue()
    before = catalogue.state(fresh=True)
    try:
        world.devsite.mode("down", seconds=60)
        assert not catalogue.sync(force=True)
        failed = catalogue.state(fresh=True)
        assert failed.version == before.version and failed.failures == 1
        assert failed.error == "upstream_unavailable" and failed.building == 0
        assert 5 < failed.next_try - time.time() <= 11  # backoff, shared through the store
        assert catalogue.due_at(failed) == failed.next_try
        # 23 is down, yet every catalogued video is minted, and unknown ids are answered.
        world.forget_first_levels()
        items = world.mint({"photo_ids": [FIRST_GENERATED, UNKNOWN[0]]}).json()["tokens"]
        assert "token" in items[0] and items[1]["error"]["code"] == "no_such_photo"
        # 23 down: this instance still serves (degraded); only the strict probe fails.
        ready = requests.get(f"{world.gateway}/readyz", timeout=15)
        assert ready.status_code == 200 and ready.json()["status"] == "degraded", ready.text
        assert "videos" in ready.json()["degraded"]  # and the other sites on the same 23
        strict = requests.get(f"{world.gateway}/readyz?strict=1", timeout=15)
        assert strict.status_code == 503 and "videos" in strict.json()["failing"]
        assert not catalogue.sync(force=True)
        assert catalogue.state(fresh=True).failures == 2
        assert catalogue.state().next_try - time.time() > 15  # the backoff grows
    finally:
        world.devsite.mode("ok")
        world.resync()
    assert catalogue.state(fresh=True).failures == 0


def test_readyz_while_the_catalogue_is_fresh_enough(catalogue_world: CatalogueWorld) -> None:
    world = catalogue_world
    catalogue = world.catalogue()
    state = catalogue.state(fresh=True)
    site = catalogue.site
    # As after syncs that kept failing: the next try is far off (so no loop heals it meanwhile).
    failing_since = dataclasses.replace(state, failures=3, error="x", next_try=time.time() + 3600)
    try:
        # Older than catalogue_refresh (a sync is due) but within catalogue_max_age: ready.
        stale = state.synced_at - site.catalogue_refresh - 60
        catalogue._save(dataclasses.replace(failing_since, synced_at=stale))
        ready = requests.get(f"{world.gateway}/readyz", timeout=15)
        assert ready.status_code == 200, ready.text
        assert ready.json()["catalogues"][0]["ok"] is True
        # Beyond catalogue_max_age: not ready, and no longer used (23 answers per id).
        too_old = time.time() - site.catalogue_max_age - 1
        catalogue._save(dataclasses.replace(failing_since, synced_at=too_old))
        time.sleep(2.1)  # the other instance's copy of the state expires
        degraded = requests.get(f"{world.gateway}/readyz", timeout=15)
        assert degraded.status_code == 200 and degraded.json()["degraded"] == ["videos"]
        failing = requests.get(f"{world.gateway}/readyz?strict=1", timeout=15)
        assert failing.status_code == 503
        body = failing.json()
        assert body["failing"] == ["videos"]
        assert body["catalogues"][0]["code"] == "catalogue_stale"
        world.forget_first_levels()
        world.devsite.reset()
        assert "token" in world.mint({"photo_ids": [FIRST_GENERATED + 20]}).json()["tokens"][0]
        assert len(world.calls()) == 1
    finally:
        world.resync()
    assert requests.get(f"{world.gateway}/readyz", timeout=15).status_code == 200


def test_catalogue_metrics(catalogue_world: CatalogueWorld) -> None:
    text = requests.get(f"{catalogue_world.gateway}/metrics", timeout=15).text
    assert f'gateway_catalogue_videos{{site="videos"}} {float(catalogue_world.videos)}' in text
    assert 'gateway_catalogue_age_seconds{site="videos"}' in text
    assert 'gateway_catalogue_sync_seconds{site="videos"}' in text
    assert 'gateway_catalogue_sync_failures{site="videos"} 0.0' in text


def test_the_console_shows_the_catalogue(catalogue_world: CatalogueWorld) -> None:
    from tests.catalogue_world import PASSWORD
    from tests.formclient import FormClient

    browser = FormClient()
    form = browser.get(f"{catalogue_world.gateway}/admin", timeout=15)
    done = browser.submit(form, email="ada@example.com", password=PASSWORD)
    assert done.status_code == 200, done.text[:300]
    overview = browser.get(f"{catalogue_world.gateway}/admin", timeout=15).text
    assert "catalogue videos" in overview
    assert f"{catalogue_world.videos} videos, synced" in overview


def test_the_generated_catalogue_is_varied(catalogue_world: CatalogueWorld) -> None:
    """The emulated catalogue has what the features read: lengths, several channels, tags."""
    photos = catalogue_world.devsite.photos.values()
    assert len(photos) > GENERATED
    assert len({p.video_length for p in photos}) > 100
    assert len({a for p in photos for a in p.albums}) >= 2
    assert {"premium", "generated"} <= {t for p in photos for t in p.tags}


def test_a_burst_of_pingbacks_for_one_video_costs_one_re_read_and_one_more(
    catalogue_world: CatalogueWorld,
) -> None:
    """Without a pingback_key anyone can post pingbacks: fifteen for one video within a
    second cost one re-read at once and one at the end of that second (so a change made
    between them still lands), not fifteen."""
    world = catalogue_world
    video = FIRST_GENERATED + 9
    try:
        world.devsite.reset()
        started = time.monotonic()
        for _ in range(15):
            world.pingback(video)
        assert time.monotonic() - started < pingback_module.REPEAT_WINDOW
        assert len(world.calls()) == 1
        world.devsite.put_photo(video, video_length=4321)  # changed after the first re-read
        time.sleep(pingback_module.REPEAT_WINDOW + 0.5)
        assert [c["params"]["photo_id"] for c in world.calls()] == [str(video)] * 2
        world.forget_first_levels()
        (item,) = world.mint({"photo_ids": [video], "ttl": 60, "cover_playback": True}).json()[
            "tokens"
        ]
        assert item["expire"] - time.time() > 2 * 4321  # the change made between them counts
    finally:
        world.resync()
