"""The command line: every command, its formats, its exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import click
import pytest
from beancount import loader
from click.testing import CliRunner

from ecoledger.cli import main

from helpers import entry, jsonl


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *all_commands(main)], ids=lambda p: " ".join(p) or "ecoledger")
def test_every_command_has_help(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_init_is_idempotent(cli):
    code, out, _ = cli("init")
    assert code == 0 and "(empty) -> 0011" in out
    code, out, _ = cli("init")
    assert code == 0 and "up to date" in out


def test_commands_need_an_initialised_database(cli):
    code, _, err = cli("company", "list")
    assert code == 3 and "run `ecoledger init` first" in err


def test_unreachable_or_unsupported_database(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["--database", "mysql://nowhere/x", "company", "list"])
    assert result.exit_code == 3 and "unsupported database" in result.stderr
    result = runner.invoke(main, ["--database", "postgresql+psycopg://nobody@127.0.0.1:1/x", "company", "list"])
    assert result.exit_code == 3 and "database unavailable" in result.stderr


def test_bad_settings_file_is_a_usage_error(tmp_path, monkeypatch):
    settings = tmp_path / "ecoledger.toml"
    settings.write_text('databse_url = "sqlite:///x.db"\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["company", "list"])
    assert result.exit_code == 2 and "unknown setting(s) databse_url" in result.stderr


def test_company_and_account_commands(ready):
    code, out, _ = ready("company", "list", "--format", "json")
    companies = json.loads(out)
    assert code == 0 and [c["code"] for c in companies] == ["OPFI", "VEND"]
    code, out, _ = ready("account", "add", "--company", "OPFI", "Assets:Bank:Savings", "--currency", "EUR", "--currency", "USD")
    assert code == 0 and "asset" in out
    code, out, _ = ready("account", "list", "--company", "OPFI", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {"company": "OPFI", "name": "Assets:Bank:Savings", "currencies": "EUR,USD"}.items() <= next(r for r in rows if r["name"] == "Assets:Bank:Savings").items()
    code, _, err = ready("company", "add", "OPFI", "--name", "Again", "--currency", "EUR")
    assert code == 1 and "already exists [duplicate]" in err
    code, _, err = ready("account", "add", "--company", "OPFI", "Revenue:Sales")
    assert code == 1 and "must start with one of" in err
    code, _, err = ready("company", "add", "NEW", "--name", "x", "--currency", "EUR", "--template", "missing.yaml")
    assert code == 1 and "cannot read missing.yaml" in err


def test_post_reports_counts_and_rejections(ready):
    good, dup = entry("a"), entry("a")
    bad = entry("b", "2026-10-05", ("OPFI", "Assets:Bank", "1.001"), ("OPFI", "Income:Usage", "-1.00"))
    data = jsonl(good, dup, bad) + b"not json\n"
    code, out, _ = ready("post", "-", input=data)
    assert code == 1
    assert "0 accepted, 1 duplicate, 2 rejected; 1 valid entries not posted" in out
    assert "line 3 (b): postings[0].amount: '1.001' has 3 decimal places; EUR has 2 [amount_precision]" in out
    assert "line 4: invalid JSON" in out
    code, out, _ = ready("post", "-", "--partial", "--format", "json", input=data)
    report = json.loads(out)
    assert code == 1 and (report["accepted"], report["duplicates"], report["rejected"]) == (1, 1, 2)
    assert [r["ref"] for r in report["rejections"]] == [3, 4]


def test_post_from_a_file(ready, tmp_path):
    path = tmp_path / "entries.jsonl"
    path.write_bytes(jsonl(entry("a"), entry("b")))
    code, out, _ = ready("post", str(path))
    assert code == 0 and "2 accepted, 0 duplicate, 0 rejected" in out and "journal positions 1..2" in out
    code, out, _ = ready("post", str(path))
    assert code == 0 and "0 accepted, 2 duplicate" in out


def test_reverse_show_statement_and_balances(ready):
    ready("post", "-", input=jsonl(entry("a", "2026-10-05", ("OPFI", "Assets:Bank", "100.00"), ("OPFI", "Income:Usage", "-100.00"))))
    code, out, _ = ready("reverse", "a", "--date", "2026-10-09")
    assert code == 0 and "reversed a by a~reversal" in out
    code, out, _ = ready("reverse", "a", "--date", "2026-10-10")
    assert code == 1
    code, out, _ = ready("entry", "show", "a~reversal", "--format", "json")
    shown = json.loads(out)
    assert shown["reverses"] == "a" and shown["postings"][0]["amount"] == "-100.00"
    code, out, _ = ready("trial-balance", "--company", "OPFI", "--as-of", "2026-10-08", "--format", "json")
    balance = json.loads(out)
    assert balance["totals"] == [{"currency": "EUR", "debits": "100.00", "credits": "100.00"}]
    code, out, _ = ready("trial-balance", "--format", "csv")
    assert code == 0 and "OPFI,Income:Usage,income,EUR,0.00" in out
    code, out, _ = ready("trial-balance", "--consolidated")
    assert code == 0 and "(consolidated)" in out
    code, out, _ = ready("account-statement", "--company", "OPFI", "--account", "Assets:Bank", "--format", "json")
    statement = json.loads(out)
    assert [l["balance"] for l in statement["lines"]] == ["100.00", "0.00"] and statement["closing"] == {"EUR": "0.00"}
    code, out, _ = ready("account-statement", "--company", "OPFI", "--account", "Assets:Bank")
    assert code == 0 and "closing balance" in out
    code, _, err = ready("trial-balance", "--as-of", "2026-13-01")
    assert code == 2 and "is not a date" in err


def test_periods_verify_and_export(ready, tmp_path):
    ready("post", "-", input=jsonl(entry("a", "2026-10-05")))
    code, out, _ = ready("period", "close", "--company", "OPFI", "--period", "2026-10")
    assert code == 0 and "closed OPFI 2026-10" in out
    code, out, _ = ready("period", "list", "--company", "OPFI", "--format", "json")
    assert {"period": "2026-10", "status": "closed"}.items() <= json.loads(out)[0].items()
    code, out, _ = ready("post", "-", input=jsonl(entry("late", "2026-10-06")))
    assert code == 1 and "[closed_period]" in out
    code, out, _ = ready("verify")
    assert code == 0 and "verify: OK" in out and "chain head: #1" in out
    code, out, _ = ready("verify", "--format", "json")
    assert json.loads(out)["ok"] is True
    target = tmp_path / "out.beancount"
    code, _, err = ready("export", "beancount", "--out", str(target))
    assert code == 0 and "exported 1 entries" in err
    _, errors, _ = loader.load_file(str(target))
    assert errors == []
    assert not (tmp_path / "out.beancount.partial").exists()


def test_demo_runs_end_to_end_from_the_console_script(tmp_path):
    """The README's quick start: `ecoledger demo` on the embedded default."""
    executable = os.path.join(os.path.dirname(sys.executable), "ecoledger")
    result = subprocess.run([executable, "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "chain head #" in result.stdout and ": OK" in result.stdout
    assert "beancount reports 0 errors" in result.stdout
    assert (tmp_path / "ecoledger-demo.db").exists() and (tmp_path / "ecoledger-demo.beancount").exists()
    again = subprocess.run([executable, "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr  # recreated, not appended to


def test_typos_get_a_suggestion(ready):
    typo = entry("t", "2026-10-05", ("OPFI", "Assets:Bank", "1.00"), ("OPFI", "Income:Usag", "-1.00"))
    code, out, _ = ready("post", "-", input=jsonl(typo, entry("u", "2026-10-05", ("OPFX", "Assets:Bank", "1.00"), ("OPFI", "Assets:Bank", "-1.00"))))
    assert code == 1
    assert "company OPFI has no account 'Income:Usag'; did you mean Income:Usage? [unknown_account]" in out
    assert "no company 'OPFX'; did you mean OPFI? [unknown_company]" in out


def test_hostile_text_cannot_drive_the_terminal(ready):
    hostile = "\x1b[2J\x1b[31mred [bold]markup[/bold] \x07bell"
    doc = entry("h", "2026-10-05", description=hostile, metadata={"note": hostile})
    assert ready("post", "-", input=jsonl(doc))[0] == 0
    code, out, _ = ready("entry", "show", "h")
    assert code == 0 and "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J" in out  # shown as an escape, not acted on
    code, out, _ = ready("account-statement", "--company", "OPFI", "--account", "Income:Usage")
    assert "\x1b" not in out and "[bold]markup[/bold]" in out  # literal, not rich markup
    code, out, _ = ready("entry", "show", "h", "--format", "json")
    assert json.loads(out)["description"] == hostile  # data formats keep the exact text


def test_job_commands(ready, tmp_path):
    ready("post", "-", input=jsonl(entry("a")))
    code, out, _ = ready("job", "run", "verify", "--format", "json")
    ran = json.loads(out)
    assert code == 0 and ran["status"] == "succeeded" and ran["result"]["ok"] is True
    code, out, _ = ready("job", "run", "export-beancount", "-p", f"out={tmp_path / 'x.beancount'}", "-p", "company=OPFI")
    assert code == 0 and "export-beancount succeeded" in out and (tmp_path / "x.beancount").exists()
    code, out, err = ready("job", "run", "export-beancount")
    assert code == 1 and "params.out: Missing data for required field. [invalid_value]" in err
    code, out, err = ready("job", "run", "export-beancount", "-p", "oops")
    assert code == 1 and "is not KEY=VALUE" in err
    code, out, _ = ready("job", "start", "verify", "--format", "json")  # no worker: stays queued
    queued = json.loads(out)
    assert code == 0 and queued["status"] == "queued"
    code, out, _ = ready("job", "start", "verify")
    assert code == 0 and f"job {queued['id']} with the same key is already queued" in out
    code, out, _ = ready("job", "list", "--format", "csv")
    assert code == 0 and out.count("\n") == 4  # header and three jobs
    code, out, _ = ready("job", "cancel", queued["id"])
    assert code == 0 and "cancelled" in out
    code, out, _ = ready("job", "retry", queued["id"], "--here")
    assert code == 0 and "verify succeeded" in out
    code, out, _ = ready("job", "show", queued["id"], "--watch", "--format", "json")
    shown = json.loads(out)
    assert shown["status"] == "succeeded" and shown["progress"] == {"done": 1, "total": 1, "message": "verifying the journal"}
    code, out, _ = ready("job", "kinds", "--format", "json")
    assert {k["kind"] for k in json.loads(out)} == {"verify", "export-beancount", "import-usage", "billing-run",
                                                  "usage-period-alerts", "deliver-webhooks", "clearing-run", "close"}
    code, _, err = ready("job", "show", "nope")
    assert code == 1 and "no job 'nope' [not_found]" in err


def test_job_start_with_the_broker_down_keeps_the_job_queued(ready, monkeypatch):
    monkeypatch.setenv("ECOLEDGER_BROKER_URL", "amqp://guest:secret@127.0.0.1:1//")
    code, _, err = ready("job", "start", "verify")
    assert code == 3 and "is queued, but the broker amqp://guest:***@127.0.0.1:1// cannot take it now" in err
    assert "secret" not in err
    code, out, _ = ready("job", "list", "--format", "json")
    assert [j["status"] for j in json.loads(out)] == ["queued"]


def test_redis_broker_without_its_client_says_what_to_install(ready, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "redis" else real(name, *a))
    monkeypatch.setenv("ECOLEDGER_BROKER_URL", "redis://127.0.0.1:6379/0")
    code, _, err = ready("job", "start", "verify")
    assert code == 3 and "pip install 'ecoledger[redis]'" in err
    code, out, _ = ready("job", "list", "--format", "json")
    assert json.loads(out) == []  # refused before anything was queued
