"""Creating and upgrading the database with the Alembic migrations shipped in the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ledger.database import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection=None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str]:
    """Bring the schema to ``revision``; returns (revision before, revision after)."""
    before = current_revision(db)
    with db.engine.connect() as conn:
        command.upgrade(_config(conn), revision)
        conn.commit()
    return before, current_revision(db)


def revise(db: Database, message: str) -> None:
    """Developer tool: autogenerate a migration from the models' difference to ``db``."""
    with db.engine.connect() as conn:
        command.revision(_config(conn), message=message, autogenerate=True)
