"""A test harness for the API: the app on the test database, one key per role."""

from __future__ import annotations

from pathlib import Path

import pytest

from access.keys import issue_key
from access.schema import ROLES
from api import create_app
from config import Settings
from ecoledger import migrate

from helpers import entry, post


def stamp_head(db) -> None:
    """Mark a database built with create_all as migrated (tests/test_schema.py proves both
    give the same schema), so that /ready sees a current schema."""
    from alembic import command

    with db.engine.connect() as conn:
        command.stamp(migrate._config(conn), "head")
        conn.commit()


class Harness:
    def __init__(self, db, data_dir: Path) -> None:
        self.db = db
        settings = Settings(database_url=db.url.render_as_string(hide_password=False), data_dir=str(data_dir))
        self.app = create_app(settings, db=db)
        self.client = self.app.test_client()
        self.tokens = {
            role: issue_key(db, name=f"{role} key", role=role, actor="test",
                            company="VEND" if role == "partner" else None).token
            for role in ROLES
        }
        self.key_ids = {role: token.split("_")[1] for role, token in self.tokens.items()}

    def call(self, role: str | None, method: str, path: str, **kwargs):
        headers = dict(kwargs.pop("headers", {}) or {})
        if role is not None:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        return self.client.open(path, method=method, headers=headers, **kwargs)


@pytest.fixture
def api(db, tmp_path) -> Harness:
    """OPFI (operator) and VEND (vendor, the partner key's company), one entry between them."""
    post(
        db,
        entry("shared", "2026-10-05",
              ("OPFI", "Expenses:CostOfServices", "60.00"),
              ("OPFI", "Liabilities:Ecosystem:DueTo", "-60.00", "EUR", {"counterparty": "VEND"}),
              ("VEND", "Assets:Ecosystem:DueFrom", "60.00", "EUR", {"counterparty": "OPFI"}),
              ("VEND", "Income:Ecosystem", "-60.00")),
        entry("operator-only", "2026-10-06"),
    )
    stamp_head(db)
    return Harness(db, tmp_path / "data")
