"""Settlement statements and payments: every partner's position from its own books."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from test_usage import MONTH, RULES, balance, build_eco, eco_factory, postings, run  # noqa: F401

from clearing.payments import record_payment
from clearing.statements import get_statement, issue_statements, list_statements, statement_entries
from contracts.events import import_events
from ledger.money import format_amount
from ledger.records import LedgerError
from ledger.verify import verify


@pytest.fixture
def eco(empty_db):
    return build_eco(empty_db)


def amounts(statement):
    return [(line.contract, line.kind, line.postings, format_amount(line.amount_minor, "EUR"))
            for line in statement.lines]


def test_a_statement_shows_what_each_partner_earned_and_why(eco):
    run(eco, MONTH)  # desk 180.00 (vendor and reseller), repair 240.00 and maintenance 189.00 (vendor)
    report = issue_statements(eco, "2026-10", actor="controller")
    assert report.issued == ["ST-FIXR-OPFI-2026-10-EUR-1", "ST-RESL-OPFI-2026-10-EUR-1"]
    vendor = get_statement(eco, "ST-FIXR-OPFI-2026-10-EUR-1")
    assert (vendor.partner, vendor.counterparty, vendor.opening_minor, vendor.version) == ("FIXR", "OPFI", 0, 1)
    # 60% of 609.00 (d1, d2 within the allowance), a line per service
    assert amounts(vendor) == [("SD-1", "usage", 1, "144.00"), ("SD-1", "usage", 1, "113.40"),
                               ("SD-1", "usage", 1, "108.00")]
    assert [(line.service, line.section) for line in vendor.lines] == [
        ("onsite-repair", "activity"), ("preventive-maintenance", "activity"), ("service-desk", "activity")]
    assert vendor.closing_minor == 36540 and vendor.due_date == dt.date(2026, 11, 30)  # 30 days' payment terms
    assert (vendor.status, vendor.outstanding_minor) == ("open", 36540)
    reseller = get_statement(eco, "ST-RESL-OPFI-2026-10-EUR-1")
    assert amounts(reseller) == [("SD-1", "usage", 1, "18.00")]  # 10% of the desk's 180.00
    # The drill-down names the entries; the lines add up to the closing balance, to the cent.
    assert [statement_entries(eco, vendor.number, n) for n in (1, 2, 3)] == [["usage:r1"], ["usage:m1"], ["usage:d3"]]
    assert vendor.opening_minor + sum(line.amount_minor for line in vendor.lines) == vendor.closing_minor
    # The partner's books and the operator's mirror agree.
    assert balance(eco, "FIXR", "Assets:Ecosystem:DueFrom") == "365.40"
    assert balance(eco, "OPFI", "Liabilities:Ecosystem:DueTo") == "-383.40"  # both partners' positions
    assert verify(eco).ok


def test_issuing_again_changes_nothing_and_a_late_event_makes_a_new_version(eco):
    run(eco, MONTH)
    first = issue_statements(eco, "2026-10", actor="t")
    again = issue_statements(eco, "2026-10", actor="t")
    assert again.issued == [] and again.unchanged == first.issued
    # A charge dated in October arrives after the statement: the vendor's 60% of it.
    import_events(eco, [(1, {"id": "part", "type": "one_off_charge", "contract": "SD-1", "date": "2026-10-20",
                             "amount": "50.00", "component": "REPAIR"})], rules=RULES, actor="t")
    corrected = issue_statements(eco, "2026-10", partner="FIXR", actor="t")
    assert corrected.issued == ["ST-FIXR-OPFI-2026-10-EUR-2"]
    v2 = get_statement(eco, "ST-FIXR-OPFI-2026-10-EUR-2")
    assert (v2.previous, v2.latest) == ("ST-FIXR-OPFI-2026-10-EUR-1", True)
    assert amounts(v2) == [("SD-1", "one_off_charge", 1, "30.00"), ("SD-1", "usage", 1, "144.00"),
                           ("SD-1", "usage", 1, "113.40"), ("SD-1", "usage", 1, "108.00")]
    assert not get_statement(eco, "ST-FIXR-OPFI-2026-10-EUR-1").latest
    assert [s.number for s in list_statements(eco, partner="FIXR")] == ["ST-FIXR-OPFI-2026-10-EUR-2"]
    assert len(list_statements(eco, partner="FIXR", latest_only=False)) == 2
    with pytest.raises(LedgerError, match="no partner"):
        issue_statements(eco, "2026-10", partner="NOPE", actor="t")
    with pytest.raises(Exception, match="never change"), eco.write() as conn:
        conn.execute(text("UPDATE settlement_statements SET closing_minor = 0"))


def test_payments_settle_a_statement_and_the_next_one_opens_net_of_them(eco):
    run(eco, MONTH)
    [number, _] = issue_statements(eco, "2026-10", actor="t").issued
    partial = record_payment(eco, number, "300.00", day=dt.date(2026, 11, 20), actor="t", reference="SEPA 4711")
    assert (partial.status, partial.paid_minor, partial.outstanding_minor) == ("partially_settled", 30000, 6540)
    for bad, message in [("65.41", "65.40 EUR left to settle"), ("-1.00", "positive amount"),
                         ("1.001", "decimal places"), ("abc", "amount")]:
        with pytest.raises(LedgerError, match=message):
            record_payment(eco, number, bad, day=dt.date(2026, 11, 21), actor="t")
    settled = record_payment(eco, number, "65.40", day=dt.date(2026, 11, 25), actor="t")
    assert settled.status == "settled" and [p.amount_minor for p in settled.payments] == [30000, 6540]
    # Both books: the operator paid out of its bank, the vendor received into its own.
    assert postings(eco, f"payment:{number}:1") == [
        ("OPFI", "Liabilities:Ecosystem:DueTo", "300.00", "FIXR"), ("OPFI", "Assets:Bank", "-300.00", None),
        ("FIXR", "Assets:Bank", "300.00", None), ("FIXR", "Assets:Ecosystem:DueFrom", "-300.00", "OPFI")]
    run(eco, [{**MONTH[3], "id": "nov", "timestamp": "2026-11-03T10:00:00Z"}])  # 240.00 more repairs
    [november] = issue_statements(eco, "2026-11", partner="FIXR", actor="t").issued
    statement = get_statement(eco, november)
    assert (statement.opening_minor, statement.closing_minor) == (36540, 14400)
    assert amounts(statement) == [("", "settlement_payment", 2, "-365.40"), ("SD-1", "usage", 1, "144.00")]
    assert verify(eco).ok


def test_statements_from_the_cli(cli, tmp_path):
    import io
    import json

    import pypdf
    from test_usage_cli import CSV_FILE, DEMO_FILE

    assert cli("init")[0] == 0 and cli("load", str(DEMO_FILE))[0] == 0
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"id": "act", "type": "activated", "contract": "SD-C-17", "date": "2026-10-01"}) + "\n")
    cli("import", "events", str(events))
    usage = tmp_path / "october.csv"
    usage.write_text(CSV_FILE)
    cli("import", "usage", str(usage))
    code, out, err = cli("statement", "issue", "--period", "2026-10")
    assert code == 0 and "statements issued" in out and "ST-FIXR-OPFI-2026-10-EUR-1" in out, out + err
    code, out, _ = cli("statement", "list", "--partner", "FIXR", "--format", "csv")
    assert out.splitlines()[1].startswith("ST-FIXR-OPFI-2026-10-EUR-1,FIXR,OPFI,2026-10,0.00,")
    code, out, _ = cli("statement", "show", "--partner", "FIXR", "--period", "2026-10", "--format", "json")
    shown = json.loads(out)
    assert code == 0 and shown["status"] == "open" and shown["direction"] == "payout"
    code, out, _ = cli("statement", "show", "ST-FIXR-OPFI-2026-10-EUR-1")
    assert code == 0 and "Statement ST-FIXR-OPFI-2026-10-EUR-1" in out and "usage" in out
    line_no = next(line["line_no"] for line in shown["lines"] if line["kind"] == "usage")
    code, out, _ = cli("statement", "entries", "ST-FIXR-OPFI-2026-10-EUR-1", str(line_no))
    assert code == 0 and out.splitlines() and all(x.startswith("usage:") for x in out.splitlines())
    pdf_path = tmp_path / "st.pdf"
    code, _, _ = cli("statement", "show", "ST-FIXR-OPFI-2026-10-EUR-1", "--format", "pdf", "--out", str(pdf_path))
    text_of = pypdf.PdfReader(io.BytesIO(pdf_path.read_bytes())).pages[0].extract_text()
    assert code == 0 and "Closing balance" in text_of and shown["closing"] in text_of
    code, out, _ = cli("payment", "record", "ST-FIXR-OPFI-2026-10-EUR-1", "--amount", shown["closing"], "--date",
                       "2026-11-20", "--reference", "SEPA 1")
    assert code == 0 and "settled, 0.00 EUR left to settle" in out
    code, _, err = cli("payment", "record", "ST-FIXR-OPFI-2026-10-EUR-1", "--amount", "0.01", "--date", "2026-11-21")
    assert code == 1 and "0.00 EUR left to settle" in err
    code, _, err = cli("statement", "show", "--partner", "FIXR")
    assert code == 2 and "--partner and --period" in err
    assert cli("verify")[0] == 0


@pytest.mark.parametrize("command", [["netting"], ["netting", "run"], ["consolidate"], ["clearing"], ["clearing", "run"], ["clearing", "items"],
                                     ["statement"], ["statement", "issue"], ["statement", "list"],
                                     ["statement", "show"], ["statement", "entries"], ["payment"],
                                     ["payment", "record"]])
def test_every_clearing_command_has_help(cli, command):
    code, out, _ = cli(*command, "--help")
    assert code == 0 and "Usage:" in out


@pytest.mark.parametrize(("table", "tamper", "message"), [
    ("statement_lines", "UPDATE statement_lines SET amount_minor = amount_minor + 1", "closes at"),
    ("statement_postings", "DELETE FROM statement_postings WHERE posting_line_no > 0 AND entry_id = "
                           "(SELECT MIN(entry_id) FROM statement_postings)", "the postings it records sum to"),
    ("statement_payments", "UPDATE statement_payments SET entry_seq = 1", "not posted by a settlement entry"),
])
def test_verify_finds_tampered_statements(eco, table, tamper, message):
    run(eco, MONTH)
    [number, _] = issue_statements(eco, "2026-10", actor="t").issued
    record_payment(eco, number, "1.00", day=dt.date(2026, 11, 2), actor="t")
    assert verify(eco).ok
    with eco.write() as conn:
        for verb in ("update", "delete"):
            name = f"{table}_no_{verb}"
            conn.execute(text(f"DROP TRIGGER {name}" if conn.dialect.name == "sqlite" else f"DROP TRIGGER {name} ON {table}"))
        conn.execute(text(tamper))
    report = verify(eco)
    assert any(v.check == "clearing" and message in v.message for v in report.violations), report.violations


GUAR = {
    "code": "GUAR", "name": "Guaranteed Oy", "currency": "EUR", "roles": ["vendor"], "open_date": "2026-01-01",
    "api_key": False,
    "agreements": [{"code": "GUAR-SHARE", "kind": "vendor_share", "counterparty": "OPFI", "versions": [
        {"version": 1, "effective_from": "2026-01-01",
         "terms": {"basis": "percent_of_price", "percent": "60", "minimum_guarantee": "500.00", "period": "month"}}]}],
}
TIER = {
    "code": "TIER", "name": "Tiered Channel Oy", "currency": "EUR", "roles": ["reseller"], "open_date": "2026-01-01",
    "api_key": False,
    "agreements": [{"code": "TIER-COMM", "kind": "reseller_commission", "counterparty": "OPFI", "versions": [
        {"version": 1, "effective_from": "2026-01-01",
         "terms": {"tiers": [{"from": "0", "percent": "5"}, {"from": "500.00", "percent": "10"}],
                   "tier_mode": "retroactive", "period": "month"}}]}],
}


def guaranteed_repairs(eco) -> dict:
    """Contract SD-G, active from October: repairs by GUAR (a 500.00 monthly guarantee)
    sold by TIER (tiered commission); answers a repair line to vary."""
    from contracts import service
    from partners.service import onboard_partner

    onboard_partner(eco, GUAR, actor="t")
    onboard_partner(eco, TIER, actor="t")
    service.save_contract(eco, {"code": "SD-G", "customer": "ACME", "billing_company": "OPFI", "currency": "EUR",
                                "start": "2026-10-01", "components": [
                                    {"code": "REPAIR", "type": "usage", "service": "onsite-repair", "price_plan": "REPAIR",
                                     "vendor": "GUAR", "reseller": "TIER"}]}, actor="t")
    import_events(eco, [(1, {"id": "act-g", "type": "activated", "contract": "SD-G", "date": "2026-10-01"})],
                  rules=RULES, actor="t")
    return {**MONTH[3], "contract": "SD-G"}


def test_a_clearing_run_tops_up_a_guarantee_and_trues_up_tiered_commissions(eco):
    from clearing.run import run_clearing
    repair = guaranteed_repairs(eco)
    run(eco, [{**repair, "id": "g1"}])  # 2 hours: 240.00; the vendor earns 144.00, the reseller 5%: 12.00
    first = run_clearing(eco, "2026-10", rules=RULES, actor="t")
    assert [(i.partner, i.kind, i.basis_minor, i.due_minor, i.amount_minor) for i in first.items] == [
        ("GUAR", "minimum_guarantee", 14400, 35600, 35600)]  # topped up to 500.00; volume under the second tier
    assert balance(eco, "GUAR", "Assets:Ecosystem:DueFrom") == "500.00"
    again = run_clearing(eco, "2026-10", rules=RULES, actor="t")
    assert again.items == [] and again.unchanged == 2  # the guarantee and the commission: nothing new
    # 4 hours more in October: 720.00 in all. The vendor earns 432.00 (the top-up shrinks to
    # 68.00) and the volume reaches the 10% tier, retroactively: 72.00, of which 36.00 accrued.
    run(eco, [{**repair, "id": "g2", "quantity": "4", "timestamp": "2026-10-20T10:00:00Z"}])
    later = run_clearing(eco, "2026-10", rules=RULES, actor="t")
    assert [(i.partner, i.kind, i.basis_minor, i.due_minor, i.amount_minor) for i in later.items] == [
        ("GUAR", "minimum_guarantee", 43200, 6800, -28800), ("TIER", "commission_tiers", 72000, 3600, 3600)]
    assert balance(eco, "GUAR", "Assets:Ecosystem:DueFrom") == "500.00"
    assert balance(eco, "TIER", "Assets:Ecosystem:DueFrom") == "72.00"
    assert postings(eco, "clearing:TIER-COMM:commission_tiers:2026-10-01:1") == [
        ("OPFI", "Expenses:Commissions", "36.00", None), ("OPFI", "Liabilities:Ecosystem:DueTo", "-36.00", "TIER"),
        ("TIER", "Assets:Ecosystem:DueFrom", "36.00", "OPFI"), ("TIER", "Income:Commissions", "-36.00", None)]
    # The statements show the clearing items as lines of their own.
    issue_statements(eco, "2026-10", actor="t")
    vendor = get_statement(eco, "ST-GUAR-OPFI-2026-10-EUR-1")
    assert amounts(vendor) == [("", "clearing_vendor_true_up", 2, "68.00"), ("SD-G", "usage", 2, "432.00")]
    with pytest.raises(LedgerError, match="no partner"):
        run_clearing(eco, "2026-10", rules=RULES, actor="t", partner="NOPE")
    assert verify(eco).ok


def test_the_next_period_s_run_trues_up_late_events_of_a_cleared_period(eco):
    from clearing.run import run_clearing
    repair = guaranteed_repairs(eco)
    run(eco, [{**repair, "id": "g1"}])
    assert [i.amount_minor for i in run_clearing(eco, "2026-10", rules=RULES, actor="t").items] == [35600]
    issue_statements(eco, "2026-10", actor="t")
    # October's usage that arrives in November: November's run clears November and trues up
    # October, each October item naming its window.
    run(eco, [{**repair, "id": "g2", "quantity": "4", "timestamp": "2026-10-20T10:00:00Z"}])
    november = run_clearing(eco, "2026-11", rules=RULES, actor="t")
    assert [(i.partner, i.kind, str(i.window_start), i.due_minor, i.amount_minor) for i in november.items] == [
        ("GUAR", "minimum_guarantee", "2026-10-01", 6800, -28800),
        ("GUAR", "minimum_guarantee", "2026-11-01", 50000, 50000),
        ("TIER", "commission_tiers", "2026-10-01", 3600, 3600)]
    assert run_clearing(eco, "2026-11", rules=RULES, actor="t").items == []  # nothing new
    # October's statement, issued before, gets a version with the adjustment.
    assert issue_statements(eco, "2026-10", actor="t", partner="GUAR").issued == ["ST-GUAR-OPFI-2026-10-EUR-2"]
    corrected = get_statement(eco, "ST-GUAR-OPFI-2026-10-EUR-2")
    assert corrected.previous == "ST-GUAR-OPFI-2026-10-EUR-1"
    assert amounts(corrected) == [("", "clearing_vendor_true_up", 2, "68.00"), ("SD-G", "usage", 2, "432.00")]
    # Beyond the look-back (3 months), and for periods no run cleared, nothing is revisited:
    # February looks at November to January; December was never cleared.
    run(eco, [{**repair, "id": "g3", "quantity": "1", "timestamp": "2026-10-21T10:00:00Z"}])
    february = run_clearing(eco, "2027-02", rules=RULES, actor="t", partner="GUAR")
    assert {str(i.window_start) for i in february.items} == {"2027-02-01"}
    assert verify(eco).ok
    # The close's readiness check: a month is cleared for OPFI when every partner of it was.
    from revrec.close import _clearing_check

    with eco.read() as conn:
        checks = {period: _clearing_check(conn, "OPFI", period) for period in ("2026-11", "2027-02", "2027-03")}
    assert [(c.status, c.detail) for c in checks.values()] == [
        ("passed", "cleared for 2026-11"), ("failed", "2027-02 is not cleared for FIXR, RESL, TIER (ecoledger clearing run)"),
        ("failed", "no clearing run for 2027-03 (ecoledger clearing run)")]


def test_clearing_runs_from_the_cli_and_as_a_job(cli, tmp_path):
    import json

    from test_usage_cli import CSV_FILE, DEMO_FILE

    assert cli("init")[0] == 0 and cli("load", str(DEMO_FILE))[0] == 0
    usage = tmp_path / "october.csv"
    usage.write_text(CSV_FILE)
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"id": "act", "type": "activated", "contract": "SD-C-17", "date": "2026-10-01"}) + "\n")
    cli("import", "events", str(events))
    cli("import", "usage", str(usage))
    code, out, err = cli("clearing", "run", "--period", "2026-10", "--format", "json")
    assert code == 0, out + err
    report = json.loads(out)
    # The demo's vendor is guaranteed 2,000.00 a month: the share of a few hours is topped up.
    assert [(i["partner"], i["kind"]) for i in report["items"]] == [("FIXR", "minimum_guarantee")]
    code, out, _ = cli("job", "run", "clearing-run", "-p", "period=2026-10", "--format", "json")
    assert code == 0 and json.loads(out)["result"]["items"] == []  # nothing new
    code, out, _ = cli("clearing", "items", "--format", "csv")
    assert out.splitlines()[1].startswith("FIXR,OPFI,") and ",minimum_guarantee,2026-10-01,2026-10-31," in out
    code, _, err = cli("clearing", "run", "--period", "2026-10", "--partner", "NOPE")
    assert code == 1 and "no partner 'NOPE'" in err
    code, out, _ = cli("netting", "run", "--cycle", "2026-10", "--centre", "OPFI", "--format", "json")
    netted = json.loads(out)
    assert code == 0 and netted["moves"] == [] and netted["centre"] == "OPFI"  # every position is with OPFI already
    code, _, err = cli("netting", "run", "--cycle", "2026-10", "--centre", "FIXR")
    assert code == 1 and "not an operator entity" in err
    # The demo's two operator entities, consolidated: nothing intercompany is posted yet.
    code, out, _ = cli("consolidate", "--as-of", "2026-10-31", "--format", "json")
    group = json.loads(out)
    assert code == 0 and group["group"] == ["OPEE", "OPFI"] and group["differences"] == []
    assert cli("consolidate")[0] == 0
    assert cli("verify")[0] == 0


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_statements_follow_the_books_whatever_the_order(eco_factory, data):  # noqa: F811 (the fixture)
    """Usage, statements, clearing runs and payments in random order over two months: every
    latest statement closes at the partner's position in its books at the period's end,
    opens at the previous period's close, and adds up; verify passes."""
    from clearing.run import run_clearing

    db = eco_factory()
    steps = data.draw(st.lists(st.one_of(
        st.tuples(st.just("usage"), st.tuples(st.sampled_from(["10", "11"]), st.integers(1, 28), st.integers(1, 4))),
        st.tuples(st.just("issue"), st.sampled_from(["2026-10", "2026-11"])),
        st.tuples(st.just("clear"), st.sampled_from(["2026-10", "2026-11"])),
        st.tuples(st.just("pay"), st.integers(1, 400))), min_size=1, max_size=10))
    count = 0
    for kind, argument in steps:
        try:
            if kind == "usage":
                count += 1
                month, day, hours = argument
                run(db, [{**MONTH[3], "id": f"P{count}", "timestamp": f"2026-{month}-{day:02d}T10:00:00Z",
                          "quantity": str(hours)}])
            elif kind == "issue":
                issue_statements(db, argument, actor="t")
            elif kind == "clear":
                run_clearing(db, argument, rules=RULES, actor="t")
            else:
                open_ = [s for s in list_statements(db, partner="FIXR") if s.outstanding_minor > 0]
                if open_:
                    record_payment(db, open_[0].number, format_amount(min(argument * 100, open_[0].outstanding_minor),
                                                                      "EUR"), day=dt.date(2026, 11, 30), actor="t")
        except LedgerError:
            pass
    issue_statements(db, "2026-10", actor="t")
    issue_statements(db, "2026-11", actor="t")
    with db.read() as conn:
        def position(end: str) -> int:
            return int(conn.execute(text(
                "SELECT COALESCE(SUM(p.amount_minor), 0) FROM postings p JOIN accounts a ON a.id = p.account_id "
                "JOIN companies c ON c.id = a.company_id WHERE c.code = 'FIXR' AND a.name IN "
                "('Assets:Ecosystem:DueFrom', 'Liabilities:Ecosystem:DueTo') AND p.effective_date <= :end"),
                {"end": end}).scalar())
        october_end, november_end = position("2026-10-31"), position("2026-11-30")
    statements = {s.period: get_statement(db, s.number) for s in list_statements(db, partner="FIXR")}
    if "2026-10" in statements:
        assert statements["2026-10"].closing_minor == october_end
    if "2026-11" in statements:
        november = statements["2026-11"]
        assert (november.opening_minor, november.closing_minor) == (october_end, november_end)
    for statement in statements.values():
        assert statement.opening_minor + sum(line.amount_minor for line in statement.lines) == statement.closing_minor
    assert verify(db).ok


def test_consolidation_eliminates_intercompany_and_reports_what_does_not_cancel(eco):
    from clearing.consolidation import consolidate
    from ledger import companies

    from helpers import entry, post

    companies.add_company(eco, "OPEE", "Operator Estonia", "EUR", actor="t", roles=["operator"],
                          open_date=dt.date(2026, 1, 1))
    run(eco, MONTH)
    # The service desk entity charges the billing entity its cost plus 8%.
    report = post(eco, entry("tp-10", "2026-10-31",
                             ("OPEE", "Assets:Ecosystem:DueFrom", "5400.00", "EUR", {"counterparty": "OPFI"}),
                             ("OPEE", "Income:Intercompany", "-5400.00"),
                             ("OPFI", "Expenses:Intercompany", "5400.00"),
                             ("OPFI", "Liabilities:Ecosystem:DueTo", "-5400.00", "EUR", {"counterparty": "OPEE"})))
    assert report.ok
    group = consolidate(eco, as_of=dt.date(2026, 10, 31))
    assert group.group == ["OPEE", "OPFI"] and group.differences == []
    lines = {line.account: line for line in group.lines}
    assert (lines["Income:Intercompany"].group_minor, lines["Income:Intercompany"].consolidated_minor) == (-540000, 0)
    # The vendor's and reseller's positions are not the group's own: they stay.
    due_to = lines["Liabilities:Ecosystem:DueTo"]
    assert (due_to.group_minor, due_to.eliminated_minor, due_to.consolidated_minor) == (-540000 - 38340, -540000, -38340)
    assert sum(line.consolidated_minor for line in group.lines) == 0
    # Booked by one entity only: the difference is reported, not hidden.
    post(eco, entry("tp-one-sided", "2026-10-31",
                    ("OPEE", "Assets:Ecosystem:DueFrom", "100.00", "EUR", {"counterparty": "OPFI"}),
                    ("OPEE", "Income:Intercompany", "-100.00")))
    unmatched = consolidate(eco)
    assert [(d.what, d.amount_minor) for d in unmatched.differences] == [("OPEE/OPFI", 10000),
                                                                          ("intercompany P&L", -10000)]
    assert sum(line.consolidated_minor for line in unmatched.lines) == 0  # the two differences offset


def test_credits_inside_the_window_claw_back_the_commission_each_its_own_item(eco):
    from billing.credit_notes import issue_credit_note
    from billing.service import run_billing
    from clearing.run import list_items, run_clearing
    from contracts import service
    from partners.service import onboard_partner

    tier = {**TIER, "agreements": [{**TIER["agreements"][0], "versions": [
        {**TIER["agreements"][0]["versions"][0],
         "terms": {**TIER["agreements"][0]["versions"][0]["terms"], "clawback_days": 30}}]}]}
    onboard_partner(eco, tier, actor="t")
    service.save_contract(eco, {"code": "SD-T", "customer": "ACME", "billing_company": "OPFI", "currency": "EUR",
                                "start": "2026-10-01", "components": [
                                    {"code": "REPAIR", "type": "usage", "service": "onsite-repair", "price_plan": "REPAIR",
                                     "reseller": "TIER"}]}, actor="t")
    events = [{"id": "act-t", "type": "activated", "contract": "SD-T", "date": "2026-10-01"},
              {"id": "goodwill-t", "type": "credit", "contract": "SD-T", "date": "2026-10-20", "amount": "50.00",
               "component": "REPAIR", "reason": "late visit"}]
    assert import_events(eco, list(enumerate(events)), rules=RULES, actor="t").accepted == 2
    run(eco, [{**MONTH[3], "id": "t1", "contract": "SD-T"}, {**MONTH[3], "id": "t2", "contract": "SD-T",
                                                              "timestamp": "2026-10-21T10:00:00Z"}])  # 480.00
    october = run_clearing(eco, "2026-10", rules=RULES, actor="t", partner="TIER")
    assert [(i.kind, i.basis_minor, i.amount_minor) for i in october.items] == [("clawback", 5000, -250)]  # 5% of 50.00
    assert run_clearing(eco, "2026-10", rules=RULES, actor="t", partner="TIER").items == []  # once per credit
    invoice = run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t").invoices[0]
    issue_credit_note(eco, invoice, line_no=1, amount="100.00", reason="within the window", rules=RULES, actor="t",
                      day=dt.date(2026, 11, 20))
    issue_credit_note(eco, invoice, line_no=1, amount="40.00", reason="too late to claw back", rules=RULES, actor="t",
                      day=dt.date(2026, 12, 5))
    november = run_clearing(eco, "2026-11", rules=RULES, actor="t", partner="TIER")
    assert [(i.kind, i.amount_minor) for i in november.items] == [("clawback", -500)]
    assert run_clearing(eco, "2026-12", rules=RULES, actor="t", partner="TIER").items == []  # 35 days after the invoice
    assert [i.kind for i in list_items(eco, partner="TIER")] == ["clawback", "clawback"]
    issue_statements(eco, "2026-11", partner="TIER", actor="t")
    [statement] = list_statements(eco, partner="TIER", period="2026-11")
    assert amounts(get_statement(eco, statement.number)) == [("SD-T", "clearing_commission_clawback", 1, "-5.00")]
    assert verify(eco).ok


OPEE = {
    "code": "OPEE", "name": "Operator Estonia", "currency": "EUR", "roles": ["operator"], "open_date": "2026-01-01",
    "api_key": False,
    "agreements": [{"code": "OPEE-TP", "kind": "transfer_price", "counterparty": "OPFI", "versions": [
        {"version": 1, "effective_from": "2026-01-01", "terms": {"method": "cost_plus", "markup_percent": "8"}}]}],
}


def test_a_transfer_price_is_charged_from_the_providers_costs_and_eliminated(eco):
    from clearing.consolidation import consolidate
    from clearing.run import run_clearing
    from partners.service import onboard_partner

    from helpers import entry, post

    onboard_partner(eco, OPEE, actor="t")
    post(eco, entry("payroll-10", "2026-10-31", ("OPEE", "Expenses:CostOfServices", "5000.00"),
                    ("OPEE", "Assets:Bank", "-5000.00")))
    first = run_clearing(eco, "2026-10", rules=RULES, actor="t", partner="OPEE")
    assert [(i.kind, i.basis_minor, i.due_minor, i.amount_minor) for i in first.items] == [
        ("transfer_price", 500000, 540000, 540000)]  # cost plus 8%
    assert postings(eco, "clearing:OPEE-TP:transfer_price:2026-10-01:1") == [
        ("OPFI", "Expenses:Intercompany", "5400.00", None), ("OPFI", "Liabilities:Ecosystem:DueTo", "-5400.00", "OPEE"),
        ("OPEE", "Assets:Ecosystem:DueFrom", "5400.00", "OPFI"), ("OPEE", "Income:Intercompany", "-5400.00", None)]
    assert run_clearing(eco, "2026-10", rules=RULES, actor="t", partner="OPEE").items == []
    post(eco, entry("overtime-10", "2026-10-31", ("OPEE", "Expenses:CostOfServices", "250.00"),
                    ("OPEE", "Assets:Bank", "-250.00")))
    later = run_clearing(eco, "2026-10", rules=RULES, actor="t", partner="OPEE")
    assert [(i.basis_minor, i.due_minor, i.amount_minor) for i in later.items] == [(525000, 567000, 27000)]
    group = consolidate(eco, as_of=dt.date(2026, 10, 31))
    assert group.differences == [] and {line.account: line.consolidated_minor for line in group.lines}[
        "Income:Intercompany"] == 0
    assert verify(eco).ok


def test_netting_moves_every_position_to_the_centre_and_withholds_disputed_items(eco):
    from billing import disputes
    from clearing.netting import run_netting
    from ledger import companies

    from helpers import entry, post

    companies.add_company(eco, "OPEE", "Operator Estonia", "EUR", actor="t", roles=["operator"],
                          open_date=dt.date(2026, 1, 1))
    run(eco, MONTH)  # FIXR earns 365.40 from OPFI (108.00 of it on d3), RESL 18.00 (all of it on d3)
    assert post(eco, entry("desk-visit", "2026-10-30",  # OPEE owes FIXR for a visit, RESL owes OPEE a fee
                           ("OPEE", "Expenses:CostOfServices", "200.00"),
                           ("OPEE", "Liabilities:Ecosystem:DueTo", "-200.00", "EUR", {"counterparty": "FIXR"}),
                           ("FIXR", "Assets:Ecosystem:DueFrom", "200.00", "EUR", {"counterparty": "OPEE"}),
                           ("FIXR", "Income:Ecosystem", "-200.00"),
                           ("RESL", "Liabilities:Ecosystem:DueTo", "-50.00", "EUR", {"counterparty": "OPEE"}),
                           ("RESL", "Assets:Bank", "50.00"),
                           ("OPEE", "Assets:Ecosystem:DueFrom", "50.00", "EUR", {"counterparty": "RESL"}),
                           ("OPEE", "Income:Adjustments", "-50.00"))).ok
    disputes.open_dispute(eco, "d3", "night work not ordered", actor="t")
    with pytest.raises(LedgerError, match="not an operator entity"):
        run_netting(eco, "2026-10", centre="FIXR", actor="t")
    report = run_netting(eco, "2026-10", centre="OPEE", actor="t")
    assert [(m.partner, m.counterparty, m.amount_minor, m.withheld_minor) for m in report.moves] == [
        ("FIXR", "OPFI", 25740, 10800)]  # RESL's 18.00 is all disputed: nothing of it moves
    assert [(p.participant, p.amount_minor) for p in report.positions] == [("FIXR", 45740), ("RESL", -5000)]
    entry_postings = postings(eco, report.moves[0].entry)
    assert ("OPEE", "Assets:Ecosystem:DueFrom", "257.40", "OPFI") in entry_postings  # OPFI now owes the centre
    assert run_netting(eco, "2026-10", centre="OPEE", actor="t").moves == []  # nothing new
    # FIXR's statement with OPFI: the netting in its own section, the disputed visit
    # withheld, and what is left to settle without it
    issue_statements(eco, "2026-10", partner="FIXR", actor="t")
    with_opfi = get_statement(eco, "ST-FIXR-OPFI-2026-10-EUR-1")
    assert [(line.section, format_amount(line.amount_minor, "EUR")) for line in with_opfi.lines] == [
        ("netting", "-257.40"), ("activity", "144.00"), ("activity", "113.40"), ("activity", "108.00")]
    assert with_opfi.closing_minor == 10800 and with_opfi.withheld_minor == 10800 and with_opfi.settle_minor == 0
    assert [(item.usage_line, item.amount_minor) for item in with_opfi.withheld] == [("d3", 10800)]
    assert (with_opfi.status, with_opfi.outstanding_minor) == ("settled", 0)  # nothing to settle until resolved
    from clearing.schemas import StatementSchema

    shown = StatementSchema().dump(with_opfi)
    assert (shown["withheld"], shown["to_settle"], shown["direction"]) == ("108.00", "0.00", "none")
    assert shown["sections"] == {"netting": "-257.40", "activity": "365.40"}
    assert shown["withheld_items"] == [{"usage_line": "d3", "contract": "SD-1", "amount": "108.00"}]
    disputes.resolve_dispute(eco, "d3", "accept", rules=RULES, actor="t")
    released = run_netting(eco, "2026-10", centre="OPEE", actor="t")
    assert [(m.partner, m.amount_minor) for m in released.moves] == [("FIXR", 10800), ("RESL", 1800)]
    assert [(p.participant, p.amount_minor) for p in released.positions] == [("FIXR", 56540), ("RESL", -3200)]
    assert verify(eco).ok


def test_after_netting_the_partner_gets_a_statement_with_the_centre(eco):
    from clearing.netting import run_netting
    from ledger import companies

    companies.add_company(eco, "OPEE", "Operator Estonia", "EUR", actor="t", roles=["operator"],
                          open_date=dt.date(2026, 1, 1))
    run(eco, MONTH)
    run_netting(eco, "2026-10", centre="OPEE", actor="t")
    issued = issue_statements(eco, "2026-10", partner="FIXR", actor="t").issued
    assert issued == ["ST-FIXR-OPEE-2026-10-EUR-1", "ST-FIXR-OPFI-2026-10-EUR-1"]
    with_centre, with_entity = (get_statement(eco, number) for number in issued)
    assert amounts(with_centre) == [("", "netting", 1, "365.40")]
    assert with_entity.closing_minor == 0 and ("", "netting", 1, "-365.40") in amounts(with_entity)


def test_bilateral_netting_offsets_what_each_side_owes_the_other(eco, cli):
    from billing import disputes
    from clearing.netting import run_bilateral_netting

    from helpers import entry, post

    run(eco, MONTH)  # OPFI owes FIXR 365.40 (108.00 of it on d3) and RESL 18.00
    assert post(eco, entry("fixr-fee", "2026-10-29",  # FIXR owes OPFI a 400.00 platform fee
                           ("FIXR", "Expenses:SlaPenalties", "400.00"),
                           ("FIXR", "Liabilities:Ecosystem:DueTo", "-400.00", "EUR", {"counterparty": "OPFI"}),
                           ("OPFI", "Assets:Ecosystem:DueFrom", "400.00", "EUR", {"counterparty": "FIXR"}),
                           ("OPFI", "Income:Adjustments", "-400.00"))).ok
    disputes.open_dispute(eco, "d3", "night work not ordered", actor="t")
    report = run_bilateral_netting(eco, "2026-10", actor="t")
    # what OPFI owes FIXR, the disputed 108.00 left out, offsets 257.40 of FIXR's fee
    assert (report.mode, report.centre) == ("bilateral", None)
    assert [(m.partner, m.counterparty, m.amount_minor, m.withheld_minor) for m in report.moves] == [
        ("FIXR", "OPFI", 25740, 10800)]
    assert postings(eco, report.moves[0].entry) == [
        ("FIXR", "Liabilities:Ecosystem:DueTo", "257.40", "OPFI"), ("FIXR", "Assets:Ecosystem:DueFrom", "-257.40", "OPFI"),
        ("OPFI", "Liabilities:Ecosystem:DueTo", "257.40", "FIXR"), ("OPFI", "Assets:Ecosystem:DueFrom", "-257.40", "FIXR")]
    assert [(p.participant, p.counterparty, p.amount_minor) for p in report.positions] == [
        ("FIXR", "OPFI", -3460), ("RESL", "OPFI", 1800)]  # one amount per pair: FIXR pays 34.60
    assert balance(eco, "FIXR", "Assets:Ecosystem:DueFrom") == "108.00"  # the disputed visit only
    assert run_bilateral_netting(eco, "2026-10", actor="t").moves == []  # nothing new
    from api_helpers import stamp_head

    stamp_head(eco)
    code, out, _ = cli("netting", "run", "--cycle", "2026-10", "--bilateral", "--format", "json")
    assert code == 0 and json.loads(out)["moves"] == [] and json.loads(out)["mode"] == "bilateral"
    code, _, err = cli("netting", "run", "--cycle", "2026-10")
    assert code == 2 and "--centre" in err
    assert verify(eco).ok


def test_netting_four_parties_in_two_currencies_at_the_cycles_rates(eco, cli):
    from clearing.fx import record_rate
    from clearing.netting import run_netting
    from ledger import companies
    from partners.service import onboard_partner

    from helpers import entry, post

    # A centre OPEE (EUR) and an entity OPUS (USD); a vendor EUVN settling in EUR and one
    # USVN settling in USD, both netting.
    companies.add_company(eco, "OPEE", "Operator Estonia", "EUR", actor="t", roles=["operator"],
                          extra_currencies=["USD"], open_date=dt.date(2026, 1, 1))
    companies.add_company(eco, "OPUS", "Operator US", "USD", actor="t", roles=["operator"],
                          extra_currencies=["EUR"], open_date=dt.date(2026, 1, 1))
    for code, currency, other in (("EUVN", "EUR", "USD"), ("USVN", "USD", "EUR")):
        onboard_partner(eco, {"code": code, "name": code, "currency": currency, "roles": ["vendor"],
                              "extra_currencies": [other], "open_date": "2026-01-01", "api_key": False,
                              "settlement": {"currency": currency, "netting": True}}, actor="t")

    def owes(entry_id, debtor, creditor, amount, currency):
        assert post(eco, entry(entry_id, "2026-10-20",
                               (debtor, "Expenses:CostOfServices" if debtor.startswith("OP") else "Expenses:SlaPenalties",
                                amount, currency),
                               (debtor, "Liabilities:Ecosystem:DueTo", f"-{amount}", currency, {"counterparty": creditor}),
                               (creditor, "Assets:Ecosystem:DueFrom", amount, currency, {"counterparty": debtor}),
                               (creditor, "Income:Ecosystem" if creditor.endswith("VN") else "Income:Adjustments",
                                f"-{amount}", currency))).ok

    owes("us-eu", "OPUS", "EUVN", "100.00", "USD")
    owes("us-us", "OPUS", "USVN", "250.00", "USD")
    owes("us-fee", "USVN", "OPUS", "40.00", "EUR")
    owes("ee-eu", "OPEE", "EUVN", "200.00", "EUR")
    record_rate(eco, {"cycle": "2026-10", "currency": "USD", "to_currency": "EUR", "rate": "0.9",
                      "rate_date": "2026-10-30", "source": "ECB reference rate"}, actor="t")
    first = run_netting(eco, "2026-10", centre="OPEE", actor="t")
    assert sorted((m.partner, m.currency, m.amount_minor) for m in first.moves) == [
        ("EUVN", "USD", 10000), ("USVN", "EUR", -4000), ("USVN", "USD", 25000)]
    # EUVN's 100.00 USD is 90.00 EUR at the cycle's rate; USVN's EUR fee waits for a rate
    assert [(c.partner, c.amount_minor, c.converted_minor, c.to_currency) for c in first.conversions] == [
        ("EUVN", 10000, 9000, "EUR")]
    assert [tuple(u) for u in first.unconverted] == [("USVN", "EUR", "USD")]
    assert [(p.participant, p.currency, p.amount_minor) for p in first.positions] == [
        ("EUVN", "EUR", 29000), ("USVN", "EUR", -4000), ("USVN", "USD", 25000)]
    record_rate(eco, {"cycle": "2026-10", "currency": "EUR", "to_currency": "USD", "rate": "1.1",
                      "rate_date": "2026-10-30", "source": "ECB reference rate"}, actor="t")
    second = run_netting(eco, "2026-10", centre="OPEE", actor="t")
    assert second.moves == [] and [(c.partner, c.amount_minor, c.converted_minor) for c in second.conversions] == [
        ("USVN", -4000, -4400)]
    # one amount per participant, in its settlement currency
    assert [(p.participant, p.currency, p.amount_minor) for p in second.positions] == [
        ("EUVN", "EUR", 29000), ("USVN", "USD", 20600)]
    assert run_netting(eco, "2026-10", centre="OPEE", actor="t").conversions == []  # nothing new
    from ledger import reports

    assert sorted((line.currency, line.balance_minor) for line in reports.trial_balance(eco, company="EUVN").lines
                  if line.account == "Equity:Conversions") == [("EUR", -9000), ("USD", 10000)]
    with pytest.raises(LedgerError) as caught:  # a cycle's rate is fixed
        record_rate(eco, {"cycle": "2026-10", "currency": "USD", "to_currency": "EUR", "rate": "0.95",
                          "rate_date": "2026-10-31", "source": "ECB reference rate"}, actor="t")
    assert caught.value.problems[0].field == "rate" and "never changes" in caught.value.problems[0].message
    with pytest.raises(LedgerError) as caught:
        record_rate(eco, {"cycle": "2026-10", "currency": "USD", "to_currency": "USD", "rate": "1",
                          "rate_date": "2026-10-31", "source": "x"}, actor="t")
    assert caught.value.problems[0].field == "to_currency"
    from api_helpers import stamp_head

    stamp_head(eco)
    code, out, _ = cli("fx", "list", "--cycle", "2026-10", "--format", "csv")
    assert code == 0 and out.splitlines()[1:] == ["2026-10,EUR,USD,1.1,2026-10-30,ECB reference rate,t",
                                                 "2026-10,USD,EUR,0.9,2026-10-30,ECB reference rate,t"]
    code, out, _ = cli("fx", "set", "--cycle", "2026-11", "--from", "USD", "--to", "EUR", "--rate", "0.91",
                       "--date", "2026-11-30", "--source", "ECB", "--format", "json")
    assert code == 0 and json.loads(out)["outcome"] == "recorded"
    assert verify(eco).ok
    # beancount, the oracle, loads the books with the conversions and agrees on every balance
    import io

    from beancount import loader
    from test_export import beancount_balances, ecoledger_balances

    from ledger.export import export_beancount

    text = io.StringIO()
    export_beancount(eco, text)
    entries, errors, _ = loader.load_string(text.getvalue())
    assert errors == [], [e.message for e in errors]
    assert beancount_balances(entries, None) == ecoledger_balances(eco, None)
