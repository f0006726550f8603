#!/usr/bin/env python3
"""Benchmark: N usage lines through import, mediation, rating and posting.

The lines are a JSON-lines file over 200 contracts with a vendor (60% share) and, on half
of them, a reseller (10% commission), priced per hour with two price drivers (employee
level, weekend). They are imported with `ecoledger import usage`'s own code path (file
read, checked, mediated, rated, posted, lines stored) twice: posted per line, and
aggregated per contract component and day. Beside them, a baseline measured in the same
run: the postings per-line posting writes (an entry and 6 or 10 postings a line), inserted
by raw sqlite3 executemany (or psycopg COPY) into plain tables with the same indexes, no
checks. Each measurement runs in a fresh process so that its peak RSS is its own.

    python benchmarks/rate_and_post_usage.py --lines 1000000
    python benchmarks/rate_and_post_usage.py --lines 200000 --database postgresql+psycopg://postgres@127.0.0.1/test

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

from ledger.database import scratch_postgres_schema  # noqa: E402

CONTRACTS = 200
FIRST_DAY = dt.date(2026, 10, 1)
HASH = "0" * 64
LEVELS = ("apprentice", "technician", "specialist")


def usage_lines(count: int) -> Iterator[dict]:
    for n in range(count):
        day = FIRST_DAY + dt.timedelta(days=n * 31 // count)
        yield {"id": f"u-{n:09d}", "timestamp": f"{day.isoformat()}T{8 + n % 10:02d}:{n % 60:02d}:00+03:00",
               "contract": f"K-{n % CONTRACTS:03d}", "service": "field-service", "quantity": f"{1 + n % 4}.{n % 4 * 25:02d}",
               "unit": "hour", "attributes": {"employee_level": LEVELS[n % 3]}}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_ecosystem(db) -> None:
    from contracts import service
    from contracts.events import import_events
    from contracts.rules import load_rules
    from ledger import companies
    from partners.service import onboard_partner

    companies.add_company(db, "OPFI", "Operator", "EUR", actor="bench", roles=["operator"], open_date=FIRST_DAY)
    onboard_partner(db, {"code": "FIXR", "name": "Vendor", "currency": "EUR", "roles": ["vendor"], "open_date": "2026-10-01",
                         "api_key": False, "agreements": [{"code": "FIXR-SHARE", "kind": "vendor_share", "counterparty": "OPFI",
                                                           "versions": [{"version": 1, "effective_from": "2026-01-01",
                                                                         "terms": {"basis": "percent_of_price", "percent": "60"}}]}]},
                    actor="bench")
    onboard_partner(db, {"code": "RESL", "name": "Reseller", "currency": "EUR", "roles": ["reseller"],
                         "open_date": "2026-10-01", "api_key": False,
                         "agreements": [{"code": "RESL-COMM", "kind": "reseller_commission", "counterparty": "OPFI",
                                         "versions": [{"version": 1, "effective_from": "2026-01-01", "terms": {"percent": "10"}}]}]},
                    actor="bench")
    service.save_price_plan(db, {"code": "HOURLY", "currency": "EUR", "unit": "hour", "model": "per_unit", "unit_price": "95.00",
                                 "drivers": [{"attribute": "employee_level",
                                              "values": {"apprentice": "0.8", "technician": "1", "specialist": "1.4"}},
                                             {"calendar": "weekend", "multiplier": "1.5"}]}, actor="bench")
    events = []
    for n in range(CONTRACTS):
        service.save_customer(db, {"code": f"C-{n:03d}", "name": f"Customer {n}", "billing_company": "OPFI", "currency": "EUR"},
                              actor="bench")
        component = {"code": "FIELD", "type": "usage", "service": "field-service", "price_plan": "HOURLY", "vendor": "FIXR"}
        if n % 2:
            component["reseller"] = "RESL"
        service.save_contract(db, {"code": f"K-{n:03d}", "customer": f"C-{n:03d}", "billing_company": "OPFI",
                                   "currency": "EUR", "start": "2026-10-01", "components": [component]}, actor="bench")
        events.append((n, {"id": f"act-{n}", "type": "activated", "contract": f"K-{n:03d}", "date": "2026-10-01"}))
    assert import_events(db, events, rules=load_rules(), actor="bench").accepted == CONTRACTS


def run_ecoledger(url: str, path: str, count: int, posting: str) -> dict:
    from contracts.rules import load_rules
    from ecoledger.schema import metadata
    from ledger.database import Database
    from usage.lines import read_lines
    from usage.service import Options, import_usage

    db = Database(url)
    metadata.create_all(db.engine)
    build_ecosystem(db)
    gc.freeze()  # as the ecoledger CLI does after start-up
    started = time.perf_counter()
    with open(path, "rb") as stream:
        report = import_usage(db, read_lines(stream, "jsonl"), options=Options(load_rules(), "bench", posting=posting),
                              source=path, file_format="jsonl")
    seconds = time.perf_counter() - started
    assert report.posted == count, (report.posted, report.rejected, report.outcomes[:3])
    db.dispose()
    return {"seconds": seconds, "rss_mb": peak_rss_mb(), "entries": report.entries_posted}


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
BATCH = 5_000


def baseline_rows(count: int) -> Iterator[tuple[list, list]]:
    """The entry and posting rows per-line posting writes, built as cheaply as Python can:
    amounts precomputed, no parsing, rating, validation, hashing or balances."""
    recorded = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    dims = [json.dumps({"contract": f"K-{n:03d}", "customer": f"C-{n:03d}", "service": "field-service"},
                       separators=(",", ":")) for n in range(CONTRACTS)]
    entries, postings = [], []
    for n in range(count):
        seq = n + 1
        day = (FIRST_DAY + dt.timedelta(days=n * 31 // count)).isoformat()
        price = 9500 * (1 + n % 4)
        cost, commission = price * 6 // 10, price // 10
        entries.append((seq, f"usage:u-{n:09d}", day, recorded, f"usage u-{n:09d}", "usage_line", f"u-{n:09d}",
                        '{"contract":"K"}', None, HASH, HASH))
        d = dims[n % CONTRACTS]
        lines = [(1, price, d), (2, -price, d), (3, cost, d), (4, -cost, d), (5, cost, d), (6, -cost, d)]
        if n % CONTRACTS % 2:
            lines += [(7, commission, d), (8, -commission, d), (9, commission, d), (10, -commission, d)]
        postings += [(seq, line_no, line_no, amount, "EUR", dimensions, day) for line_no, amount, dimensions in lines]
        if len(entries) == BATCH:
            yield entries, postings
            entries, postings = [], []
    if entries:
        yield entries, postings


def run_baseline_sqlite(path: str, count: int) -> dict:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON"):
        conn.execute(f"PRAGMA {pragma}")
    for ddl in BASELINE_DDL:
        conn.execute(ddl)
    started = time.perf_counter()
    for entries, postings in baseline_rows(count):
        conn.execute("BEGIN IMMEDIATE")  # one commit per batch, as the import does
        conn.executemany("INSERT INTO journal_entries VALUES (?,?,?,?,?,?,?,?,?,?,?)", entries)
        conn.executemany("INSERT INTO postings VALUES (?,?,?,?,?,?,?)", postings)
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return {"seconds": seconds, "rss_mb": peak_rss_mb(), "entries": count}


def run_baseline_postgresql(url: str, count: int) -> dict:
    import psycopg
    from sqlalchemy.engine import make_url

    sa_url = make_url(url)
    options = sa_url.query.get("options")
    conninfo = sa_url.set(drivername="postgresql").render_as_string(hide_password=False).split("?")[0]
    with psycopg.connect(conninfo, options=options) as conn:
        for ddl in BASELINE_DDL:
            conn.execute(ddl)
        conn.commit()
        started = time.perf_counter()
        cursor = conn.cursor()
        for entries, postings in baseline_rows(count):
            with conn.transaction():
                with cursor.copy("COPY journal_entries FROM STDIN") as copy:
                    for row in entries:
                        copy.write_row(row)
                with cursor.copy("COPY postings FROM STDIN") as copy:
                    for row in postings:
                        copy.write_row(row)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rss_mb": peak_rss_mb(), "entries": count}


def over_usage_file(count: int, prefix: str, database: str | None, run, shape=None) -> dict:
    """Write ``count`` usage lines to a JSON-lines file (each record passed through
    ``shape``), then call ``run(url, path, count)`` in a fresh process on a fresh database
    (a scratch PostgreSQL schema, or SQLite in a temp dir); clean up after."""
    workdir = tempfile.mkdtemp(prefix=prefix)
    path = os.path.join(workdir, "usage.jsonl")
    with open(path, "w") as out:
        for record in usage_lines(count):
            out.write(json.dumps(shape(record) if shape else record) + "\n")
    cleanups = []
    if database:
        url, drop = scratch_postgres_schema(database, prefix="bench")
        cleanups.append(drop)
    else:
        url = f"sqlite:///{workdir}/{uuid.uuid4().hex}.db"
    try:
        return in_child(run, url, path, count)
    finally:
        for cleanup in cleanups:
            cleanup()
        os.remove(path)


def in_child(function, *args) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="usage lines to import (default 100,000)")
    parser.add_argument("--database", help="PostgreSQL URL (a fresh schema per run); default: SQLite in a temp dir")
    parser.add_argument("--posting", choices=["line", "aggregated", "both"], default="both")
    args = parser.parse_args()
    count = args.lines
    workdir = tempfile.mkdtemp(prefix="ecoledger-usage-bench-")
    path = os.path.join(workdir, "usage.jsonl")
    with open(path, "w") as out:
        for record in usage_lines(count):
            out.write(json.dumps(record) + "\n")
    backend = "postgresql" if args.database else "sqlite"
    print(f"rate_and_post_usage: {count:,} usage lines ({os.path.getsize(path) / 1e6:,.0f} MB of JSON lines) over "
          f"{CONTRACTS} contracts, per_unit with 2 drivers, vendor 60% on all, reseller 10% on half, {backend}")
    cleanups = []

    def target() -> str:
        if backend == "sqlite":
            return f"sqlite:///{workdir}/{uuid.uuid4().hex}.db"
        url, drop = scratch_postgres_schema(args.database, prefix="bench")
        cleanups.append(drop)
        return url

    results = []
    try:
        if backend == "sqlite":
            base = in_child(run_baseline_sqlite, f"{workdir}/baseline.db", count)
            results.append(("baseline: raw sqlite3 executemany of the same entries and postings, no checks", base))
        else:
            base = in_child(run_baseline_postgresql, target(), count)
            results.append(("baseline: raw psycopg COPY of the same entries and postings, no checks", base))
        modes = ["line", "aggregated"] if args.posting == "both" else [args.posting]
        for mode in modes:
            results.append((f"ecoledger import usage, {mode} posting (read, mediate, rate, post, store lines)",
                            in_child(run_ecoledger, target(), path, count, mode)))
    finally:
        for cleanup in cleanups:
            cleanup()
        os.remove(path)
    for label, result in results:
        rate = count / result["seconds"]
        ratio = base["seconds"] / result["seconds"]
        print(f"  {label:84} {result['seconds']:8.2f} s {rate:9,.0f} lines/s  {ratio:5.2f} x baseline  "
              f"{result['entries']:>9,} entries  peak RSS {result['rss_mb']:5.0f} MB")
    print("  targets at 1,000,000 lines: per-line posting >= 0.50 x baseline; aggregated >= 100,000 lines/s; "
          "memory bounded")


if __name__ == "__main__":
    main()
