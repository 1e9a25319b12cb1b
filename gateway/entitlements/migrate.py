"""Schema migrations for the entitlement database, with Alembic.

``upgrade`` brings a database to the newest revision. Many workers and instances start at
once, so it runs under a lock: a PostgreSQL advisory lock held by the migrating transaction,
or a lock file next to a SQLite database. A database whose tables were made before
migrations existed (by ``create_all``) is recognised and stamped with the first revision.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, Connection, Engine

log = logging.getLogger("gateway.entitlements")

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "gateway_alembic_version"
FIRST_REVISION = "0001"  # what create_all made before there were migrations
_ADVISORY_LOCK = 0x2365_7461_7465  # any constant shared by every gateway on the database


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this code knows."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found is not None
    return found


def current(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL (None for other databases and in-memory ones)."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


@contextlib.contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate to the newest revision; returns (revision before, revision after)."""
    with _file_lock(sqlite_path(engine.url)), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        before = current(connection)
        config = _config(connection)
        if before is None and inspect(connection).has_table("gateway_entitlements"):
            command.stamp(config, FIRST_REVISION)
            log.info("entitlement schema adopted", extra={"revision": FIRST_REVISION})
        command.upgrade(config, "head")
        after = current(connection)
    assert after is not None
    if after != before:
        log.info("entitlement schema upgraded", extra={"from": before, "to": after})
    return before, after
