"""A store that survives the death of its Redis primary: a primary, a replica and three
sentinels on loopback, the gateway on ``redis+sentinel://``, and the primary killed under
traffic. Warm mints go on from the first level, single-use flows answer 503 at once rather
than hang, everything works on the new primary within seconds, pub/sub follows it, and a
revoked session stays revoked."""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway import create_app
from tests.helpers import Devsite, free_port, make_settings, site_table
from tests.processes import end, spawn

KEY = "sentinel-test-key-0123456789"
STAFF = {"X-Email": "ada@example.com"}


def _redis(args: list[str]) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make test-deps`")
    return spawn([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _until(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    return False


@pytest.fixture()
def sentinels(tmp_path: Path) -> Iterator[dict[str, Any]]:
    primary, replica = free_port(), free_port()
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    procs = {"primary": _redis(["--port", str(primary), *common])}
    procs["replica"] = _redis(
        ["--port", str(replica), *common, "--replicaof", "127.0.0.1", str(primary)]
    )
    ports = [free_port() for _ in range(3)]
    for n, port in enumerate(ports):
        conf = tmp_path / f"sentinel-{n}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\n"
            f"sentinel monitor gw 127.0.0.1 {primary} 2\n"
            "sentinel down-after-milliseconds gw 1000\n"
            "sentinel failover-timeout gw 4000\n"
            "sentinel parallel-syncs gw 1\n"
        )
        procs[f"sentinel-{n}"] = _redis([str(conf), "--sentinel"])
    watcher = redis.Redis(port=ports[0], socket_timeout=1)
    replicated = redis.Redis(port=replica, socket_timeout=1)
    assert _until(lambda: replicated.info("replication")["master_link_status"] == "up", 15)
    assert _until(lambda: int(watcher.sentinel_master("gw")["num-other-sentinels"]) == 2, 15)
    assert _until(lambda: int(watcher.sentinel_master("gw")["num-slaves"]) == 1, 15)
    url = "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in ports) + "/gw/0"
    yield {"url": url, "procs": procs, "primary": primary, "replica": replica, "watcher": watcher}
    for proc in procs.values():
        end(proc)


def _gateway_on(sentinels: dict[str, Any], devsite: Devsite) -> Any:
    """A gateway on the sentinels: a proxy-header site, a paywall-JWT site, a mint key."""
    from tests.paywall_world import AUDIENCE, ISSUER, PAYWALL_SECRET

    paywall = {"type": "jwt", "issuer": ISSUER, "audience": AUDIENCE, "secret": PAYWALL_SECRET}
    key = {"key_sha256": hashlib.sha256(KEY.encode()).hexdigest(), "sites": ["demo"]}
    return create_app(
        make_settings(
            {
                "demo": site_table(devsite.url, identity="proxy"),
                "paid": site_table(devsite.url, identity="paywall"),
            },
            gateway={"trusted_proxies": ["127.0.0.1/32"]},
            identity={"proxy": {"type": "header", "email_header": "X-Email"}, "paywall": paywall},
            store={"url": sentinels["url"]},
            api_keys={"cms": key},
        )
    )


class WarmMints:
    """Mints of a cached video, in a loop on a thread of their own, counting any failure."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.minted = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def mint(self) -> int:
        auth = {"Authorization": f"Bearer {KEY}"}
        answer = self.client.post(
            "/api/v1/sites/demo/tokens", json={"photo_ids": [1001]}, headers=auth
        )
        return int(answer.status_code)

    def _loop(self) -> None:
        while not self._stop.is_set():
            status = self.mint()
            if status != 200:
                self.failures.append(str(status))
            self.minted += 1
            time.sleep(0.01)

    def __enter__(self) -> WarmMints:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _single_use_on_the_new_primary(app: Any, devsite: Devsite) -> None:
    """A paywall JWT (its jti is single-use state in the store) is taken once, then refused
    (a new visitor: a signed-in one would first be asked whether to switch)."""
    from tests.test_paywall import paywall_token

    client = app.test_client()
    login = f"/sso/paid/login?return_url={devsite.url}/&jwt={paywall_token('reader@example.com')}"
    assert client.get(login).status_code == 302
    again = client.get(login, headers={"Accept": "application/json"})
    assert (
        again.status_code == 401 and again.get_json()["error"]["code"] == "paywall_token_replayed"
    )


def test_the_store_follows_a_failover(sentinels: dict[str, Any], devsite: Devsite) -> None:
    app = _gateway_on(sentinels, devsite)
    store = app.extensions["gateway.runtime"].store
    heard: list[str] = []
    store.subscribe("failover-test", heard.append, lambda: None)
    client = app.test_client()
    store.set("session-revoked:copied-before-failover", 1, ttl=600)
    primary = redis.Redis(port=sentinels["primary"], socket_timeout=1)
    assert primary.execute_command("WAIT", 1, 2000) == 1  # the replica has it

    with WarmMints(client) as mints:
        assert mints.mint() == 200  # warm: the video is cached
        sentinels["procs"]["primary"].send_signal(signal.SIGKILL)
        started = time.monotonic()
        answer = client.get(
            f"/sso/demo/login?return_url={devsite.url}/",
            headers={**STAFF, "Accept": "application/json"},
        )
        assert answer.status_code in (302, 503)  # never a hang: 503 store_unavailable, or done
        if answer.status_code == 503:
            assert answer.get_json()["error"]["code"] == "store_unavailable"
        assert time.monotonic() - started < 5
        signs_in = f"/sso/demo/login?return_url={devsite.url}/"
        assert _until(lambda: client.get(signs_in, headers=STAFF).status_code == 302, 30)
    assert mints.failures == [] and mints.minted > 20  # warm mints never stopped
    promoted = sentinels["watcher"].sentinel_get_master_addr_by_name("gw")
    assert int(promoted[1]) == sentinels["replica"]
    assert client.get("/readyz").status_code == 200
    _single_use_on_the_new_primary(app, devsite)
    assert store.get("session-revoked:copied-before-failover") == 1  # revoked stays revoked
    assert _until(lambda: store.publish("failover-test", "after") is None and "after" in heard, 15)
