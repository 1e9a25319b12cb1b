"""Units of the video-access features: reading channels and tags, the rule settings, the
playback lifetime, the cold-lookup budget, and catalogue syncs against a listing that moves
or is too big (a scripted client: the HTTP paths are in test_catalogue.py)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import TooManyRequests
from gateway.identity.base import Identity
from gateway.loader import parse_settings
from gateway.policy import rules_decision
from gateway.ratelimit import RateLimiter
from gateway.settings import ConfigError
from gateway.store import MemoryStore
from gateway.twentythree import catalogue as catalogue_module
from gateway.twentythree.cache import Missing, album_ids, tag_names
from gateway.twentythree.catalogue import Catalogue
from gateway.twentythree.client import ApiResponse
from gateway.twentythree.minting import covering_playback
from tests.helpers import make_settings, site_settings, site_table


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"album_id": "12", "all_albums": "12 34"}, (12, 34)),
        ({"album_id": "12", "all_albums": "12,34,56"}, (12, 34, 56)),
        ({"all_albums": ["7", 8]}, (7, 8)),
        ({"album_id": ""}, ()),
        ({"album_id": "0"}, ()),
        ({}, ()),
    ],
)
def test_album_ids(obj: dict[str, Any], expected: tuple[int, ...]) -> None:
    assert album_ids(obj) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["Board", "premium"], ("board", "premium")),
        ([{"tag": "Board", "count": "2"}], ("board",)),
        ("board premium", ("board", "premium")),
        ([], ()),
        (None, ()),
        ([1, {"x": 1}, " "], ()),
    ],
)
def test_tag_names(value: Any, expected: tuple[str, ...]) -> None:
    assert tag_names(value) == expected


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"allow_groups": ["x"]}, "give album_id or tag"),
        ({"album_id": 1, "tag": "x", "allow_groups": ["x"]}, "give album_id or tag"),
        ({"album_id": 1}, "give allow_groups, allow_email_domains or require_entitlement"),
        ({"album_id": 0, "allow_groups": ["x"]}, "must be at least 1"),
        ({"tag": "x", "allow_group": ["x"]}, "did you mean `allow_groups`"),
    ],
)
def test_rule_settings_are_checked(rule: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_settings({"a": site_table("http://127.0.0.1:9", rules=[rule])})
    assert any(p.startswith("sites.a.rules[0]") and problem in p for p in caught.value.problems)


def test_site_lifetimes_and_catalogue_ages_are_checked() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(
            {
                "gateway": {"public_url": "http://127.0.0.1:1", "secret_key": "x" * 32},
                "sites": {
                    "a": site_table("http://127.0.0.1:9", visitor_ttl=7200, visitor_ttl_max=3600),
                    "b": site_table(
                        "http://127.0.0.1:9",
                        catalogue="sync",
                        catalogue_refresh=900,
                        catalogue_max_age=600,
                    ),
                    "c": site_table("http://127.0.0.1:9", catalogue="nightly"),
                },
            },
            env={},
        )
    problems = caught.value.problems
    assert "sites.a: visitor_ttl must not exceed visitor_ttl_max" in problems
    assert any(p.startswith("sites.b: catalogue_max_age must exceed") for p in problems)
    assert "sites.c.catalogue: must be one of 'sync', 'on_demand'" in problems


def test_covering_playback() -> None:
    assert covering_playback(3600, 95, 43200) == 3600
    assert covering_playback(3600, 5400, 43200) == 11400
    assert covering_playback(3600, 36000, 43200) == 43200
    assert covering_playback(600, 0, 86400) == 600


def test_rules_without_a_visitor_refuse_covered_videos_only() -> None:
    site = site_settings(
        "s", "http://127.0.0.1:9", rules=[{"tag": "board", "allow_groups": ["board"]}]
    )
    assert rules_decision(site, None, (), ("news",)).allowed
    assert rules_decision(site, None, (), ("board",)).code == "forbidden_by_rule"
    member = Identity("a@example.com", groups=("board",))
    assert rules_decision(site, member, (), ("board",)).allowed
    assert rules_decision(site, Identity("b@example.com"), (), ("board",)).code == (
        "group_not_allowed"
    )


def test_rules_requiring_an_entitlement_ask_the_store() -> None:
    site = site_settings(
        "s", "http://127.0.0.1:9", rules=[{"album_id": 5, "require_entitlement": "gold"}]
    )
    visitor = Identity("a@example.com")
    standings = {"a@example.com": "lapsed"}
    lookup = lambda person, product: standings.get(person.email, "none")  # noqa: E731
    assert rules_decision(site, visitor, (5,), (), lookup).code == "subscription_lapsed"
    standings["a@example.com"] = "active"
    assert rules_decision(site, visitor, (5,), (), lookup).allowed
    assert rules_decision(site, visitor, (6,), (), None).allowed  # not covered
    assert rules_decision(site, visitor, (5,), (), None).code == "entitlement_required"


def test_a_refused_spend_gives_its_amount_back() -> None:
    limiter = RateLimiter(MemoryStore())
    now = 60 * 16_667 + 20.0  # 20 s into a minute
    limiter.spend("k", 100, 150, "m", "c", now=now)
    with pytest.raises(TooManyRequests) as caught:
        limiter.spend("k", 100, 150, "m", "c", now=now)
    assert caught.value.retry_after == 40 and caught.value.code == "c"
    limiter.spend("k", 50, 150, "m", "c", now=now)  # what was left is still there
    with pytest.raises(TooManyRequests):
        limiter.spend("k", 1, 150, "m", "c", now=now)
    limiter.spend("k", 150, 150, "m", "c", now=now + 60)  # a new minute
    limiter.spend("k", 10**6, 0, "m", "c", now=now)  # 0 = unlimited


# ---------------------------------------------------------------- scripted listings


def _photo(photo_id: int) -> dict[str, Any]:
    return {
        "photo_id": str(photo_id),
        "tree_id": "1",
        "token": f"t{photo_id}",
        "video_length": "10",
        "large_download": f"/1/{photo_id}/t{photo_id}/large",
    }


class ScriptedClient:
    """photo/list pages from a script: ``pages[p]`` is (ids, total_count)."""

    def __init__(self, pages: dict[int, tuple[list[int], int]]) -> None:
        self.pages = pages
        self.asked: list[int] = []

    def call(self, method: str, params: dict[str, Any]) -> ApiResponse:
        page = int(params["p"])
        self.asked.append(page)
        ids, total = self.pages[page]
        envelope = {"status": "ok", "photos": [_photo(i) for i in ids], "total_count": total}
        return ApiResponse(method, envelope)


def _catalogue(client: ScriptedClient) -> Catalogue:
    site = site_settings("s", "http://127.0.0.1:9", catalogue="sync")
    return Catalogue(site, client, MemoryStore(), fetch=lambda i: Missing(i))  # type: ignore[arg-type]


def test_a_listing_that_moves_during_the_sync_is_not_trusted_for_absences() -> None:
    # An upload between pages 1 and 2 shifts id 100 onto page 2 again (and the total grows).
    first = list(range(1, 101))
    client = ScriptedClient({1: (first, 150), 2: ([100, *range(101, 151)], 151)})
    catalogue = _catalogue(client)
    assert catalogue.sync(force=True)
    state = catalogue.state(fresh=True)
    assert not state.settled and state.videos == 150
    found, unresolved = catalogue.lookup([5, 999]) or ({}, [])
    assert 5 in found and unresolved == [999]  # absent, but 23 is asked rather than trusted
    assert catalogue.due_at(state) == state.synced_at + catalogue_module.UNSETTLED_RETRY


def test_a_settled_listing_answers_absences() -> None:
    client = ScriptedClient({1: (list(range(1, 101)), 130), 2: (list(range(101, 131)), 130)})
    catalogue = _catalogue(client)
    assert catalogue.sync(force=True) and client.asked == [1, 2]
    found, unresolved = catalogue.lookup([5, 999]) or ({}, [])
    assert isinstance(found[999], Missing) and unresolved == []


def test_a_catalogue_too_big_for_the_store_stays_on_demand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(catalogue_module, "MAX_VIDEOS", 150)
    pages = {p: (list(range(p * 100 - 99, p * 100 + 1)), 300) for p in (1, 2, 3)}
    catalogue = _catalogue(ScriptedClient(pages))
    assert not catalogue.sync(force=True)
    state = catalogue.state(fresh=True)
    assert state.version == 0 and state.error == "catalogue_too_large"
    assert catalogue.lookup([1]) is None  # no catalogue: lookups go to 23 per id


def test_a_listing_that_ignores_the_page_number_ends() -> None:
    """A site answering page 1 for every p (and no total) must not keep the sync going."""
    client = ScriptedClient({p: (list(range(1, 101)), None) for p in range(1, 10)})  # type: ignore[misc]
    catalogue = _catalogue(client)
    assert catalogue.sync(force=True)
    assert client.asked == [1, 2]
    state = catalogue.state(fresh=True)
    assert state.videos == 100 and not state.settled  # absences are not trusted then


def test_an_unreadable_video_makes_absences_unsure() -> None:
    client = ScriptedClient({1: ([1, 2, 3], 4)})
    original = client.call

    def with_a_bad_one(method: str, params: dict[str, Any]) -> ApiResponse:
        response = original(method, params)
        photos = [*response.envelope["photos"], {"photo_id": "4", "token": "t4"}]  # no tree id
        return ApiResponse(method, {**response.envelope, "photos": photos})

    client.call = with_a_bad_one  # type: ignore[method-assign]
    catalogue = _catalogue(client)
    assert catalogue.sync(force=True)
    found, unresolved = catalogue.lookup([1, 4]) or ({}, [])
    assert 1 in found and unresolved == [4]  # 23 is asked about the one it could not read


# ---------------------------------------------------------------- red team of the /api/2 work


def test_a_video_lost_between_two_pages_is_asked_of_23_not_called_missing() -> None:
    """One video deleted and one uploaded while the listing is read: the total stays the same
    and the count of ids read matches it, yet one real video was skipped. An id the previous
    version listed is asked of 23 before it is called missing."""
    client = ScriptedClient({1: ([1, 2, 3], 3)})
    catalogue = _catalogue(client)
    assert catalogue.sync(force=True)
    client.pages = {1: ([1, 3, 4], 3)}  # 2 skipped by a shifting page, 4 uploaded meanwhile
    assert catalogue.sync(force=True)
    state = catalogue.state(fresh=True)
    assert state.settled and state.previous
    found, unresolved = catalogue.lookup([2, 4, 999]) or ({}, [])
    assert unresolved == [2] and isinstance(found[999], Missing) and 4 in found
    client.pages = {1: ([1, 3, 4], 3)}
    assert catalogue.sync(force=True)  # two clean reads without it: now it is gone
    found, unresolved = catalogue.lookup([2]) or ({}, [])
    assert isinstance(found[2], Missing) and unresolved == []


def test_a_listing_without_a_total_is_never_settled() -> None:
    """23 echoes the size it was asked (100) but serves 50 and no total: "a short page" would
    end the listing after page 1, so absences from it are not believed."""
    client = ScriptedClient({1: (list(range(1, 51)), None)})  # type: ignore[dict-item]
    catalogue = _catalogue(client)
    assert catalogue.sync(force=True)
    assert not catalogue.state(fresh=True).settled
    _, unresolved = catalogue.lookup([77]) or ({}, [])
    assert unresolved == [77]


def test_an_id_23_refuses_does_not_make_23_count_as_failing() -> None:
    """Attack: a pingback for an id 23 answers 400 set "23 is failing" for a minute, and the
    real pingbacks over budget then marked nothing: visitors kept stale facts. A refusal is
    not an outage; a listed video whose re-read 23 refuses is "ask 23 on use"."""
    from gateway.errors import UpstreamRejected

    def refuse(photo_id: int) -> Any:
        raise UpstreamRejected("invalid_input", "too long")

    client = ScriptedClient({1: ([1, 2, 3], 3)})
    site = site_settings("s", "http://127.0.0.1:9", catalogue="sync")
    catalogue = Catalogue(site, client, MemoryStore(), fetch=refuse)  # type: ignore[arg-type]
    assert catalogue.sync(force=True)
    catalogue.refresh(10**15)  # not listed: 23 refuses it
    assert not catalogue._failing()
    catalogue.refresh(2)  # listed, and 23 refuses the re-read
    _found, unresolved = catalogue.lookup([2]) or ({}, [])
    assert unresolved == [2]
