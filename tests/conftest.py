from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway import create_app
from gateway.devsite import DevsiteOptions, create_devsite
from tests.cluster import TOPOLOGIES
from tests.helpers import Devsite, make_settings, site_table
from tests.processes import end, end_all, spawn

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True)
def _sync_loops_end_with_their_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every create_app starts its sites' catalogue sync loops. One built inside a test stops
    with it, so no loop left behind calls the shared emulated site during a later test.
    (Worlds of a wider scope are built before this fixture and keep theirs.)"""
    from gateway.runtime import GatewayRuntime

    started: list[GatewayRuntime] = []
    start = GatewayRuntime.start

    def tracked(runtime: GatewayRuntime) -> None:
        started.append(runtime)
        start(runtime)

    monkeypatch.setattr(GatewayRuntime, "start", tracked)
    yield
    for runtime in started:
        for catalogue in runtime.catalogues.values():
            catalogue.stop()


@pytest.fixture(scope="session")
def devsite_server() -> Iterator[Devsite]:
    server = Devsite(create_devsite(DevsiteOptions(remote_login_url="http://127.0.0.1:9/login")))
    yield server
    server.stop()


@pytest.fixture()
def devsite(devsite_server: Devsite) -> Iterator[Devsite]:
    """The shared emulated site, reset (mode ok, empty call log) for each test."""
    devsite_server.reset()
    yield devsite_server
    devsite_server.reset()


@pytest.fixture()
def app(devsite: Devsite) -> Flask:
    return create_app(make_settings({"demo": site_table(devsite.url)}))


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def tab(chromium: Any) -> Iterator[Any]:
    """A page in a fresh browser profile (no cookies), closed after the test."""
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright (installed by make test-deps)."""
    import shutil
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    binary = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(binary).exists():
        pytest.fail("chromium is not installed: run `make test-deps`")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=binary, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture()
def shots(tmp_path: Any) -> Any:
    """Where browser tests put their screenshots: $GATEWAY_SCREENSHOTS, else the test's tmp."""
    import os
    from pathlib import Path

    folder = Path(os.environ.get("GATEWAY_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port (installed by make test-deps)."""
    from tests.postgres_server import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (installed by make test-deps)."""
    import shutil
    import socket
    import subprocess
    import time

    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make test-deps`")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = spawn(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                end(proc)
                raise
            time.sleep(0.05)
    yield url
    end(proc)


def _world_redis(request: pytest.FixtureRequest, database: int) -> str:
    """For two instances: a Redis database of the world's own (worlds coexist)."""
    if request.param == "one-instance":
        return ""
    url: str = request.getfixturevalue("redis_url")
    return url.rsplit("/", 1)[0] + f"/{database}"


@pytest.fixture(scope="session", params=TOPOLOGIES)
def world(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Provider, emulated site and gateway for the visitor flows (tests/sso_world.py): one
    instance, then two on Redis behind nginx."""
    from tests.sso_world import running_world

    yield from running_world(request.param, _world_redis(request, 1))


@pytest.fixture(scope="session", params=TOPOLOGIES)
def paywall(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Stripe stand-in, SMTP catcher, JWKS host, emulated site and gateway (paywall_world.py)."""
    from tests.paywall_world import running_paywall_world

    folder = tmp_path_factory.mktemp("paywall")
    yield from running_paywall_world(folder, request.param, _world_redis(request, 2))


@pytest.fixture(scope="session", params=TOPOLOGIES)
def saml(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """SimpleSAMLphp, the tests' forging IdP, emulated site and gateway (saml_world.py)."""
    from tests.saml_world import running_saml_world

    folder = tmp_path_factory.mktemp("saml")
    yield from running_saml_world(folder, request.param, _world_redis(request, 3))


@pytest.fixture(scope="session", params=TOPOLOGIES)
def catalogue_world(request: pytest.FixtureRequest) -> Iterator[Any]:
    """An emulated site of 1,200+ videos and a gateway that syncs it (catalogue_world.py)."""
    from tests.catalogue_world import running_catalogue_world

    yield from running_catalogue_world(request.param, _world_redis(request, 4))


@pytest.fixture(scope="session")
def ldap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real slapd, emulated site and gateway with LDAP identities (ldap_world.py)."""
    from tests.ldap_world import running_ldap_world

    yield from running_ldap_world(tmp_path_factory.mktemp("ldap"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Whatever a failing test or fixture left running ends with the session."""
    end_all()
