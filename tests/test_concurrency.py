"""Concurrent writers: several processes posting to the same accounts lose no update and
never post an id twice (invariants 6 and 9)."""

from __future__ import annotations

import datetime as dt
import multiprocessing

import pytest

from ecoledger.schema import metadata
from ledger import companies
from ledger.database import Database
from ledger.interchange import parse_entry
from ledger.posting import post_entries
from ledger.reports import trial_balance
from ledger.verify import verify

from helpers import entry

WORKERS = 4
BATCHES = 10
BATCH = 25


def _worker(url: str, worker: int, shared_ids: bool) -> tuple[int, int]:
    db = Database(url)
    accepted = duplicates = 0
    try:
        for batch in range(BATCHES):
            docs = []
            for n in range(BATCH):
                name = f"b{batch}-{n}" if shared_ids else f"w{worker}-b{batch}-{n}"
                docs.append(entry(name, "2026-10-05", ("OPFI", "Assets:Bank", "1.00"), ("OPFI", "Income:Usage", "-1.00")))
            report = post_entries(db, [parse_entry(d, i) for i, d in enumerate(docs)], actor=f"w{worker}", all_or_nothing=False)
            assert report.rejected == 0, report.rejections
            accepted += report.accepted
            duplicates += report.duplicates
    finally:
        db.dispose()
    return accepted, duplicates


def run_concurrently(url: str, shared_ids: bool) -> list[tuple[int, int]]:
    db = Database(url)
    metadata.create_all(db.engine)
    companies.add_company(db, "OPFI", "Operator", "EUR", actor="t", open_date=dt.date(2026, 1, 1))
    db.dispose()
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        return pool.starmap(_worker, [(url, w, shared_ids) for w in range(WORKERS)])


def check(url: str, expected_entries: int) -> None:
    db = Database(url)
    try:
        bank = [l for l in trial_balance(db, company="OPFI").lines if l.account == "Assets:Bank"]
        assert bank[0].balance_minor == expected_entries * 100
        report = verify(db)
        assert report.ok, report.violations
        assert report.entries == expected_entries
    finally:
        db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_schema_url")


def test_concurrent_writers_lose_no_balance_update(any_url):
    results = run_concurrently(any_url, shared_ids=False)
    assert sum(accepted for accepted, _ in results) == WORKERS * BATCHES * BATCH
    check(any_url, WORKERS * BATCHES * BATCH)


def test_racing_on_the_same_ids_posts_each_once(any_url):
    results = run_concurrently(any_url, shared_ids=True)
    assert sum(accepted for accepted, _ in results) == BATCHES * BATCH
    assert sum(duplicates for _, duplicates in results) == (WORKERS - 1) * BATCHES * BATCH
    check(any_url, BATCHES * BATCH)
