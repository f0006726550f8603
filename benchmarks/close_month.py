#!/usr/bin/env python3
"""Benchmark: the controller's close of one month for N contracts with 12 months of history.

N contracts (``--contracts``, default 100,000) of one operator, each a monthly service desk
billed in advance (250.00 to 350.00, on one of 28 billing days) and a set-up fee (150.00,
allocated by standalone selling price), start in one of the twelve months before the month
closed, and are activated (their set-up fees posted).
History, not measured: the months up to August 2026 are locked (closed elsewhere, with
no recognition here), September 2026 is billed and closed (its close catches up the ten
months before it: contract assets of months never billed), then October is billed. Measured: the close of October: its schedules (twelve billing periods per
contract), the readiness checks (verify among them, also timed alone), the recognition
batch (one entry per contract) and the lock. Beside it, a baseline measured in the same run:
one SQL aggregate of the same contracts' revenue and contract liability postings.

    python benchmarks/close_month.py --contracts 100000
    python benchmarks/close_month.py --contracts 20000 --database postgresql+psycopg://postgres@127.0.0.1/test

Figures are recorded in docs/benchmarks.md. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rate_and_post_usage import in_child, peak_rss_mb  # noqa: E402

from ledger.database import scratch_postgres_schema  # noqa: E402

START = dt.date(2025, 11, 1)
LOAD_CHUNK = 5_000
SSP = """
prices:
  - {service: desk, currency: EUR, effective_from: 2025-01-01, amount: "300.00", per: month, method: observable}
  - {service: onboarding, currency: EUR, effective_from: 2025-01-01, amount: "200.00", per: unit,
     method: expected_cost_plus_margin}
"""
AGGREGATE = (
    "SELECT p.account_id, p.dimensions, sum(p.amount_minor), count(*) FROM postings p "
    "JOIN accounts a ON a.id = p.account_id "
    "WHERE a.name IN ('Liabilities:ContractLiabilities', 'Income:Subscriptions', 'Income:OneOff') "
    "AND p.effective_date <= '2026-10-31' GROUP BY p.account_id, p.dimensions"
)


def _start(n: int) -> dt.date:
    """Contracts start on a day of one of the twelve months before October 2026, spread."""
    month = START.month - 1 + n % 12
    return dt.date(START.year + month // 12, month % 12 + 1, 1 + n // 12 % 28)


def build(db, contracts: int, say) -> None:
    from billing.service import run_billing
    from contracts.ecosystem import load_ecosystem
    from contracts.events import import_events
    from contracts.rules import load_rules
    from ledger import companies
    from ledger.periods import close_period
    from revrec.close import run_close
    from revrec.ssp import parse_ssp_table

    rules = load_rules()
    companies.add_company(db, "OPFI", "Operator", "EUR", actor="bench", roles=["operator"],
                          open_date=dt.date(2025, 1, 1))
    for first in range(0, contracts, LOAD_CHUNK):
        numbers = range(first, min(first + LOAD_CHUNK, contracts))
        load_ecosystem(db, {
            "customers": [{"code": f"C-{n:06d}", "name": f"Customer {n}", "billing_company": "OPFI",
                           "currency": "EUR"} for n in numbers],
            "contracts": [{"code": f"K-{n:06d}", "customer": f"C-{n:06d}", "billing_company": "OPFI",
                           "currency": "EUR", "start": _start(n).isoformat(),
                           "billing": {"frequency": "monthly", "day": 1 + n % 28}, "components": [
                               {"code": "DESK", "type": "recurring_fee", "service": "desk",
                                "amount": f"{250 + n % 5 * 25}.00", "timing": "in_advance"},
                               {"code": "SETUP", "type": "one_off_fee", "service": "onboarding",
                                "amount": "150.00"}]} for n in numbers]}, actor="bench")
        events = [(n, {"id": f"act-{n}", "type": "activated", "contract": f"K-{n:06d}",
                       "date": _start(n).isoformat()}) for n in numbers]
        assert import_events(db, events, rules=rules, actor="bench").accepted == len(numbers)
    say(f"  (set-up: {contracts:,} contracts loaded and activated)")
    ssp = parse_ssp_table(SSP, "benchmark")
    month = START
    while month < dt.date(2026, 9, 1):  # earlier months locked as closed before (no recognition)
        close_period(db, "OPFI", f"{month:%Y-%m}", actor="bench")
        month = (month + dt.timedelta(days=32)).replace(day=1)
    run_billing(db, "OPFI", "2026-09", rules=rules, actor="bench")
    closed = run_close(db, "OPFI", "2026-09", ssp=ssp, day_count="actual_days", actor="bench",
                       accept={"billing": "history: the months before September were not billed"})
    assert closed.outcome == "closed", closed.checks
    run_billing(db, "OPFI", "2026-10", rules=rules, actor="bench")
    say("  (set-up: September billed and closed, October billed)")


def set_up(url: str, contracts: int) -> None:
    """The history, in a process of its own: the measured process's peak memory is then the
    close's, not the set-up's billing runs'."""
    from ecoledger.schema import metadata
    from ledger.database import Database

    db = Database(url)
    metadata.create_all(db.engine)
    build(db, contracts, print)
    db.dispose()


def run(url: str, contracts: int) -> dict:
    from sqlalchemy import text

    from ledger.database import Database
    from ledger.verify import verify
    from revrec.close import run_close
    from revrec.ssp import parse_ssp_table

    db = Database(url)
    ssp = parse_ssp_table(SSP, "benchmark")
    started = time.perf_counter()
    with db.read() as conn:
        groups = len(conn.execute(text(AGGREGATE)).all())
    aggregate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    verified = verify(db)
    verify_seconds = time.perf_counter() - started
    assert verified.ok
    started = time.perf_counter()
    report = run_close(db, "OPFI", "2026-10", ssp=ssp, day_count="actual_days", actor="bench")
    close_seconds = time.perf_counter() - started
    assert report.outcome == "closed" and len(report.recognitions) == contracts, report.checks
    assert groups >= contracts
    db.dispose()
    return {"aggregate": aggregate_seconds, "verify": verify_seconds, "close": close_seconds,
            "entries": len(report.recognitions), "rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contracts", type=int, default=100_000, help="contracts (default 100,000)")
    parser.add_argument("--database", help="PostgreSQL URL (a fresh schema); default: SQLite in a temp dir")
    args = parser.parse_args()
    contracts = max(1, args.contracts)
    cleanups = []
    if args.database:
        url, drop = scratch_postgres_schema(args.database, prefix="bench")
        cleanups.append(drop)
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='ecoledger-close-bench-')}/{uuid.uuid4().hex}.db"
    try:
        in_child(set_up, url, contracts)
        result = in_child(run, url, contracts)
    finally:
        for cleanup in cleanups:
            cleanup()
    backend = "postgresql" if args.database else "sqlite"
    print(f"close_month: the close of 2026-10 for {contracts:,} contracts with 12 months of history, {backend}")
    rows = [("baseline: one SQL aggregate of the contracts' revenue and liability", result["aggregate"], ""),
            ("ecoledger verify (the close's verify check, alone)", result["verify"],
             f"  {result['verify'] / result['aggregate']:6.1f} x the aggregate"),
            (f"ecoledger close run (checks, {result['entries']:,} entries, lock)", result["close"],
             f"  {result['close'] / result['aggregate']:6.1f} x the aggregate  peak RSS {result['rss_mb']:5.0f} MB "
             "(the measuring process: verify and the close)")]
    for label, seconds, tail in rows:
        print(f"  {label:<62}{seconds:8.2f} s{tail}")


if __name__ == "__main__":
    main()
