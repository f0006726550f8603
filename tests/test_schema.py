"""The schema: migrations equal the models, and the database itself refuses edits."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from ecoledger import migrate
from ecoledger.schema import metadata
from ledger import periods
from ledger.database import Database
from ledger.reversal import reverse_entry
from ledger.schema import expected_triggers

from conftest import fresh_pg_schema
from helpers import entry, post


def snapshot(db: Database) -> dict:
    """Everything about a schema that matters, as comparable plain data."""
    with db.engine.connect() as conn:
        inspector = inspect(conn)
        tables = {}
        for name in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
            tables[name] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], c.get("autoincrement") is True)
                    for c in inspector.get_columns(name)
                ],
                "primary_key": inspector.get_pk_constraint(name),
                "foreign_keys": sorted(
                    (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                    for fk in inspector.get_foreign_keys(name)
                ),
                "unique": sorted((u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(name)),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), i["unique"]) for i in inspector.get_indexes(name)
                ),
                "checks": sorted(
                    (c["name"], re.sub(r"\s+", " ", c["sqltext"]).strip()) for c in inspector.get_check_constraints(name)
                ),
            }
        if db.is_sqlite:
            triggers = conn.execute(text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
            functions: list = []
        else:
            triggers = conn.execute(
                text(
                    "SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
                    "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal "
                    "AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
                )
            ).all()
            functions = conn.execute(
                text(
                    "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p "
                    "WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
                )
            ).all()
        schema = None if db.is_sqlite else conn.execute(text("SELECT current_schema()")).scalar()

    def local(row) -> tuple:
        # Definitions name the (random) test schema; compare them without it.
        return tuple(v.replace(f"{schema}.", "") if schema and isinstance(v, str) else v for v in row)

    return {
        "tables": tables,
        "triggers": sorted(local(t) for t in triggers),
        "functions": sorted(local(f) for f in functions),
    }


def migrated_equals_models(url_a: str, url_b: str) -> None:
    migrated, modelled = Database(url_a), Database(url_b)
    try:
        migrate.upgrade(migrated)
        metadata.create_all(modelled.engine)
        with migrated.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        a, b = snapshot(migrated), snapshot(modelled)
        assert a["tables"] == b["tables"]
        assert a["triggers"] == b["triggers"]
        assert a["functions"] == b["functions"]
        present = {(table, name) for name, table, *_ in a["triggers"]}
        assert present == expected_triggers(migrated.dialect_name)
        assert migrate.current_revision(migrated) == migrate.head_revision()
    finally:
        migrated.dispose()
        modelled.dispose()


def test_sqlite_migrations_equal_models(tmp_path):
    migrated_equals_models(f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}")


@pytest.mark.postgres
def test_postgresql_migrations_equal_models(request):
    migrated_equals_models(fresh_pg_schema(request), fresh_pg_schema(request))


def test_upgrade_twice_changes_nothing(db_url):
    db = Database(db_url)
    try:
        assert migrate.upgrade(db) == (None, migrate.head_revision())
        assert migrate.upgrade(db) == (migrate.head_revision(), migrate.head_revision())
    finally:
        db.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_entries SET description = 'edited'",
        "DELETE FROM journal_entries",
        "UPDATE postings SET amount_minor = amount_minor + 1",
        "DELETE FROM postings",
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
    ],
)
def test_database_refuses_to_change_posted_rows(db, statement):
    post(db, entry("a"))
    with pytest.raises(DBAPIError, match="immutable"):
        with db.engine.begin() as conn:
            conn.execute(text(statement))


@pytest.mark.parametrize(
    "statement, reason",
    [
        ("DELETE FROM accounts WHERE name = 'Assets:Bank'", "accounts are never deleted"),
        ("DELETE FROM companies WHERE code = 'VEND'", "companies are never deleted"),
        ("UPDATE closed_periods SET end_date = '2026-01-01'", "reopened only by the audited close"),
        ("DELETE FROM closed_periods", "reopened only by the audited close"),
    ],
)
def test_database_refuses_to_delete_companies_and_accounts(db, statement, reason):
    periods.close_period(db, "OPFI", "2026-09", actor="t")
    with pytest.raises(DBAPIError, match=reason):
        with db.engine.begin() as conn:
            conn.execute(text(statement))


@pytest.mark.postgres
def test_postgresql_refuses_truncate(pg_schema_url):
    """SQLite has no TRUNCATE; on PostgreSQL a statement trigger refuses it."""
    db = Database(pg_schema_url)
    try:
        metadata.create_all(db.engine)
        for table in ("postings", "journal_entries", "audit_log", "closed_periods", "accounts", "companies"):
            with pytest.raises(DBAPIError, match="immutable|never deleted|audited close"):
                with db.engine.begin() as conn:
                    conn.execute(text(f"TRUNCATE {table} CASCADE"))
    finally:
        db.dispose()


def test_database_refuses_a_second_reversal(db):
    """Invariant 7 holds even for a writer that bypasses the service."""
    post(db, entry("a"))
    reverse_entry(db, "a", dt.date(2026, 10, 6), actor="t")
    with pytest.raises(DBAPIError):
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO journal_entries (id, external_id, effective_date, recorded_at, description, "
                    "source_type, reverses_id, payload_hash, chain_hash) VALUES "
                    "(3, 'again', '2026-10-07', '2026-10-07 00:00:00', '', 'manual', 1, 'x', 'y')"
                )
            )
