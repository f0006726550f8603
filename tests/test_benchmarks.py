"""The benchmarks still run (tiny sizes). They report figures; tests never assert timings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BACKEND, POSTGRES_URL, require_postgres

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def database_args() -> list[str]:
    if BACKEND == "postgresql":
        require_postgres()
        return ["--database", POSTGRES_URL]
    return []


def test_post_entries_benchmark_runs(database_args):
    out = run("post_entries.py", "--entries", "300", "--batch-size", "100", "--input", "all", *database_args)
    assert "baseline:" in out and out.count("entries/s") == 4 and "x baseline" in out


def test_read_paths_benchmark_runs(database_args):
    out = run("read_paths.py", "--entries", "300", *database_args)
    assert "ecoledger verify" in out and "beancount loads" in out and "trial balance" in out


def test_api_statements_benchmark_runs(database_args):
    out = run("api_statements.py", "--entries", "300", "--rate", "20", "--seconds", "1", "--workers", "1", *database_args)
    assert "baseline:" in out and "errors: 0 of 20" in out and "x baseline" in out


def test_usage_benchmarks_run(database_args):
    out = run("rate_and_post_usage.py", "--lines", "400", *database_args)
    assert "baseline:" in out and out.count(" lines/s  ") == 3 and "aggregated posting" in out
    out = run("billing_run.py", "--lines", "400", *database_args)
    assert "200 invoices" in out and "x the aggregate" in out


def test_clearing_benchmark_runs(database_args):
    out = run("clearing_run.py", "--lines", "400", "--partners", "10", *database_args)
    assert "baseline:" in out and "10 guarantees, 5 top-ups" in out and out.count("x the aggregate") == 3
    assert "October revisited" in out


def test_close_benchmark_runs(database_args):
    out = run("close_month.py", "--contracts", "30", *database_args)
    assert "baseline:" in out and "30 entries" in out and out.count("x the aggregate") == 2
