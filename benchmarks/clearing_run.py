#!/usr/bin/env python3
"""Benchmark: a clearing run and the statements over N posted usage lines for 200 partners.

200 vendors (``--partners``) each deliver one contract's field service for a 60% share with a monthly
minimum guarantee (half of them above what they earn, so half get a top-up). N usage lines
are imported first (aggregated posting, not measured). Then, measured: the clearing run for
the month (every partner's guarantee), and the month's statements (200 statements, each
recording the postings it sums). Beside them, a baseline measured in the same run: one SQL
aggregate over the same postings (the partners' position postings summed per account and
dimensions).

    python benchmarks/clearing_run.py --lines 1000000
    python benchmarks/clearing_run.py --lines 200000 --database postgresql+psycopg://postgres@127.0.0.1/test

Figures are recorded in docs/benchmarks.md. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rate_and_post_usage import CONTRACTS, FIRST_DAY, over_usage_file, peak_rss_mb  # noqa: E402

AGGREGATE = (
    "SELECT p.account_id, p.dimensions, sum(p.amount_minor), count(*) FROM postings p "
    "JOIN accounts a ON a.id = p.account_id "
    "WHERE a.name IN ('Assets:Ecosystem:DueFrom', 'Liabilities:Ecosystem:DueTo') "
    "AND p.effective_date BETWEEN '2026-10-01' AND '2026-10-31' GROUP BY p.account_id, p.dimensions"
)


def build(db, partners: int) -> None:
    from contracts import service
    from contracts.events import import_events
    from contracts.rules import load_rules
    from ledger import companies
    from partners.service import onboard_partner

    companies.add_company(db, "OPFI", "Operator", "EUR", actor="bench", roles=["operator"], open_date=FIRST_DAY)
    service.save_price_plan(db, {"code": "HOURLY", "currency": "EUR", "unit": "hour", "model": "per_unit",
                                 "unit_price": "95.00", "drivers": [
                                     {"attribute": "employee_level",
                                      "values": {"apprentice": "0.8", "technician": "1", "specialist": "1.4"}}]},
                            actor="bench")
    events = []
    for n in range(partners):
        vendor = f"V{n:03d}"
        guarantee = "1.00" if n % 2 else "1000000.00"  # half earn more than it, half are topped up
        onboard_partner(db, {"code": vendor, "name": f"Vendor {n}", "currency": "EUR", "roles": ["vendor"],
                             "open_date": "2026-10-01", "api_key": False, "agreements": [
                                 {"code": f"{vendor}-SHARE", "kind": "vendor_share", "counterparty": "OPFI",
                                  "versions": [{"version": 1, "effective_from": "2026-01-01",
                                                "terms": {"basis": "percent_of_price", "percent": "60",
                                                          "minimum_guarantee": guarantee, "period": "month"}}]}]},
                        actor="bench")
        service.save_customer(db, {"code": f"C-{n:03d}", "name": f"Customer {n}", "billing_company": "OPFI",
                                   "currency": "EUR"}, actor="bench")
        service.save_contract(db, {"code": f"K-{n:03d}", "customer": f"C-{n:03d}", "billing_company": "OPFI",
                                   "currency": "EUR", "start": "2026-10-01", "components": [
                                       {"code": "FIELD", "type": "usage", "service": "field-service",
                                        "price_plan": "HOURLY", "vendor": vendor}]}, actor="bench")
        events.append((n, {"id": f"act-{n}", "type": "activated", "contract": f"K-{n:03d}", "date": "2026-10-01"}))
    assert import_events(db, events, rules=load_rules(), actor="bench").accepted == partners


def run(url: str, path: str, count: int, partners: int = CONTRACTS) -> dict:
    from sqlalchemy import text

    from clearing.run import run_clearing
    from clearing.statements import issue_statements
    from contracts.rules import load_rules
    from ecoledger.schema import metadata
    from ledger.database import Database
    from usage.lines import read_lines
    from usage.service import Options, import_usage

    db = Database(url)
    metadata.create_all(db.engine)
    build(db, partners)
    rules = load_rules()
    with open(path, "rb") as stream:
        imported = import_usage(db, read_lines(stream, "jsonl"), options=Options(rules, "bench", posting="aggregated"),
                                source=path, file_format="jsonl")
    assert imported.posted == count, (imported.rejected, imported.outcomes[:2])
    started = time.perf_counter()
    with db.read() as conn:
        groups = len(conn.execute(text(AGGREGATE)).all())
    aggregate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    cleared = run_clearing(db, "2026-10", rules=rules, actor="bench")
    clearing_seconds = time.perf_counter() - started
    started = time.perf_counter()
    statements = issue_statements(db, "2026-10", actor="bench")
    statement_seconds = time.perf_counter() - started
    assert len(cleared.items) == partners // 2 and len(statements.issued) == partners and groups >= partners
    # November's run: every guarantee tops up in full (no usage), and October, cleared, is
    # revisited for late events (none: nothing posts for it).
    started = time.perf_counter()
    november = run_clearing(db, "2026-11", rules=rules, actor="bench")
    next_seconds = time.perf_counter() - started
    assert {item.window_start.month for item in november.items} == {11} and len(november.items) == partners
    db.dispose()
    return {"aggregate": aggregate_seconds, "clearing": clearing_seconds, "statements": statement_seconds,
            "next": next_seconds, "rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=200_000, help="usage lines (default 200,000)")
    parser.add_argument("--partners", type=int, default=CONTRACTS, help=f"vendors, one contract each (default {CONTRACTS})")
    parser.add_argument("--database", help="PostgreSQL URL (a fresh schema); default: SQLite in a temp dir")
    args = parser.parse_args()
    partners = max(2, min(args.partners, CONTRACTS))

    def shape(record: dict) -> dict:
        # every visit by a technician (the plan's one driver), on one of the partners' contracts
        return {**record, "contract": f"K-{int(record['contract'][2:]) % partners:03d}",
                "attributes": {"employee_level": "technician"}}

    result = over_usage_file(args.lines, "ecoledger-clearing-bench-", args.database,
                             functools.partial(run, partners=partners), shape=shape)
    backend = "postgresql" if args.database else "sqlite"
    print(f"clearing_run: {args.lines:,} posted usage lines, {partners} partners, {backend}")
    rows = [("baseline: one SQL aggregate of the partners' positions", result["aggregate"], ""),
            (f"ecoledger clearing run ({partners} guarantees, {partners // 2} top-ups)", result["clearing"],
             f"  {result['clearing'] / result['aggregate']:6.1f} x the aggregate"),
            (f"ecoledger statements ({partners}, every posting recorded)", result["statements"],
             f"  {result['statements'] / result['aggregate']:6.1f} x the aggregate"),
            ("the next month's clearing run (October revisited for late events)", result["next"],
             f"  {result['next'] / result['aggregate']:6.1f} x the aggregate  peak RSS {result['rss_mb']:5.0f} MB")]
    for label, seconds, tail in rows:
        print(f"  {label:<62}{seconds:8.2f} s{tail}")

if __name__ == "__main__":
    main()
