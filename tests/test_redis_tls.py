"""Managed Redis as operators run it: TLS (``rediss://``, verified against ``[store] ca_file``)
and an ACL user (``user:password@``) instead of the default user. A real redis-server on
loopback with a certificate from the tests' own CA; the default user is switched off."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway import create_app
from tests import ldap_server
from tests.helpers import Devsite, free_port, make_settings, site_table
from tests.processes import end, spawn

PASSWORD = "acl-user-password-0123456789"


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make test-deps`")
    ca = ldap_server.TestCa(tmp_path_factory.mktemp("redis-tls"))
    port = free_port()
    proc = spawn(
        [
            binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
            "--tls-cert-file", str(ca.cert_file), "--tls-key-file", str(ca.key_file),
            "--tls-ca-cert-file", str(ca.ca_file), "--tls-auth-clients", "no",
            "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction",
            "--user", "default", "off",
            "--user", "gateway", "on", f">{PASSWORD}", "~*", "&*", "+@all",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    direct = redis.Redis(
        port=port, ssl=True, ssl_ca_certs=str(ca.ca_file), username="gateway", password=PASSWORD
    )
    for _ in range(100):
        try:
            direct.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield {"port": port, "ca_file": str(ca.ca_file)}
    end(proc)


def _app(devsite: Devsite, url: str, ca_file: str = "") -> Any:
    """A gateway whose one site signs in with a paywall's JWT: its id is single-use state,
    kept in the store."""
    from tests.paywall_world import AUDIENCE, ISSUER, PAYWALL_SECRET

    store: dict[str, Any] = {"url": url}
    if ca_file:
        store["ca_file"] = ca_file
    paywall = {"type": "jwt", "issuer": ISSUER, "audience": AUDIENCE, "secret": PAYWALL_SECRET}
    return create_app(
        make_settings(
            {"paid": site_table(devsite.url, identity="paywall")},
            identity={"paywall": paywall},
            store=store,
        )
    )


def _login(devsite: Devsite) -> str:
    from tests.test_paywall import paywall_token

    return f"/sso/paid/login?return_url={devsite.url}/&jwt={paywall_token('reader@example.com')}"


def _sign_in(app: Any, login: str) -> Any:
    return app.test_client().get(login, headers={"Accept": "application/json"})


def test_tls_and_an_acl_user(
    tls_redis: dict[str, Any], devsite: Devsite, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"rediss://gateway:{PASSWORD}@127.0.0.1:{tls_redis['port']}/0"
    app = _app(devsite, url, tls_redis["ca_file"])
    login = _login(devsite)
    assert _sign_in(app, login).status_code == 302
    again = _sign_in(app, login)  # the JWT's id was kept in that Redis
    assert again.get_json()["error"]["code"] == "paywall_token_replayed"
    store = app.extensions["gateway.runtime"].store
    store.set("session-revoked:tls-test", 1, ttl=60)
    assert store.get("session-revoked:tls-test") == 1
    assert app.test_client().get("/readyz").status_code == 200
    direct = redis.Redis(
        port=tls_redis["port"], ssl=True, ssl_ca_certs=tls_redis["ca_file"],
        username="gateway", password=PASSWORD,
    )  # fmt: skip
    assert direct.exists("gw:session-revoked:tls-test") == 1  # really in that Redis
    assert PASSWORD not in " ".join(str(record.__dict__) for record in caplog.records)


@pytest.mark.parametrize("case", ["wrong password", "no such user", "unknown CA", "no TLS"])
def test_a_refused_connection_is_503_and_names_no_secret(
    tls_redis: dict[str, Any],
    devsite: Devsite,
    case: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port, ca_file = tls_redis["port"], tls_redis["ca_file"]
    url = {
        "wrong password": f"rediss://gateway:not-{PASSWORD}@127.0.0.1:{port}/0",
        "no such user": f"rediss://nobody:{PASSWORD}@127.0.0.1:{port}/0",
        "unknown CA": f"rediss://gateway:{PASSWORD}@127.0.0.1:{port}/0",
        "no TLS": f"redis://gateway:{PASSWORD}@127.0.0.1:{port}/0",
    }[case]
    if case == "unknown CA":  # another CA's bundle: the server's certificate is not trusted
        ca_file = str(ldap_server.TestCa(tmp_path).ca_file)
    app = _app(devsite, url, ca_file if url.startswith("rediss") else "")
    answer = _sign_in(app, _login(devsite))
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "store_unavailable"
    logged = " ".join(str(record.__dict__) for record in caplog.records)
    assert "redis unavailable" in logged and PASSWORD not in logged  # said, without the secret
