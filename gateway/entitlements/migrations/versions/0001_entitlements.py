"""Entitlement rows and processed webhook events (the schema before migrations existed).

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_entitlements",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("ref", sa.String(255), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("product", sa.String(200), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("valid_until", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("gateway_entitlements_holder", "gateway_entitlements", ["email", "product"])
    op.create_table(
        "gateway_processed_events",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("received_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gateway_processed_events")
    op.drop_index("gateway_entitlements_holder", "gateway_entitlements")
    op.drop_table("gateway_entitlements")
