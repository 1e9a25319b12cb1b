from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway import create_app
from gateway.devsite import DevsiteOptions, create_devsite
from tests.helpers import Devsite, make_settings, site_table


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
