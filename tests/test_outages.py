"""Outages degrade, they don't hang: Redis or the database going away and coming back, with
no restart. The dependency is cut with a TCP proxy (tests/tcp_proxy.py), the way a dead
server or a network partition looks to the gateway."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway import create_app
from gateway.entitlements import EntitlementStore, EntitlementStoreUnavailable, Grant
from gateway.store import RETRY_AFTER
from gateway.web.health import SITE_WAIT
from tests.helpers import Devsite, first_sync, make_settings, site_table
from tests.sso_world import PORTAL_AUDIENCE, PORTAL_ISSUER, PORTAL_SECRET, portal_identity
from tests.tcp_proxy import TcpProxy

KEY = "outage-key-0123456789abcdef"


def portal_token(email: str) -> str:
    import secrets

    from joserfc import jwt
    from joserfc.jwk import OctKey

    now = int(time.time())
    claims = {"iss": PORTAL_ISSUER, "aud": PORTAL_AUDIENCE, "email": email, "iat": now}
    claims |= {"exp": now + 300, "jti": secrets.token_hex(8)}
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(PORTAL_SECRET))


@pytest.fixture()
def redis_proxy(redis_url: str) -> Iterator[TcpProxy]:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = TcpProxy(port)
    yield proxy
    proxy.cut()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _gateway_on(devsite: Devsite, store: dict[str, Any], **sites: Any) -> Any:
    settings = make_settings(
        {"demo": site_table(devsite.url, identity="portal"), **sites},
        store=store,
        api_keys={
            "cms": {
                "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                "sites": ["demo", *sites],
            }
        },
        identity={"portal": portal_identity()},
    )
    return create_app(settings).test_client()


def _mint(client: Any, photo_id: int) -> Any:
    return client.post(
        "/api/v1/sites/demo/tokens",
        json={"photo_ids": [photo_id]},
        headers={"Authorization": f"Bearer {KEY}"},
    )


def _timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_redis_going_away_degrades_and_comes_back(
    devsite: Devsite, redis_proxy: TcpProxy, redis_url: str
) -> None:
    store_url = f"redis://127.0.0.1:{redis_proxy.port}/6"
    redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/6").flushdb()
    client = _gateway_on(devsite, {"url": store_url})
    direct = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 5
    while direct.pubsub_numsub("gw:photo-invalidations")[0][1] < 1:  # listening for pingbacks
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.1)  # ...and past its (re)connection's "forget everything"
    assert _mint(client, 1001).status_code == 200  # now in the first level
    assert client.get("/readyz").status_code == 200

    redis_proxy.cut()
    ready, took = _timed(lambda: client.get("/readyz"))
    assert ready.status_code == 503 and took < 1.0, took
    assert "store" in ready.json["failing"]
    assert {"name": "store", "ok": False}.items() <= ready.json["dependencies"][0].items()
    calls = len(devsite.calls())
    warm, took = _timed(lambda: _mint(client, 1001))
    assert warm.status_code == 200 and took < 0.5 and len(devsite.calls()) == calls  # no 23 call
    assert _mint(client, 1002).status_code == 200  # cold: straight from 23, no store
    login, took = _timed(
        lambda: client.get(
            f"/sso/demo/login?jwt={portal_token('ada@example.com')}",
            headers={"Accept": "application/json"},
        )
    )
    assert login.status_code == 503 and login.json["error"]["code"] == "store_unavailable"
    assert took < 1.0, took  # the JWT id cannot be marked used: refused at once, not hung

    redis_proxy.start()
    deadline = time.monotonic() + RETRY_AFTER + 3
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the store did not come back by itself"
        time.sleep(0.2)
    back = client.get(f"/sso/demo/login?jwt={portal_token('ada@example.com')}")
    assert back.status_code == 302 and "redeem-token" in back.headers["Location"]


def test_a_synced_catalogue_survives_redis_going_away(
    devsite: Devsite, redis_proxy: TcpProxy, redis_url: str
) -> None:
    """Mints keep working while Redis is cut (what a worker knows, then 23 per id), and the
    catalogue in Redis is used again, with no call to 23, once Redis is back."""
    store_url = f"redis://127.0.0.1:{redis_proxy.port}/7"
    redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/7").flushdb()
    sites = {"synced": site_table(devsite.url, identity="portal", catalogue="sync")}
    client = _gateway_on(devsite, {"url": store_url}, **sites)
    catalogue = client.application.extensions["gateway.runtime"].catalogues["synced"]
    first_sync(catalogue, 10)
    deadline = time.monotonic() + 10
    cache = client.application.extensions["gateway.runtime"].caches["synced"]
    direct = redis.Redis.from_url(redis_url)
    while direct.pubsub_numsub("gw:photo-invalidations")[0][1] < 1:  # listening for pingbacks
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.1)  # ...and past its (re)connection's "forget everything" (else a flake)

    def mint(photo_id: int) -> Any:
        return client.post(
            "/api/v1/sites/synced/tokens",
            json={"photo_ids": [photo_id]},
            headers={"Authorization": f"Bearer {KEY}"},
        )

    devsite.reset()
    assert mint(1001).status_code == 200 and devsite.calls() == []  # from the catalogue
    redis_proxy.cut()
    assert mint(1001).status_code == 200  # the worker's own first level
    cache.forget_all()
    assert mint(1002).status_code == 200  # no catalogue reachable: 23, once
    assert [c["params"].get("photo_id") for c in devsite.calls()] == ["1002"]
    redis_proxy.start()
    deadline = time.monotonic() + RETRY_AFTER + 3
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the store did not come back by itself"
        time.sleep(0.2)
    cache.forget_all()
    devsite.reset()
    assert mint(1005).status_code == 200 and devsite.calls() == []  # the catalogue again
    catalogue.stop()


# ---------------------------------------------------------------- the entitlement database


def _grant(ref: str, email: str) -> Grant:
    return Grant("stripe:gold", ref, email, "gold", "active", True, None)


def test_a_replaced_sqlite_file_is_read_again_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "entitlements.db"
    store = EntitlementStore(f"sqlite:///{path}")
    store.upgrade_schema()
    store.record(_grant("sub-1", "kept@example.com"))
    backup = tmp_path / "backup.db"
    shutil.copy(path, backup)
    store.record(_grant("sub-2", "later@example.com"))
    assert store.standing("later@example.com", "gold") == "active"
    os.replace(backup, path)  # a restore from last night's copy, under the running gateway
    assert store.standing("later@example.com", "gold") == "none"  # the file now in place
    assert store.standing("kept@example.com", "gold") == "active"


def test_a_missing_database_file_is_an_outage_then_recovers(
    devsite: Devsite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "entitlements.db"
    client = _gateway_on(
        devsite,
        {"database_url": f"sqlite:///{path}"},
        paid=site_table(devsite.url, identity="portal", require_entitlement="gold"),
    )
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert {"name": "database", "ok": True} in ready.json["dependencies"]
    moved = tmp_path / "moved.db"
    os.replace(path, moved)
    with caplog.at_level(logging.WARNING, logger="gateway"):
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "database" in ready.json["failing"]
        login = client.get(
            f"/sso/paid/login?jwt={portal_token('ada@example.com')}",
            headers={"Accept": "application/json"},
        )
    assert login.status_code == 503 and login.json["error"]["code"] == "entitlements_unavailable"
    causes = [r.__dict__ for r in caplog.records if r.getMessage() == "entitlement database failed"]
    assert causes and causes[0]["reason"] == "unable to open database file"
    assert not path.exists()  # an outage does not leave a new empty database behind
    os.replace(moved, path)
    assert client.get("/readyz").status_code == 200


def test_postgresql_going_away_and_back(postgres_url: str) -> None:
    port = int(postgres_url.split("@127.0.0.1:")[1].split("/")[0])
    proxy = TcpProxy(port)
    try:
        url = postgres_url.replace(f":{port}/", f":{proxy.port}/")
        store = EntitlementStore(url)
        store.upgrade_schema()
        assert store.problem() is None
        proxy.cut()
        with pytest.raises(EntitlementStoreUnavailable):
            store.standing("a@example.com", "gold")
        assert store.problem()
        proxy.start()
        assert store.standing("a@example.com", "gold") == "none"  # pre-ping replaced the pool
        assert store.problem() is None
        store.dispose()
    finally:
        proxy.cut()


@pytest.mark.parametrize("mode", ["down", "hang"])
def test_a_23_outage_leaves_the_instance_in_service_and_minting(
    devsite: Devsite, mode: str
) -> None:
    """Field report: /readyz answered 503 while 23 did not answer, so an outage shared by every
    pod emptied the Service and cached minting became unreachable. Now the instance stays
    ready (the site is "degraded"), every probe answers within SITE_WAIT, and a cached video
    mints; ?strict=1 still fails for dashboards."""
    client = _gateway_on(devsite, {})
    assert _mint(client, 1001).status_code == 200  # cached from here on
    devsite.mode(mode, seconds=30)
    try:
        states = set()
        deadline = time.monotonic() + 8  # longer than the 5 s a failed check is remembered
        while time.monotonic() < deadline:
            ready, took = _timed(lambda: client.get("/readyz"))
            assert ready.status_code == 200, ready.json
            assert took < SITE_WAIT + 0.5, took
            states.add(ready.json["status"])
            assert _mint(client, 1001).status_code == 200
            time.sleep(0.25)
        strict = client.get("/readyz?strict=1")
        assert strict.status_code == 503 and strict.json["failing"] == ["demo"]
        if mode == "down":  # a refused connection is known at once; a hang only after its timeout
            assert "degraded" in states
            assert 'gateway_upstream_up{site="demo"} 0.0' in client.get("/metrics").text
    finally:
        devsite.mode("ok")


def test_readyz_names_a_store_that_hangs_within_a_second(devsite: Devsite) -> None:
    """An address that never answers (a dropped SYN): still an answer within a second."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(0)  # never accepts: once its backlog is full, every connect hangs
    filler = []
    while True:
        try:
            filler.append(socket.create_connection(silent.getsockname(), timeout=0.2))
        except OSError:
            break  # this one hung: so will the gateway's
    try:
        client = _gateway_on(devsite, {"url": f"redis://127.0.0.1:{silent.getsockname()[1]}/0"})
        ready, took = _timed(lambda: client.get("/readyz"))
        assert ready.status_code == 503 and "store" in ready.json["failing"]
        assert took < 1.0, took
    finally:
        for sock in filler:
            sock.close()
        silent.close()


def test_sqlite_module_is_the_one_python_ships() -> None:
    assert sqlite3.sqlite_version_info >= (3, 8)  # URI filenames (mode=rw) need 3.7.7
