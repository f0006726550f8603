"""Test databases.

``ECOLEDGER_TEST_BACKEND`` chooses where the general suite runs: ``sqlite`` (default, a
fresh file per test) or ``postgresql`` (a fresh schema per test in the database at
``ECOLEDGER_TEST_POSTGRES_URL``, default postgresql+psycopg://postgres@127.0.0.1:5432/test).

Tests that need PostgreSQL whatever the backend (concurrency, migrations on PostgreSQL) use
``pg_url``. Without a reachable server they skip with the reason, except under CI
(``CI=true``), where an unreachable server fails them: CI must not pass by skipping.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from ecoledger.cli import main
from ecoledger.schema import metadata
from ledger import companies
from ledger.database import Database, scratch_postgres_schema

# The API harness and its `api` fixture, for every test module that asks for it.
pytest_plugins = ["api_helpers"]

BACKEND = os.environ.get("ECOLEDGER_TEST_BACKEND", "sqlite")
POSTGRES_URL = os.environ.get(
    "ECOLEDGER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"

if BACKEND not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"ECOLEDGER_TEST_BACKEND must be sqlite or postgresql, not {BACKEND!r}")

_postgres_problem: str | None = None
_postgres_checked = False


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    global _postgres_problem, _postgres_checked
    if not _postgres_checked:
        _postgres_checked = True
        try:
            engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
        except Exception as exc:  # any failure to connect means: not available
            _postgres_problem = f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.__class__.__name__}: {exc}"
    return _postgres_problem


def require_postgres() -> None:
    problem = postgres_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem} (CI=true: PostgreSQL tests must run, not skip)")
        pytest.skip(problem)


def fresh_pg_schema(request) -> str:
    """A URL whose connections live in a new, empty PostgreSQL schema, dropped after the test."""
    require_postgres()
    url, drop = scratch_postgres_schema(POSTGRES_URL, prefix="t")
    request.addfinalizer(drop)
    return url


@pytest.fixture
def pg_schema_url(request) -> str:
    return fresh_pg_schema(request)


@pytest.fixture
def db_url(tmp_path, request) -> Iterator[str]:
    """An empty database of the backend under test."""
    if BACKEND == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        yield request.getfixturevalue("pg_schema_url")


@pytest.fixture
def empty_db(db_url) -> Iterator[Database]:
    db = Database(db_url)
    metadata.create_all(db.engine)
    try:
        yield db
    finally:
        db.dispose()


OPEN = dt.date(2026, 1, 1)


@pytest.fixture
def db(empty_db) -> Database:
    """Two companies with the default chart: operator OPFI and vendor VEND, EUR (+USD)."""
    companies.add_company(
        empty_db, "OPFI", "Operator Oy", "EUR", actor="test", roles=["operator"],
        extra_currencies=["USD"], open_date=OPEN,
    )
    companies.add_company(
        empty_db, "VEND", "Vendor Oy", "EUR", actor="test", roles=["vendor"], open_date=OPEN,
    )
    return empty_db


@pytest.fixture
def cli(db_url, tmp_path, monkeypatch):
    """Run `ecoledger ...` against a fresh database; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ECOLEDGER_SETTINGS", raising=False)
    runner = CliRunner()

    def run(*args: str, input: str | bytes | None = None):
        result = runner.invoke(main, ["--database", db_url, "--actor", "tester", *args], input=input, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return run


@pytest.fixture
def ready(cli):
    assert cli("init")[0] == 0
    assert cli("company", "add", "OPFI", "--name", "Operator Oy", "--currency", "EUR", "--open-date", "2026-01-01")[0] == 0
    assert cli("company", "add", "VEND", "--name", "Vendor Oy", "--currency", "EUR", "--role", "vendor", "--open-date", "2026-01-01")[0] == 0
    return cli
