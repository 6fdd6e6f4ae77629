from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import billing_core.db.models  # noqa: F401
from billing_core.db.migrate import current_revision, ensure_schema, head_revision


def test_migrations_match_the_models(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_commands_bring_an_empty_database_up_to_date(db_url):
    from billing_core.db.engine import get_engine

    db = get_engine(db_url)
    assert current_revision(db) is None
    ensure_schema(db)
    assert current_revision(db) == head_revision()
    ensure_schema(db)  # idempotent
