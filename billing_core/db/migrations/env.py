"""Alembic environment: the engine comes from billing_core.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import billing_core.db.models  # noqa: F401  (registers the tables)
from billing_core.db.engine import get_engine

target_metadata = SQLModel.metadata
engine = context.config.attributes.get("engine") or get_engine()

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
