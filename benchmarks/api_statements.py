#!/usr/bin/env python3
"""Benchmark: statement fetches through the API, at a fixed request rate, against a real
`ecoledger serve` (gunicorn in its own processes), on a ledger of N entries.

A partner key fetches pages of its account statement for a random day of the month (100
lines a page). Requests are sent open-loop: request i is due at start + i / rate, whatever
happened to the ones before, and its latency counts from when it was due, so a slow server
shows up as latency instead of quietly lowering the rate (no coordinated omission).

Printed beside it, measured in the same run: the same statement pages read by calling the
service function in-process (no HTTP, no JSON, no authentication), serially.

Until settlement statements exist (issue 6), the account statement is the statement a
partner pulls.

    python benchmarks/api_statements.py --entries 200000 --rate 200 --seconds 20
    python benchmarks/api_statements.py --database postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from post_entries import FIRST_DAY, drafts  # noqa: E402

from access.keys import issue_key  # noqa: E402
from ecoledger import migrate  # noqa: E402
from ledger import companies  # noqa: E402
from ledger.database import Database, scratch_postgres_schema  # noqa: E402
from ledger.posting import post_entries  # noqa: E402
from ledger.reports import statement_page  # noqa: E402

COMPANY, ACCOUNT = "VEND", "Assets:Ecosystem:DueFrom"
PAGE_LINES = 100


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def days(seed: int, count: int) -> list[dt.date]:
    rng = random.Random(seed)
    return [FIRST_DAY + dt.timedelta(days=rng.randrange(30)) for _ in range(count)]


def build(url: str, count: int) -> str:
    db = Database(url)
    migrate.upgrade(db)  # `ecoledger serve` refuses a database without its schema version
    for code, roles in (("OPFI", ["operator"]), ("VEND", ["vendor"])):
        companies.add_company(db, code, code, "EUR", actor="bench", roles=roles, open_date=FIRST_DAY)
    post_entries(db, drafts(count), actor="bench")
    token = issue_key(db, name="bench partner", role="partner", company=COMPANY, actor="bench").token
    db.dispose()
    return token


def in_process(url: str, requests: list[dt.date]) -> list[float]:
    db = Database(url)
    latencies = []
    for day in requests:
        started = time.perf_counter()
        page = statement_page(db, COMPANY, ACCOUNT, date_from=day, date_to=day, limit=PAGE_LINES)
        latencies.append(time.perf_counter() - started)
        assert page.lines, day
    db.dispose()
    return latencies


class Client:
    """One keep-alive connection per thread, as a real client library would keep."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token, self.local = port, token, threading.local()

    def get(self, path: str) -> int:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            self.local.connection = None
            return 0
        if response.status == 200 and not json.loads(body)["lines"]:
            return -1  # an empty statement would make the figure meaningless
        return response.status


def load(port: int, token: str, requests: list[dt.date], rate: float, threads: int) -> tuple[list[float], int, float]:
    client = Client(port, token)
    path = f"/companies/{COMPANY}/accounts/{ACCOUNT}/statement?limit={PAGE_LINES}"
    start = time.perf_counter() + 0.5

    def one(index: int, day: dt.date) -> tuple[float, int]:
        due = start + index / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        status = client.get(f"{path}&from={day}&to={day}")
        return time.perf_counter() - due, status

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, range(len(requests)), requests))
    elapsed = time.perf_counter() - start
    latencies = [latency for latency, status in results if status == 200]
    errors = sum(1 for _, status in results if status != 200)
    return latencies, errors, elapsed


def serve(url: str, port: int, workers: int, workdir: str) -> subprocess.Popen:
    executable = shutil.which("ecoledger", path=os.path.dirname(sys.executable)) or "ecoledger"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOLEDGER_")}
    env["ECOLEDGER_DATA_DIR"] = os.path.join(workdir, "data")
    server = subprocess.Popen(
        [executable, "--database", url, "serve", "--port", str(port), "--workers", str(workers),
         "--no-job-worker", "--no-access-log"],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ready")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"ecoledger serve did not start: {server.stderr.read().decode()}")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of the load")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--threads", type=int, default=32, help="client threads")
    parser.add_argument("--database", help="PostgreSQL URL (a fresh schema is used); default: SQLite")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="ecoledger-bench-")
    cleanup = None
    if args.database:
        url, cleanup = scratch_postgres_schema(args.database, prefix="bench")
    else:
        url = f"sqlite:///{workdir}/ledger.db"
    server = None
    try:
        token = build(url, args.entries)
        total = max(1, int(args.rate * args.seconds))
        print(f"api_statements: {args.entries:,} entries, {Database(url).dialect_name}, statement pages of "
              f"{PAGE_LINES} lines for a random day, {total:,} requests at {args.rate:g}/s, {args.workers} server processes")

        baseline = in_process(url, days(1, min(total, 2_000)))
        print(f"  {'baseline: service function in-process, serial':48} p50 {statistics.median(baseline) * 1000:7.2f} ms"
              f"  p99 {percentile(baseline, 0.99) * 1000:7.2f} ms")

        port = free_port()
        server = serve(url, port, args.workers, workdir)
        latencies, errors, elapsed = load(port, token, days(2, total), args.rate, args.threads)
        if latencies:
            print(f"  {'ecoledger serve over HTTP, fixed rate':48} p50 {statistics.median(latencies) * 1000:7.2f} ms"
                  f"  p99 {percentile(latencies, 0.99) * 1000:7.2f} ms  max {max(latencies) * 1000:7.1f} ms")
        print(f"  achieved {total / elapsed:,.1f} requests/s; errors: {errors} of {total}")
        print(f"  p50 {statistics.median(latencies) / statistics.median(baseline):.1f}x baseline" if latencies else "  no successful request")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        if cleanup:
            cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
