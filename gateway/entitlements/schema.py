"""The entitlement tables, as the code reads and writes them today. Changes go through a new
migration in ``migrations/versions`` as well (``gateway db upgrade`` applies them)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, MetaData, String, Table

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
