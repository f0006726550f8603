#!/usr/bin/env python3
"""Benchmark: the read paths over a ledger of N entries (4 postings each, 2 companies).

Each figure is printed beside a baseline measured in the same run:

* verify (every invariant recomputed from the stored rows) against beancount loading and
  validating the exported file (what `bean-check` does with the same entries);
* the beancount export against the same beancount load;
* a trial balance at a date (one index seek per account) against the plain SQL sum of the
  postings up to that date, which grows with the history.

    python benchmarks/read_paths.py --entries 200000
    python benchmarks/read_paths.py --entries 200000 --database postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from post_entries import FIRST_DAY, drafts  # noqa: E402
from sqlalchemy import text  # noqa: E402

from ecoledger.schema import metadata  # noqa: E402
from ledger import companies  # noqa: E402
from ledger.database import Database, scratch_postgres_schema  # noqa: E402
from ledger.export import export_beancount  # noqa: E402
from ledger.posting import post_entries  # noqa: E402
from ledger.reports import trial_balance  # noqa: E402
from ledger.verify import verify  # noqa: E402


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def best_of(repeats: int, function, *args):
    return min(timed(function, *args)[0] for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--database", help="PostgreSQL URL (a fresh schema is used); default: SQLite")
    args = parser.parse_args()
    count = args.entries
    workdir = tempfile.mkdtemp(prefix="ecoledger-bench-")
    cleanup = None
    if args.database:
        url, cleanup = scratch_postgres_schema(args.database, prefix="bench")
    else:
        url = f"sqlite:///{workdir}/ledger.db"
    db = Database(url)
    try:
        metadata.create_all(db.engine)
        for code, roles in (("OPFI", ["operator"]), ("VEND", ["vendor"])):
            companies.add_company(db, code, code, "EUR", actor="bench", roles=roles, open_date=FIRST_DAY)
        gc.freeze()
        seconds, _ = timed(post_entries, db, drafts(count), actor="bench")
        print(f"read_paths: {count:,} entries x 4 postings, {db.dialect_name} (posted in {seconds:.1f} s)")

        seconds, report = timed(verify, db)
        assert report.ok, report.violations[:3]
        print(f"  {'ecoledger verify (every invariant, hash chain, balance replay)':66} {seconds:8.2f} s "
              f"{count / seconds:10,.0f} entries/s")

        path = os.path.join(workdir, "ledger.beancount")
        with open(path, "w", encoding="utf-8") as out:
            seconds, _ = timed(export_beancount, db, out)
        print(f"  {'ecoledger export beancount':66} {seconds:8.2f} s {count / seconds:10,.0f} entries/s")

        from beancount import loader

        seconds, (_, errors, _) = timed(loader.load_file, path)
        assert not errors, errors[:3]
        print(f"  {'baseline: beancount loads and validates the same entries':66} {seconds:8.2f} s "
              f"{count / seconds:10,.0f} entries/s")

        day = FIRST_DAY + dt.timedelta(days=14)
        ours = best_of(5, lambda: trial_balance(db, as_of=day))
        naive_sql = text(
            "SELECT account_id, currency, SUM(amount_minor) FROM postings "
            "WHERE effective_date <= :day GROUP BY account_id, currency"
        )

        def naive() -> list:
            with db.read() as conn:
                return conn.execute(naive_sql, {"day": day}).all()

        baseline = best_of(5, naive)
        print(f"  {'ecoledger trial balance at a date (one seek per account)':66} {ours * 1000:8.2f} ms")
        print(f"  {'baseline: SQL sum of the postings up to that date':66} {baseline * 1000:8.2f} ms")
    finally:
        db.dispose()
        if cleanup:
            cleanup()


if __name__ == "__main__":
    main()
