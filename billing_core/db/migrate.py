"""Alembic migrations, run programmatically: `upgrade` and `ensure_schema`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The newest migration revision."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (default: the newest)."""
    command.upgrade(_config(engine), revision)


class ReadOnlyDatabase(RuntimeError):
    """The database needs an upgrade but may not be written."""


def ensure_schema(engine: Engine) -> None:
    """Upgrade the database if it is behind the code's newest migration."""
    if current_revision(engine) != head_revision():
        from billing_core.db.engine import read_only_file

        if read_only_file(str(engine.url)):
            raise ReadOnlyDatabase(
                f"the database {engine.url.database} is read-only and its schema is older "
                f"than this version of Billflow: open it once with write access (`billing "
                f"db upgrade`)")
        upgrade(engine)
