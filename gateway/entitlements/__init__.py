"""Entitlements: who may enter which paywalled product, until when, and from which source.

One row per grant from a source (a Stripe subscription, a one-off Stripe checkout), keyed by
``(source, ref)`` so a later event about the same subscription updates that row whatever its
order. A visitor holds a product when any of the rows for their e-mail is active and not past
``valid_until``. SQLAlchemy Core: SQLite by default, PostgreSQL in production; the schema is
migrated with Alembic at start-up or by ``gateway db upgrade`` (see ``migrate``).

A database that goes away is survived without a restart: connections are checked before use
(``pool_pre_ping``), and a SQLite file replaced under the running gateway (a restore, a
volume swapped) is noticed by its inode, so no connection keeps reading the old one.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import create_engine, event, insert, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError, IntegrityError, SQLAlchemyError

from gateway.entitlements import migrate
from gateway.entitlements.schema import entitlements, processed_events
from gateway.errors import GatewayError
from gateway.logs import audit

log = logging.getLogger("gateway.entitlements")

Standing = Literal["active", "lapsed", "none"]


class EntitlementStoreUnavailable(GatewayError, status=503, code="entitlements_unavailable"):
    """Subscriptions cannot be checked right now. Please try again shortly."""

    reason = ""


def unavailable(exc: BaseException, doing: str) -> EntitlementStoreUnavailable:
    """The error to raise, with the database's own reason logged (never its URL)."""
    error = EntitlementStoreUnavailable()
    error.reason = _reason(exc)  # for the log and the CLI; visitors see only the message
    log.warning(
        "entitlement database failed",
        extra={"doing": doing, "cause": type(exc).__name__, "reason": error.reason},
    )
    return error


def _reason(exc: BaseException) -> str:
    """The driver's own first line (never the database URL, which may hold a password)."""
    return (str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__])[0][:300]


@dataclass(frozen=True)
class Grant:
    """What a source says about one of its grants, as of now."""

    source: str
    ref: str
    email: str
    product: str
    status: str
    active: bool
    valid_until: int | None = None


def engine_url(database_url: str) -> str:
    """``postgresql://`` means the psycopg (3) driver, the one the gateway installs."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    return database_url


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


class EntitlementStore:
    def __init__(self, database_url: str) -> None:
        url = make_url(engine_url(database_url))
        options: dict[str, Any] = {"pool_pre_ping": True}
        self._sqlite_file = migrate.sqlite_path(url)
        if self._sqlite_file is not None:
            options["creator"] = self._sqlite_connector(self._sqlite_file)
        elif url.get_backend_name() == "sqlite":
            options["connect_args"] = {"timeout": 5, "check_same_thread": False}
        else:
            options["connect_args"] = {"connect_timeout": 5}
        self._engine: Engine = create_engine(url, **options)
        if self._sqlite_file is not None:
            self._drop_connections_to_replaced(self._sqlite_file)

    @staticmethod
    def _sqlite_connector(path: Path) -> Callable[[], sqlite3.Connection]:
        """Opens the file read-write but never creates it: a missing file is an outage, not
        a new empty database (only ``upgrade_schema`` creates one)."""

        def connect() -> sqlite3.Connection:
            uri = f"file:{quote(str(path.resolve()))}?mode=rw"
            return sqlite3.connect(uri, uri=True, timeout=5, check_same_thread=False)

        return connect

    def _drop_connections_to_replaced(self, path: Path) -> None:
        @event.listens_for(self._engine, "connect")
        def opened(dbapi_connection: Any, record: Any) -> None:
            record.info["inode"] = _inode(path)

        @event.listens_for(self._engine, "checkout")
        def replaced(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            if record.info.get("inode") != _inode(path):
                raise DisconnectionError("the database file was replaced")  # pool reconnects

    def upgrade_schema(self) -> tuple[str | None, str]:
        """Bring the schema to the newest revision (safe with many workers starting at once)."""
        try:
            if self._sqlite_file is not None and not self._sqlite_file.exists():
                self._sqlite_file.parent.mkdir(parents=True, exist_ok=True)
                sqlite3.connect(self._sqlite_file).close()  # the one place a file is created
            return migrate.upgrade(self._engine)
        except (SQLAlchemyError, OSError) as exc:
            raise unavailable(exc, "upgrade_schema") from None

    def revision(self) -> str | None:
        """The schema revision the database is at (None: never migrated)."""
        try:
            with self._engine.connect() as db:
                return migrate.current(db)
        except SQLAlchemyError as exc:
            raise unavailable(exc, "revision") from None

    def problem(self) -> str | None:
        """None when the database answers with the gateway's tables; else why not (readiness)."""
        try:
            with self._engine.connect() as db:
                db.execute(select(entitlements.c.ref).limit(1)).all()
        except SQLAlchemyError as exc:
            return _reason(exc)
        return None

    def dispose(self) -> None:
        self._engine.dispose()

    def record(self, grant: Grant, now: float | None = None) -> bool:
        """Store the source's current word about a grant; True (and an audit line) on change."""
        stamp = int(time.time() if now is None else now)
        values: dict[str, object] = {
            "email": grant.email.lower(),
            "product": grant.product,
            "status": grant.status,
            "active": grant.active,
            "valid_until": grant.valid_until,
        }
        try:
            try:
                changed = self._write(grant, values, stamp)
            except IntegrityError:  # another worker inserted it first: now it is an update
                changed = self._write(grant, values, stamp)
        except SQLAlchemyError as exc:
            raise unavailable(exc, "record") from None
        if not changed:
            return False
        audit(
            "entitlement_changed",
            source=grant.source,
            ref=grant.ref,
            email=values["email"],
            product=grant.product,
            status=grant.status,
            active=grant.active,
            valid_until=grant.valid_until,
        )
        return True

    def _write(self, grant: Grant, values: dict[str, object], stamp: int) -> bool:
        """Insert or update one grant's row in one transaction; False when nothing differs."""
        key = (entitlements.c.source == grant.source) & (entitlements.c.ref == grant.ref)
        with self._engine.begin() as db:
            row = db.execute(select(*(entitlements.c[name] for name in values)).where(key)).first()
            if row is not None and dict(row._mapping) == values:
                return False
            if row is None:
                db.execute(
                    insert(entitlements).values(
                        source=grant.source, ref=grant.ref, updated_at=stamp, **values
                    )
                )
            else:
                db.execute(update(entitlements).where(key).values(updated_at=stamp, **values))
        return True

    def standing(self, email: str, product: str, now: float | None = None) -> Standing:
        """``active`` when a grant holds now; ``lapsed`` when grants exist but none holds."""
        stamp = int(time.time() if now is None else now)
        query = select(entitlements.c.active, entitlements.c.valid_until).where(
            (entitlements.c.email == email.lower()) & (entitlements.c.product == product)
        )
        try:
            with self._engine.connect() as db:
                rows = db.execute(query).all()
        except SQLAlchemyError as exc:
            raise unavailable(exc, "standing") from None
        if any(active and (until is None or until > stamp) for active, until in rows):
            return "active"
        return "lapsed" if rows else "none"

    def grant_standing(
        self, source: str, ref: str, product: str, now: float | None = None
    ) -> Standing:
        """How one grant, named by its source's own id, stands for ``product`` (a checkout's
        subscription: what a session opened by that checkout holds, whatever its address)."""
        row = self.grant(source, ref)
        if row is None or row["product"] != product:
            return "none"
        stamp = int(time.time() if now is None else now)
        until = row["valid_until"]
        return "active" if row["active"] and (until is None or until > stamp) else "lapsed"

    def grant(self, source: str, ref: str) -> dict[str, Any] | None:
        """One grant by its source's own id: its product, status and end (None: unknown)."""
        key = (entitlements.c.source == source) & (entitlements.c.ref == ref)
        query = select(*_DESCRIBED, entitlements.c.product).where(key)
        try:
            with self._engine.connect() as db:
                row = db.execute(query).first()
        except SQLAlchemyError as exc:
            raise unavailable(exc, "grant") from None
        return None if row is None else _described(row) | {"product": row.product}

    def latest(self, email: str, product: str) -> dict[str, Any] | None:
        """The person's newest grant of ``product``: its status and end (the account page), and
        where it came from (``source``, and ``ref``: that source's own id for it)."""
        query = (
            select(*_DESCRIBED)
            .where(entitlements.c.email == email.strip().lower())
            .where(entitlements.c.product == product)
            .order_by(entitlements.c.updated_at.desc())
            .limit(1)
        )
        try:
            with self._engine.connect() as db:
                row = db.execute(query).first()
        except SQLAlchemyError as exc:
            raise unavailable(exc, "latest") from None
        return None if row is None else _described(row)

    def refs(self, email: str, product: str, source: str) -> list[str]:
        """The ids ``source`` gave this person's grants of ``product`` (a subscription, a
        checkout session), newest first: the account page asks whose they are."""
        query = (
            select(entitlements.c.ref)
            .where(entitlements.c.email == email.strip().lower())
            .where(entitlements.c.product == product)
            .where(entitlements.c.source == source)
            .order_by(entitlements.c.updated_at.desc())
            .limit(20)
        )
        try:
            with self._engine.connect() as db:
                return [str(ref) for (ref,) in db.execute(query).all()]
        except SQLAlchemyError as exc:
            raise unavailable(exc, "refs") from None

    def first_delivery(self, event_id: str, now: float | None = None) -> bool:
        """Remember a webhook event id; False when it was seen before (a replay or retry)."""
        stamp = int(time.time() if now is None else now)
        try:
            with self._engine.begin() as db:
                db.execute(insert(processed_events).values(event_id=event_id, received_at=stamp))
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise unavailable(exc, "first_delivery") from None
        return True

    def forget_delivery(self, event_id: str) -> None:
        """Let a retry of an event we failed to apply be processed again."""
        try:
            with self._engine.begin() as db:
                db.execute(processed_events.delete().where(processed_events.c.event_id == event_id))
        except SQLAlchemyError as exc:
            raise unavailable(exc, "forget_delivery") from None


# What the account page shows of a grant.
_DESCRIBED = (
    entitlements.c.source,
    entitlements.c.ref,
    entitlements.c.status,
    entitlements.c.active,
    entitlements.c.valid_until,
)


def _described(row: Any) -> dict[str, Any]:
    return {
        "source": row.source,
        "ref": row.ref,
        "status": row.status,
        "active": bool(row.active),
        "valid_until": row.valid_until,
    }
