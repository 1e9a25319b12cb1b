"""A world for the video-access features: an emulated site with a catalogue of over a thousand
videos (lengths, channels, tags) over several pages, and a gateway that syncs it, on one
instance or on two sharing Redis behind nginx."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests

from gateway.devsite import DevsiteOptions, create_devsite
from gateway.devsite.catalog import BOARD_ALBUM, Photo, demo_photos, generated_photos
from gateway.passwords import hash_password
from gateway.web.pingback import REPEAT_WINDOW
from tests.cluster import Gateway, start_gateway
from tests.helpers import Devsite, first_sync, free_port, make_settings, site_table

PASSWORD = "catalogue world password"
GENERATED = 1200
VERY_LONG = 5001  # a ten-hour video: its playback-long token hits visitor_ttl_max
KEYS = {name: f"{name}-key-0123456789abcdef" for name in ("cms", "strict", "tiny")}
COLD_BUDGET = 150  # the "tiny" key's cold_lookups_per_minute


def catalogue_photos() -> list[Photo]:
    return [
        *demo_photos(),
        *generated_photos(GENERATED),
        Photo(VERY_LONG, 7003, "All-day conference", video_length=36000),
    ]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class CatalogueWorld:
    gateway: str
    devsite: Devsite
    served: Gateway
    videos: int  # how many the emulated site lists
    last_pingback: float = 0.0  # monotonic time of the world's last pingback

    def catalogue(self, instance: int = 0) -> Any:
        return self.served.apps[instance].extensions["gateway.runtime"].catalogues["videos"]

    def calls(self, method: str = "photo/list") -> list[dict[str, Any]]:
        return [c for c in self.devsite.calls() if c.get("method") == method]

    def forget_first_levels(self) -> None:
        """Every worker forgets what it has seen: the next mint of any video is its first."""
        for app in self.served.apps:
            for cache in app.extensions["gateway.runtime"].caches.values():
                cache.forget_all()
            for minter in app.extensions["gateway.runtime"].minters.values():
                minter._mintables.clear()

    def resync(self) -> None:
        """The emulated site as it started, synced again, nothing remembered elsewhere. A
        pingback repeated within a second re-reads its video once more a second later: that
        re-read lands before the site is restored, not in the next test's call count."""
        settle = self.last_pingback + REPEAT_WINDOW + 0.3 - time.monotonic()
        if settle > 0:
            time.sleep(settle)
        self.devsite.reset()
        assert self.catalogue().sync(force=True)
        self.forget_first_levels()
        for app in self.served.apps:  # readiness checks made while 23 was made to fail
            app.extensions["gateway.runtime"].readiness._results.clear()
        self.devsite.reset()

    def mint(self, body: dict[str, Any], key: str = "cms", site: str = "videos") -> Any:
        return requests.post(
            f"{self.gateway}/api/v1/sites/{site}/tokens",
            json=body,
            headers={"Authorization": f"Bearer {KEYS[key]}"},
            timeout=30,
        )

    def pingback(self, photo_id: int) -> None:
        self.last_pingback = time.monotonic()
        response = requests.post(
            f"{self.gateway}/pingback/videos",
            data={"type": "photo", "photo_id": photo_id},
            timeout=30,
        )
        assert response.status_code == 200, response.text


def running_catalogue_world(topology: str, redis_url: str = "") -> Iterator[CatalogueWorld]:
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    photos = catalogue_photos()
    devsite = Devsite(
        create_devsite(
            DevsiteOptions(remote_login_url=f"{gateway}/sso/videos/login", photos=photos)
        )
    )
    password_hash = hash_password(PASSWORD)
    users = [
        {"email": "ada@example.com", "name": "Ada", "groups": ["board"]},
        {"email": "carol@example.com", "name": "Carol", "groups": ["staff"]},
        {"email": "bob@example.org", "name": "Bob", "groups": ["board"]},
    ]
    rules = [
        {"album_id": BOARD_ALBUM, "allow_groups": ["board"]},
        {"tag": "premium", "allow_email_domains": ["example.com"]},
    ]
    keys = {
        "cms": {"key_sha256": _digest(KEYS["cms"]), "sites": ["videos", "ondemand"]},
        "strict": {
            "key_sha256": _digest(KEYS["strict"]),
            "sites": ["videos"],
            "enforce_rules": True,
        },
        "tiny": {
            "key_sha256": _digest(KEYS["tiny"]),
            "sites": ["ondemand"],
            "cold_lookups_per_minute": COLD_BUDGET,
        },
    }
    build = lambda store: make_settings(  # noqa: E731
        {
            "videos": site_table(devsite.url, identity="team", catalogue="sync", rules=rules),
            "ondemand": site_table(devsite.url, identity="team"),
            "bucketed": site_table(devsite.url, identity="team", expire_bucket=600),
        },
        gateway={"public_url": gateway, "trusted_proxies": ["127.0.0.1/32"]},
        identity={
            "team": {
                "type": "static",
                "users": [{**user, "password_hash": password_hash} for user in users],
            }
        },
        api_keys=keys,
        store=store,
        admin={"identity": "team", "allow_emails": ["ada@example.com"]},
    )
    served = start_gateway(topology, build, port, redis_url)
    world = CatalogueWorld(served.url, devsite, served, len(photos))
    first_sync(world.catalogue())
    yield world
    for app in served.apps:
        for catalogue in app.extensions["gateway.runtime"].catalogues.values():
            catalogue.stop()
    served.stop()
    devsite.stop()
