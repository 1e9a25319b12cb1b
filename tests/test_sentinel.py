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


def test_the_store_follows_a_failover(sentinels: dict[str, Any], devsite: Devsite) -> None:
    site = site_table(devsite.url, identity="proxy")
    app = create_app(
        make_settings(
            {"demo": site},
            gateway={"trusted_proxies": ["127.0.0.1/32"]},
            identity={"proxy": {"type": "header", "email_header": "X-Email"}},
            store={"url": sentinels["url"]},
            api_keys={
                "cms": {"key_sha256": hashlib.sha256(KEY.encode()).hexdigest(), "sites": ["demo"]}
            },
        )
    )
    runtime = app.extensions["gateway.runtime"]
    store = runtime.store
    heard: list[str] = []
    store.subscribe("failover-test", heard.append, lambda: None)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {KEY}"}
    assert (
        client.post(
            "/api/v1/sites/demo/tokens", json={"photo_ids": [1001]}, headers=auth
        ).status_code
        == 200
    )
    store.set("session-revoked:copied-before-failover", 1, ttl=600)
    primary = redis.Redis(port=sentinels["primary"], socket_timeout=1)
    assert primary.execute_command("WAIT", 1, 2000) == 1  # the replica has it

    failures: list[str] = []
    minted = [0]
    stop = threading.Event()

    def warm_mints() -> None:
        while not stop.is_set():
            answer = client.post(
                "/api/v1/sites/demo/tokens", json={"photo_ids": [1001]}, headers=auth
            )
            if answer.status_code != 200:
                failures.append(str(answer.status_code))
            minted[0] += 1
            time.sleep(0.01)

    traffic = threading.Thread(target=warm_mints, daemon=True)
    traffic.start()
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

    def signs_in() -> bool:
        again = client.get(f"/sso/demo/login?return_url={devsite.url}/", headers=STAFF)
        return again.status_code == 302

    assert _until(signs_in, 30), "no sign-in on the new primary"
    stop.set()
    traffic.join(timeout=10)
    assert failures == [] and minted[0] > 20  # warm mints never stopped
    promoted = sentinels["watcher"].sentinel_get_master_addr_by_name("gw")
    assert int(promoted[1]) == sentinels["replica"]
    assert store.get("session-revoked:copied-before-failover") == 1  # revoked stays revoked
    assert _until(lambda: store.publish("failover-test", "after") is None and "after" in heard, 15)
