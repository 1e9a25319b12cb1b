"""Entitlements: who may enter which paywalled product, until when, and from which source.

One row per grant from a source (a Stripe subscription, a one-off Stripe checkout), keyed by
``(source, ref)`` so a later event about the same subscription updates that row whatever its
order. A visitor holds a product when any of the rows for their e-mail is active and not past
``valid_until``. SQLAlchemy Core: SQLite by default, PostgreSQL in production; the schema is
created at start-up (one version so far, so no migration tool yet).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from gateway.errors import GatewayError
from gateway.logs import audit

log = logging.getLogger("gateway.entitlements")

metadata = MetaData()

entitlements = Table(
    "gateway_entitlements",
    metadata,
    Column("source", String(64), primary_key=True),  # e.g. "stripe:shop"
    Column("ref", String(255), primary_key=True),  # subscription or checkout session id
    Column("email", String(254), nullable=False),  # lower-case
    Column("product", String(200), nullable=False),
    Column("status", String(40), nullable=False),  # the source's own word: active, past_due...
    Column("active", Boolean, nullable=False),
    Column("valid_until", BigInteger, nullable=True),  # Unix seconds; NULL = no end
    Column("updated_at", BigInteger, nullable=False),
    Index("gateway_entitlements_holder", "email", "product"),
)

processed_events = Table(
    "gateway_processed_events",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("received_at", BigInteger, nullable=False),
)

Standing = Literal["active", "lapsed", "none"]


class EntitlementStoreUnavailable(GatewayError):
    status = 503
    code = "entitlements_unavailable"
    default_message = "Subscriptions cannot be checked right now. Please try again shortly."


def unavailable(exc: SQLAlchemyError, doing: str) -> EntitlementStoreUnavailable:
    """The error to raise, with the database's own reason logged (never its URL)."""
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
    log.warning(
        "entitlement database failed",
        extra={"doing": doing, "cause": type(exc).__name__, "reason": reason},
    )
    return EntitlementStoreUnavailable()


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


class EntitlementStore:
    def __init__(self, database_url: str) -> None:
        url = engine_url(database_url)
        options: dict[str, object] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            options["connect_args"] = {"timeout": 5, "check_same_thread": False}
        else:
            options["connect_args"] = {"connect_timeout": 5}
        self._engine: Engine = create_engine(url, **options)

    def create_schema(self) -> None:
        """Create the tables if they are missing. Several workers or instances starting at
        once race for it; whoever loses finds the tables there and goes on."""
        for attempt in range(3):
            try:
                metadata.create_all(self._engine)
                return
            except SQLAlchemyError as exc:
                if self._schema_present():
                    return
                if attempt == 2:
                    raise unavailable(exc, "create_schema") from None
                time.sleep(0.2)

    def _schema_present(self) -> bool:
        try:
            names = set(inspect(self._engine).get_table_names())
        except SQLAlchemyError:
            return False
        return set(metadata.tables) <= names

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
