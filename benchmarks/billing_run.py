#!/usr/bin/env python3
"""Benchmark: a billing run over N posted usage lines of 200 contracts.

The lines are imported first (aggregated posting, not measured), then one billing run
invoices all of them: 200 invoices, one per customer, each posted, every usage line mapped
to its invoice line. Beside it, a baseline measured in the same run: the one SQL aggregate
the run starts from (usage summed per customer and contract component) over the same lines.

    python benchmarks/billing_run.py --lines 1000000
    python benchmarks/billing_run.py --lines 200000 --database postgresql+psycopg://postgres@127.0.0.1/test

Figures are recorded in docs/benchmarks.md. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rate_and_post_usage import build_ecosystem, over_usage_file, peak_rss_mb  # noqa: E402

AGGREGATE = (
    "SELECT c.customer_id, u.contract_id, u.component, sum(u.quantity_micro), sum(u.amount_minor), count(*) "
    "FROM usage_lines u JOIN contracts c ON c.id = u.contract_id "
    "GROUP BY c.customer_id, u.contract_id, u.component"
)


def run(url: str, path: str, count: int) -> dict:
    from sqlalchemy import text

    from billing.service import run_billing
    from contracts.rules import load_rules
    from ecoledger.schema import metadata
    from ledger.database import Database
    from usage.lines import read_lines
    from usage.service import Options, import_usage

    db = Database(url)
    metadata.create_all(db.engine)
    build_ecosystem(db)
    rules = load_rules()
    with open(path, "rb") as stream:
        imported = import_usage(db, read_lines(stream, "jsonl"), options=Options(rules, "bench", posting="aggregated"),
                                source=path, file_format="jsonl")
    assert imported.posted == count
    started = time.perf_counter()
    with db.read() as conn:
        groups = len(conn.execute(text(AGGREGATE)).all())
    aggregate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    report = run_billing(db, "OPFI", "2026-10", rules=rules, actor="bench")
    billing_seconds = time.perf_counter() - started
    assert report.usage_lines == count and len(report.invoices) == groups
    db.dispose()
    return {"aggregate": aggregate_seconds, "billing": billing_seconds, "invoices": len(report.invoices),
            "rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=200_000, help="usage lines (default 200,000)")
    parser.add_argument("--database", help="PostgreSQL URL (a fresh schema); default: SQLite in a temp dir")
    args = parser.parse_args()
    result = over_usage_file(args.lines, "ecoledger-billing-bench-", args.database, run)
    backend = "postgresql" if args.database else "sqlite"
    print(f"billing_run: {args.lines:,} posted usage lines of 200 contracts, {backend}")
    print(f"  baseline: one SQL aggregate per customer and component      {result['aggregate']:8.2f} s")
    print(f"  ecoledger billing run ({result['invoices']} invoices, posted, lines mapped)   {result['billing']:8.2f} s"
          f"  {args.lines / result['billing']:10,.0f} lines/s  {result['billing'] / result['aggregate']:6.1f} x the "
          f"aggregate  peak RSS {result['rss_mb']:5.0f} MB")


if __name__ == "__main__":
    main()
