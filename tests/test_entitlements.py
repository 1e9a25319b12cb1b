"""The entitlement store against SQLite and a real PostgreSQL server (a throwaway cluster)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from gateway.entitlements import EntitlementStore, Grant, engine_url
from tests.helpers import free_port


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ent.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture()
def store(database_url: str) -> Iterator[EntitlementStore]:
    entitlements = EntitlementStore(database_url)
    entitlements.upgrade_schema()
    entitlements.upgrade_schema()  # start-up twice: the schema step is idempotent
    yield entitlements
    entitlements.dispose()


def grant(ref: str, email: str = "Ada@Example.com", **kw: object) -> Grant:
    values: dict[str, object] = {"status": "active", "active": True, "valid_until": None, **kw}
    return Grant("stripe:gold", ref, email, "gold", **values)  # type: ignore[arg-type]


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns()}"


def test_grant_lapse_and_renew(store: EntitlementStore) -> None:
    ref, email = unique("sub"), f"{unique('ada')}@example.com"
    assert store.standing(email, "gold") == "none"
    assert store.record(grant(ref, email)) is True
    assert store.record(grant(ref, email)) is False  # the same word again: no change, no audit
    assert store.standing(email.upper(), "gold") == "active"  # e-mail is case-insensitive
    assert store.standing(email, "silver") == "none"
    store.record(grant(ref, email, status="canceled", active=False))
    assert store.standing(email, "gold") == "lapsed"
    store.record(grant(unique("sub"), email))  # a second subscription
    assert store.standing(email, "gold") == "active"


def test_grace_period_ends(store: EntitlementStore) -> None:
    ref, email = unique("sub"), f"{unique('bob')}@example.com"
    now = time.time()
    store.record(grant(ref, email, status="past_due", valid_until=int(now) + 60))
    assert store.standing(email, "gold", now=now) == "active"
    assert store.standing(email, "gold", now=now + 61) == "lapsed"


def test_event_ids_are_applied_once(store: EntitlementStore) -> None:
    event = unique("evt")
    assert store.first_delivery(event) is True
    assert store.first_delivery(event) is False
    store.forget_delivery(event)
    assert store.first_delivery(event) is True


def test_concurrent_first_grants_make_one_row(store: EntitlementStore, database_url: str) -> None:
    ref, email = unique("sub"), f"{unique('eve')}@example.com"
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(store.record(grant(ref, email))))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.standing(email, "gold") == "active"
    assert results.count(True) == 1  # one writer inserted; the others found nothing to change
    engine = create_engine(engine_url(database_url))
    try:
        with engine.connect() as db:
            rows = db.execute(
                text("SELECT count(*) FROM gateway_entitlements WHERE ref = :ref"), {"ref": ref}
            ).scalar_one()
    finally:
        engine.dispose()
    assert rows == 1


def test_postgres_urls_use_psycopg() -> None:
    assert engine_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert engine_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert engine_url("sqlite:///x.db") == "sqlite:///x.db"


def test_unreachable_database_is_a_clear_503() -> None:
    from gateway.entitlements import EntitlementStoreUnavailable

    store = EntitlementStore(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    with pytest.raises(EntitlementStoreUnavailable):
        store.standing("a@example.com", "gold")
