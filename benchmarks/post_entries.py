#!/usr/bin/env python3
"""Benchmark: posting N entries of 4 postings across 2 companies, in batches.

Prints entries per second and peak memory of ecoledger's posting service, and beside it a
baseline measured in the same run: the same entry and posting rows written by the raw
driver into plain tables with the same indexes and no checks (sqlite3 executemany on
SQLite, COPY on PostgreSQL). Each measurement runs in a fresh process so that its peak RSS
is its own. The input is streamed (generated entry by entry), so memory must stay flat as
N grows.

    python benchmarks/post_entries.py --entries 1000000
    python benchmarks/post_entries.py --entries 200000 --database postgresql+psycopg://postgres@127.0.0.1/test
    python benchmarks/post_entries.py --entries 200000 --input all     # also through the parsers

Figures are recorded in docs/benchmarks.md. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import multiprocessing
import os
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config import limits  # noqa: E402
from ledger.database import scratch_postgres_schema  # noqa: E402

FIRST_DAY = dt.date(2026, 10, 1)
HASH = "0" * 64


def documents(count: int) -> Iterator[dict]:
    """Rated usage lines as the vendor-cost half of the guide's flow: operator cost and the
    vendor's mirror, 4 postings across 2 companies, dated through one month in order."""
    for n in range(count):
        amount = f"{(n % 9_000) + 100}.{n % 100:02d}"
        yield {
            "id": f"usage-2026-10-{n:09d}",
            "date": (FIRST_DAY + dt.timedelta(days=n * 30 // count)).isoformat(),
            "description": "Field service",
            "postings": [
                {"company": "OPFI", "account": "Expenses:CostOfServices", "amount": amount, "currency": "EUR",
                 "dimensions": {"customer": f"C-{n % 500}"}},
                {"company": "OPFI", "account": "Liabilities:Ecosystem:DueTo", "amount": "-" + amount, "currency": "EUR",
                 "dimensions": {"counterparty": "VEND"}},
                {"company": "VEND", "account": "Assets:Ecosystem:DueFrom", "amount": amount, "currency": "EUR",
                 "dimensions": {"counterparty": "OPFI"}},
                {"company": "VEND", "account": "Income:Ecosystem", "amount": "-" + amount, "currency": "EUR"},
            ],
        }


def drafts(count: int) -> Iterator:
    """The same entries as ready-made drafts, as posting rules and reversals hand them over."""
    from ledger.records import EntryDraft, PostingDraft

    days = [FIRST_DAY + dt.timedelta(days=d) for d in range(31)]
    customers = [(("customer", f"C-{c}"),) for c in range(500)]
    to_vendor, to_operator = (("counterparty", "VEND"),), (("counterparty", "OPFI"),)
    for n in range(count):
        amount = ((n % 9_000) + 100) * 100 + n % 100
        yield EntryDraft(
            f"usage-2026-10-{n:09d}",
            days[n * 30 // count],
            (
                PostingDraft("OPFI", "Expenses:CostOfServices", amount, "EUR", customers[n % 500]),
                PostingDraft("OPFI", "Liabilities:Ecosystem:DueTo", -amount, "EUR", to_vendor),
                PostingDraft("VEND", "Assets:Ecosystem:DueFrom", amount, "EUR", to_operator),
                PostingDraft("VEND", "Income:Ecosystem", -amount, "EUR", ()),
            ),
            "Field service",
            ref=n,
        )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- ecoledger ------------------------------------------------------------------------------


def run_ecoledger(url: str, count: int, batch: int, input_kind: str, jsonl_path: str | None) -> dict:
    from ecoledger.schema import metadata
    from ledger import companies
    from ledger.database import Database
    from ledger.interchange import parse_entry, read_json_lines
    from ledger.posting import post_entries

    db = Database(url)
    metadata.create_all(db.engine)
    for code, roles in (("OPFI", ["operator"]), ("VEND", ["vendor"])):
        companies.add_company(db, code, code, "EUR", actor="bench", roles=roles, open_date=FIRST_DAY)
    gc.freeze()  # as the ecoledger CLI does after start-up (ecoledger/cli/__init__.py)
    started = time.perf_counter()
    if input_kind == "jsonl":
        with open(jsonl_path, "rb") as stream:
            report = post_entries(db, read_json_lines(stream), actor="bench", batch_entries=batch)
    elif input_kind == "documents":
        items = (parse_entry(doc, n) for n, doc in enumerate(documents(count)))
        report = post_entries(db, items, actor="bench", batch_entries=batch)
    else:
        report = post_entries(db, drafts(count), actor="bench", batch_entries=batch)
    seconds = time.perf_counter() - started
    assert report.accepted == count, (report.accepted, report.rejections[:3])
    db.dispose()
    return {"seconds": seconds, "rss_mb": peak_rss_mb()}


# -- baseline -------------------------------------------------------------------------------

BASELINE_DDL = [
    "CREATE TABLE journal_entries (id BIGINT PRIMARY KEY, external_id VARCHAR(255) NOT NULL UNIQUE, "
    "effective_date DATE NOT NULL, recorded_at TIMESTAMP NOT NULL, description TEXT NOT NULL, "
    "source_type VARCHAR(64) NOT NULL, source_id VARCHAR(255), metadata_json TEXT, reverses_id BIGINT UNIQUE, "
    "payload_hash VARCHAR(64) NOT NULL, chain_hash VARCHAR(64) NOT NULL)",
    "CREATE TABLE postings (entry_id BIGINT NOT NULL, line_no INTEGER NOT NULL, account_id INTEGER NOT NULL, "
    "amount_minor BIGINT NOT NULL, currency VARCHAR(3) NOT NULL, dimensions TEXT, effective_date DATE NOT NULL, "
    "PRIMARY KEY (entry_id, line_no))",
    "CREATE INDEX ix_postings_account_id_effective_date ON postings (account_id, effective_date)",
]


def baseline_rows(count: int, batch: int) -> Iterator[tuple[list, list]]:
    """The same rows ecoledger writes, built as cheaply as Python can: no parsing, no
    validation, no hashing, no balances. A strong baseline, not a straw man."""
    recorded = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    customers = [json.dumps({"customer": f"C-{c}"}, separators=(",", ":")) for c in range(500)]
    to_vendor = json.dumps({"counterparty": "VEND"}, separators=(",", ":"))
    to_operator = json.dumps({"counterparty": "OPFI"}, separators=(",", ":"))
    days = [(FIRST_DAY + dt.timedelta(days=d)).isoformat() for d in range(31)]
    entries, postings = [], []
    for n in range(count):
        seq, day = n + 1, days[n * 30 // count]
        amount = ((n % 9_000) + 100) * 100 + n % 100
        entries.append((seq, f"usage-2026-10-{n:09d}", day, recorded, "Field service", "manual", None, None, None, HASH, HASH))
        postings += [
            (seq, 1, 1, amount, "EUR", customers[n % 500], day),
            (seq, 2, 2, -amount, "EUR", to_vendor, day),
            (seq, 3, 3, amount, "EUR", to_operator, day),
            (seq, 4, 4, -amount, "EUR", None, day),
        ]
        if len(entries) == batch:
            yield entries, postings
            entries, postings = [], []
    if entries:
        yield entries, postings


def run_baseline_sqlite(path: str, count: int, batch: int) -> dict:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON"):
        conn.execute(f"PRAGMA {pragma}")
    for ddl in BASELINE_DDL:
        conn.execute(ddl)
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    for entries, postings in baseline_rows(count, batch):
        conn.executemany("INSERT INTO journal_entries VALUES (?,?,?,?,?,?,?,?,?,?,?)", entries)
        conn.executemany("INSERT INTO postings VALUES (?,?,?,?,?,?,?)", postings)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return {"seconds": seconds, "rss_mb": peak_rss_mb()}


def run_baseline_postgresql(url: str, count: int, batch: int) -> dict:
    import psycopg
    from sqlalchemy.engine import make_url

    sa_url = make_url(url)
    conninfo = sa_url.set(drivername="postgresql").render_as_string(hide_password=False)
    options = sa_url.query.get("options")
    conninfo = conninfo.split("?")[0]
    with psycopg.connect(conninfo, options=options) as conn:
        for ddl in BASELINE_DDL:
            conn.execute(ddl)
        conn.commit()
        started = time.perf_counter()
        with conn.transaction():
            cursor = conn.cursor()
            for entries, postings in baseline_rows(count, batch):
                with cursor.copy("COPY journal_entries FROM STDIN") as copy:
                    for row in entries:
                        copy.write_row(row)
                with cursor.copy("COPY postings FROM STDIN") as copy:
                    for row in postings:
                        copy.write_row(row)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rss_mb": peak_rss_mb()}


# -- running ------------------------------------------------------------------------------


def in_child(function, *args) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


INPUTS = {
    "drafts": "posting service, drafts in (as posting rules, reversals, the API after parsing)",
    "documents": "interchange documents in, through the parser (as the API)",
    "jsonl": "JSON-lines file in, read and parsed (as `ecoledger post FILE`)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000, help="entries to post (default 100,000)")
    parser.add_argument("--batch-size", type=int, default=limits.BATCH_ENTRIES_MAX, help="entries per batch")
    parser.add_argument("--database", help="PostgreSQL URL (a fresh schema is used); default: SQLite in a temp dir")
    parser.add_argument("--input", choices=[*INPUTS, "all"], default="drafts",
                        help="what the service is given: " + "; ".join(f"{k}: {v}" for k, v in INPUTS.items())
                        + "; all: each in turn")
    args = parser.parse_args()
    count, batch = args.entries, args.batch_size
    kinds = list(INPUTS) if args.input == "all" else [args.input]
    workdir = tempfile.mkdtemp(prefix="ecoledger-bench-")
    jsonl_path = os.path.join(workdir, "entries.jsonl")
    if "jsonl" in kinds:
        with open(jsonl_path, "w") as out:
            for doc in documents(count):
                out.write(json.dumps(doc) + "\n")
    backend = "postgresql" if args.database else "sqlite"
    print(f"post_entries: {count:,} entries x 4 postings across 2 companies, batches of {batch:,}, "
          f"{backend}, all-or-nothing (one transaction)")
    results = {}
    cleanups = []

    def target() -> str:
        if backend == "sqlite":
            return f"sqlite:///{workdir}/{uuid.uuid4().hex}.db"
        url, drop = scratch_postgres_schema(args.database, prefix="bench")
        cleanups.append(drop)
        return url

    try:
        if backend == "sqlite":
            results["baseline"] = in_child(run_baseline_sqlite, f"{workdir}/baseline.db", count, batch)
            base_label = "baseline: raw sqlite3 executemany, same rows and indexes, no checks"
        else:
            results["baseline"] = in_child(run_baseline_postgresql, target(), count, batch)
            base_label = "baseline: raw psycopg COPY, same rows and indexes, no checks"
        for kind in kinds:
            results[kind] = in_child(run_ecoledger, target(), count, batch, kind, jsonl_path)
    finally:
        for cleanup in cleanups:
            cleanup()
    base = results["baseline"]
    for label, result in [(base_label, base)] + [(f"ecoledger: {INPUTS[k]}", results[k]) for k in kinds]:
        rate = count / result["seconds"]
        ratio = base["seconds"] / result["seconds"]
        print(f"  {label:88} {result['seconds']:8.2f} s {rate:9,.0f} entries/s  {ratio:5.2f} x baseline"
              f"  peak RSS {result['rss_mb']:5.0f} MB")
    print("  target: the posting service at >= 0.50 x baseline on SQLite at 1,000,000 entries")


if __name__ == "__main__":
    main()
