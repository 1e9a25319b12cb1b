"""Schema migrations (Alembic) on SQLite and PostgreSQL: fresh databases, databases made
before migrations existed, many workers migrating at once, and the CLI."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, text

from gateway.entitlements import EntitlementStore, engine_url
from gateway.entitlements.migrate import FIRST_REVISION, VERSION_TABLE, head
from gateway.entitlements.schema import entitlements, metadata
from tests.postgres_server import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    server: str = request.getfixturevalue("postgres_url")
    return fresh_database(server, f"gw_{uuid.uuid4().hex[:12]}")


def test_a_fresh_database_is_migrated_to_the_newest_revision(empty_database: str) -> None:
    store = EntitlementStore(empty_database)
    assert store.upgrade_schema() == (None, head())
    assert store.upgrade_schema() == (head(), head())  # the next start-up: nothing to do
    assert store.revision() == head() and store.problem() is None
    store.dispose()


def test_the_migrations_build_exactly_the_schema_the_code_uses(empty_database: str) -> None:
    EntitlementStore(empty_database).upgrade_schema()
    engine = create_engine(engine_url(empty_database))
    with engine.connect() as db:
        context = MigrationContext.configure(db, opts={"version_table": VERSION_TABLE})
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert differences == []  # a change to schema.py needs a migration, and vice versa


def test_a_database_from_before_migrations_is_adopted_with_its_rows(empty_database: str) -> None:
    engine = create_engine(engine_url(empty_database))
    metadata.create_all(engine)  # what the gateway did before it had migrations
    with engine.begin() as db:
        db.execute(
            insert(entitlements).values(
                source="stripe:gold",
                ref="sub-old",
                email="old@example.com",
                product="gold",
                status="active",
                active=True,
                valid_until=None,
                updated_at=1,
            )
        )
    engine.dispose()
    store = EntitlementStore(empty_database)
    before, after = store.upgrade_schema()
    assert before is None and after == head()
    assert store.standing("old@example.com", "gold") == "active"
    engine = create_engine(engine_url(empty_database))
    with engine.connect() as db:
        query = text(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608 - a constant
        assert db.execute(query).scalar() == head()
    engine.dispose()
    store.dispose()


def test_many_workers_starting_at_once_migrate_once(empty_database: str) -> None:
    results: list[object] = []

    def start_up() -> None:
        store = EntitlementStore(empty_database)
        try:
            results.append(store.upgrade_schema())
        except Exception as exc:
            results.append(exc)
        finally:
            store.dispose()

    threads = [threading.Thread(target=start_up) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(r, tuple) for r in results), results
    assert [r for r in results if r == (None, head())] == [(None, head())]  # one migrated
    engine = create_engine(engine_url(empty_database))
    with engine.connect() as db:
        query = text(f"SELECT count(*) FROM {VERSION_TABLE}")  # noqa: S608 - a constant
        assert db.execute(query).scalar() == 1
        assert set(metadata.tables) <= set(inspect(db).get_table_names())
    engine.dispose()


def test_the_first_revision_is_the_pre_migration_schema() -> None:
    assert FIRST_REVISION == "0001" and head() >= FIRST_REVISION


def test_gateway_db_upgrade_and_current(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
[gateway]
public_url = "http://127.0.0.1:8000"
secret_key = "{"k" * 40}"
[store]
database_url = "sqlite:///{db}"
[sites.demo]
url = "http://127.0.0.1:9"
consumer_key = "a"
consumer_secret = "b"
access_token = "c"
access_token_secret = "d"
"""
    )

    def gateway(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "gateway.cli", "db", *args, "--config", str(config)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    missing = gateway("current")
    assert missing.returncode == 1 and "unable to open database file" in missing.stderr
    done = gateway("upgrade")
    assert done.returncode == 0, done.stderr
    assert f"upgraded from nothing to revision {head()}" in done.stdout
    again = gateway("upgrade")
    assert again.returncode == 0 and "already at revision" in again.stdout
    current = gateway("current")
    assert current.returncode == 0 and "up to date" in current.stdout
