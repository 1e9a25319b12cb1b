"""Alembic's entry point for the gateway's own migrations. Run programmatically by
``gateway.entitlements.migrate`` (at start-up and by ``gateway db upgrade``), which hands over
an open connection already holding the migration lock; there is no alembic.ini."""

from __future__ import annotations

from alembic import context

from gateway.entitlements.migrate import VERSION_TABLE
from gateway.entitlements.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,  # not "alembic_version": the database may be shared
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying tables
    transactional_ddl=connection.dialect.name != "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
