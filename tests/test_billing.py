"""Billing runs: usage invoiced per customer, numbered without gaps, posted, traceable."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from test_usage import CONTRACT, MONTH, RULES, balance, build_eco, eco_factory, postings, run  # noqa: F401

from billing import service as billing
from billing.schema import invoice_sequences, invoices
from contracts import service
from contracts.events import import_events
from ledger.money import format_amount
from ledger.periods import close_period
from ledger.posting import JournalWriter
from ledger.records import LedgerError
from ledger.verify import verify


@pytest.fixture
def eco(empty_db):
    return build_eco(empty_db)


def bill(db, period="2026-10", company="OPFI"):
    return billing.run_billing(db, company, period, rules=RULES, actor="test")


def test_a_month_of_usage_is_invoiced_and_moved_to_receivables(eco):
    run(eco, MONTH)
    report = bill(eco)
    assert report.invoices == ["OPFI-000001"] and report.usage_lines == 5 and report.totals == {"EUR": 60900}
    assert report.issue_date == dt.date(2026, 10, 31)
    invoice = billing.get_invoice(eco, "OPFI-000001")
    assert (invoice.customer, invoice.total_minor, invoice.due_date) == ("ACME", 60900, dt.date(2026, 11, 30))
    assert [(line.component, line.quantity, line.unit, format_amount(line.amount_minor, "EUR"), line.usage_lines)
            for line in invoice.lines] == [("DESK", "6.5", "hour", "180.00", 3), ("MAINT", "3", "hour", "189.00", 1),
                                           ("REPAIR", "2", "hour", "240.00", 1)]
    assert billing.invoiced_usage(eco, "OPFI-000001", 1) == ["d1", "d2", "d3"]
    assert postings(eco, "invoice:OPFI-000001") == [
        ("OPFI", "Assets:Receivables:Customers", "180.00", None), ("OPFI", "Assets:Receivables:Unbilled", "-180.00", None),
        ("OPFI", "Assets:Receivables:Customers", "189.00", None), ("OPFI", "Assets:Receivables:Unbilled", "-189.00", None),
        ("OPFI", "Assets:Receivables:Customers", "240.00", None), ("OPFI", "Assets:Receivables:Unbilled", "-240.00", None),
    ]
    assert balance(eco, "OPFI", "Assets:Receivables:Unbilled") == "0.00"
    assert balance(eco, "OPFI", "Assets:Receivables:Customers") == "609.00"
    assert verify(eco).ok


def test_running_a_period_again_invoices_only_what_is_new(eco):
    run(eco, MONTH[:3])
    assert bill(eco).invoices == ["OPFI-000001"]
    again = bill(eco)
    assert again.invoices == [] and again.usage_lines == 0
    run(eco, MONTH[3:])  # arrives after the run
    nov = [{**MONTH[3], "id": "nov", "timestamp": "2026-11-03T10:00:00Z"}]
    run(eco, nov)
    later = bill(eco)
    assert later.invoices == ["OPFI-000002"] and later.usage_lines == 2  # November's line waits for November
    assert bill(eco, "2026-11").usage_lines == 1
    assert verify(eco).ok


def test_a_closed_period_is_invoiced_on_the_first_open_day(eco):
    run(eco, MONTH)
    for company in ("OPFI", "FIXR", "RESL"):
        close_period(eco, company, "2026-10", actor="t")
    report = bill(eco)
    assert report.issue_date == dt.date(2026, 11, 1)
    assert billing.get_invoice(eco, report.invoices[0]).due_date == dt.date(2026, 12, 1)


def test_numbers_run_without_gaps_per_company_even_when_a_run_fails(eco, monkeypatch):
    service.save_customer(eco, {"code": "BETA", "name": "Beta Oy", "billing_company": "OPFI", "currency": "EUR"},
                          actor="t")
    service.save_contract(eco, {**CONTRACT, "code": "SD-B", "customer": "BETA"}, actor="t")
    import_events(eco, [(1, {"id": "ab", "type": "activated", "contract": "SD-B", "date": "2026-10-01"})],
                  rules=RULES, actor="t")
    run(eco, [*MONTH, {**MONTH[3], "id": "b1", "contract": "SD-B"}])
    original = JournalWriter.post_batch
    calls = []

    def failing(self, batch, report):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return original(self, batch, report)

    monkeypatch.setattr(JournalWriter, "post_batch", failing)
    with pytest.raises(RuntimeError):
        bill(eco)
    with eco.read() as conn:
        assert conn.execute(select(func.count()).select_from(invoices)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(invoice_sequences)).scalar() == 0
    monkeypatch.setattr(JournalWriter, "post_batch", original)
    assert bill(eco).invoices == ["OPFI-000001", "OPFI-000002"]  # ACME, then BETA
    assert [i.customer for i in billing.list_invoices(eco)] == ["ACME", "BETA"]


def test_only_operator_entities_bill_and_issued_invoices_never_change(eco):
    with pytest.raises(LedgerError, match="not an operator entity"):
        bill(eco, company="FIXR")
    with pytest.raises(LedgerError, match="YYYY-MM"):
        bill(eco, period="October")
    run(eco, MONTH)
    bill(eco)
    with pytest.raises(Exception, match="never change"), eco.write() as conn:
        conn.execute(text("UPDATE invoices SET total_minor = 1"))
    with pytest.raises(Exception, match="stays invoiced"), eco.write() as conn:
        conn.execute(text("DELETE FROM invoice_usage"))


@pytest.mark.parametrize(("table", "tamper", "message"), [
    ("invoice_lines", "UPDATE invoice_lines SET amount_minor = amount_minor + 1 WHERE line_no = 1", "its lines sum to"),
    ("invoice_usage", "DELETE FROM invoice_usage WHERE usage_line_id = 'd3'", "the usage it invoices sums to"),
    ("invoices", "UPDATE invoices SET entry_seq = NULL", "not posted by an entry made for it"),
    ("invoices", "UPDATE invoices SET sequence = 7", "have gaps"),
])
def test_verify_finds_tampered_invoices(eco, table, tamper, message):
    run(eco, MONTH)
    bill(eco)
    assert verify(eco).ok
    with eco.write() as conn:
        for verb in ("update", "delete"):
            name = f"{table}_no_{verb}"
            conn.execute(text(f"DROP TRIGGER {name}" if conn.dialect.name == "sqlite" else f"DROP TRIGGER {name} ON {table}"))
        conn.execute(text(tamper))
    report = verify(eco)
    assert any(v.check == "billing" and message in v.message for v in report.violations), report.violations


def test_an_invoice_as_pdf_is_the_same_document_every_time(eco):
    import io
    from pathlib import Path

    import pypdf

    from billing.pdf import SYSTEM_FONTS, FontError, Fonts, fonts, invoice_pdf

    service.save_customer(eco, {"code": "HOST", "name": "Evil <b>Corp</b> & Søn Ελλάς 株式会社", "billing_company": "OPFI",
                                "currency": "EUR"}, actor="t")
    service.save_contract(eco, {**CONTRACT, "code": "SD-H", "customer": "HOST"}, actor="t")
    import_events(eco, [(1, {"id": "ah", "type": "activated", "contract": "SD-H", "date": "2026-10-01"})],
                  rules=RULES, actor="t")
    run(eco, [*MONTH, {**MONTH[3], "id": "h1", "contract": "SD-H"}])
    report = bill(eco)
    invoice = billing.get_invoice(eco, report.invoices[1])
    helvetica = Fonts("Helvetica", "Helvetica-Bold", False)
    document = invoice_pdf(invoice, helvetica)
    assert document.startswith(b"%PDF") and document == invoice_pdf(billing.get_invoice(eco, invoice.number), helvetica)
    text_of = pypdf.PdfReader(io.BytesIO(document)).pages[0].extract_text()
    assert invoice.number in text_of and "240.00" in text_of and "2026-11-30" in text_of
    assert "Evil <b>Corp</b> & Søn ????? ???? (HOST)" in text_of  # markup printed as written; no Latin-1 glyphs: '?'
    # With a Unicode font embedded (DejaVu Sans from the system, or the pdf_font setting),
    # every script it has prints (DejaVu has Greek, not CJK), and the bytes are still the
    # same every time.
    dejavu = next((regular for regular, _ in SYSTEM_FONTS if Path(regular).is_file()), None)
    if dejavu is None:
        pytest.skip("no DejaVu Sans on this system (Debian: fonts-dejavu-core) to embed")
    embedded = invoice_pdf(invoice, fonts(dejavu))
    assert embedded == invoice_pdf(billing.get_invoice(eco, invoice.number), fonts(dejavu))
    assert "Evil <b>Corp</b> & Søn Ελλάς ???? (HOST)" in pypdf.PdfReader(io.BytesIO(embedded)).pages[0].extract_text()
    with pytest.raises(FontError, match="cannot embed"):
        fonts("/nonexistent/font.ttf")


def test_an_organisation_is_invoiced_per_customer_or_consolidated(eco):
    for document in ({"code": "ORG", "name": "Org Group", "billing_company": "OPFI", "currency": "EUR"},
                     {"code": "ORG-N", "name": "Org North", "billing_company": "OPFI", "currency": "EUR", "parent": "ORG",
                      "cost_centre": "4100"},
                     {"code": "ORG-S", "name": "Org South", "billing_company": "OPFI", "currency": "EUR", "parent": "ORG",
                      "cost_centre": "4200"}):
        service.save_customer(eco, document, actor="t")
    for code, customer in (("SD-N", "ORG-N"), ("SD-S", "ORG-S")):
        service.save_contract(eco, {**CONTRACT, "code": code, "customer": customer}, actor="t")
        import_events(eco, [(1, {"id": f"a-{code}", "type": "activated", "contract": code, "date": "2026-10-01"})],
                      rules=RULES, actor="t")
    lines = [{**MONTH[3], "id": "n1", "contract": "SD-N"}, {**MONTH[3], "id": "s1", "contract": "SD-S", "quantity": "3"}]
    run(eco, lines)
    consolidated = billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t", consolidate=True)
    [number] = consolidated.invoices
    invoice = billing.get_invoice(eco, number)
    assert invoice.customer == "ORG" and invoice.total_minor == 24000 + 36000
    assert [(line.customer, line.cost_centre, line.description) for line in invoice.lines] == [
        ("ORG-N", "4100", "ORG-N / cost centre 4100: onsite-repair (SD-N REPAIR): 2 hour"),
        ("ORG-S", "4200", "ORG-S / cost centre 4200: onsite-repair (SD-S REPAIR): 3 hour")]
    # receivables carry the consuming customer, as the unbilled usage did
    assert [p[0:3] for p in postings(eco, f"invoice:{number}")][:2] == [
        ("OPFI", "Assets:Receivables:Customers", "240.00"), ("OPFI", "Assets:Receivables:Unbilled", "-240.00")]
    run(eco, [{**MONTH[3], "id": "n2", "contract": "SD-N"}, {**MONTH[3], "id": "s2", "contract": "SD-S"}])
    per_customer = bill(eco)
    # Per customer, each unit of the organisation gets its own invoice, to its cost centre.
    assert [(billing.get_invoice(eco, n).customer, billing.get_invoice(eco, n).cost_centre)
            for n in per_customer.invoices] == [("ORG-N", "4100"), ("ORG-S", "4200")]
    import io

    from pypdf import PdfReader

    from billing.pdf import invoice_pdf

    text = PdfReader(io.BytesIO(invoice_pdf(billing.get_invoice(eco, per_customer.invoices[0])))).pages[0].extract_text()
    assert "Cost centre" in text and "4100" in text
    assert verify(eco).ok


def test_the_leakage_report_finds_unbilled_unknown_and_inactive_usage(eco):
    from billing.leakage import leakage_report

    run(eco, MONTH)
    bill(eco)
    late = [{**MONTH[3], "id": "late-r", "timestamp": "2026-10-27T10:00:00Z"},
            {**MONTH[3], "id": "ghost", "contract": "SD-404", "price": "10.00", "quantity": "3"},
            {**MONTH[3], "id": "gone", "service": "gardening"}]
    run(eco, late)
    # a termination recorded now, dated before usage already posted and invoiced
    import_events(eco, [(1, {"id": "t", "type": "terminated", "contract": "SD-1", "date": "2026-10-07"})],
                  rules=RULES, actor="t")
    report = leakage_report(eco, "OPFI", "2026-10")
    assert [(r.kind, r.contract, r.component, r.lines, r.amount_minor) for r in report.not_billed] == [
        ("usage", "SD-1", "REPAIR", 1, 24000)]
    assert [(r.reason, r.contract, r.lines, r.quantity, r.pre_rated) for r in report.no_contract] == [
        ("not_found", "SD-404", 1, "3", {"unknown": "30"}), ("unknown_service", "SD-1", 1, "2", {})]
    # r1 (Oct 8), m1 (Oct 9) and late-r (Oct 27) are after the last day of service, Oct 7
    assert [(r.component, r.lines, r.amount_minor, r.invoiced_minor, str(r.first_date)) for r in report.inactive_service] == [
        ("MAINT", 1, 18900, 18900, "2026-10-09"), ("REPAIR", 2, 48000, 24000, "2026-10-08")]
    clean = leakage_report(eco, "OPFI", "2026-09")
    assert clean.not_billed == [] and clean.no_contract == [] and clean.inactive_service == []


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_billing_runs_between_imports_invoice_everything_once(eco_factory, data):  # noqa: F811 (the fixture)
    """Imports and billing runs interleaved at random: every posted line is invoiced at most
    once; invoiced plus uninvoiced equals all usage; receivables equal the invoices and
    unbilled the rest; numbers have no gaps."""
    from billing.leakage import leakage_report
    from usage import queries

    db = eco_factory()
    steps = data.draw(st.lists(st.one_of(
        st.tuples(st.just("usage"), st.lists(st.tuples(st.integers(1, 30), st.sampled_from(["10", "11"]),
                                                       st.decimals(min_value=0, max_value=5, places=1)),
                                             min_size=1, max_size=6)),
        st.tuples(st.just("bill"), st.sampled_from(["2026-10", "2026-11"]))), min_size=1, max_size=8))
    count = 0
    for kind, argument in steps:
        if kind == "usage":
            records = []
            for day, month, quantity in argument:
                count += 1
                records.append({**MONTH[3], "id": f"L{count}", "timestamp": f"2026-{month}-{min(day, 30):02d}T12:00:00Z",
                                "quantity": str(quantity)})
            run(db, records)
        else:
            billing.run_billing(db, "OPFI", argument, rules=RULES, actor="t")
    invoices_ = billing.list_invoices(db)
    assert [i.number for i in invoices_] == [f"OPFI-{n:06d}" for n in range(1, len(invoices_) + 1)]
    total_usage = sum(line.amount_minor for line in queries.list_lines(db, limit=10_000))
    invoiced = sum(i.total_minor for i in invoices_)
    not_billed = sum(r.amount_minor for r in leakage_report(db, "OPFI", "2026-11").not_billed)  # all usage is by then
    assert invoiced + not_billed == total_usage
    assert balance(db, "OPFI", "Assets:Receivables:Customers") == format_amount(invoiced, "EUR")
    assert balance(db, "OPFI", "Assets:Receivables:Unbilled") == format_amount(not_billed, "EUR")
    assert verify(db).ok


FEES_CONTRACT = {
    "code": "SD-F", "customer": "ACME", "billing_company": "OPFI", "currency": "EUR", "start": "2026-10-10",
    "components": [
        {"code": "DESK", "type": "recurring_fee", "service": "service-desk", "amount": "300.00", "timing": "in_advance",
         "reseller": "RESL"},
        {"code": "SUPPORT", "type": "recurring_fee", "service": "support", "amount": "93.00", "timing": "in_arrears",
         "vendor": "FIXR"},
    ],
    "amendments": [{"version": 2, "effective_from": "2026-10-16", "components": [
        {"code": "DESK", "type": "recurring_fee", "service": "service-desk", "amount": "300.00", "timing": "in_advance",
         "reseller": "RESL"},
        {"code": "SUPPORT", "type": "recurring_fee", "service": "support", "amount": "124.00", "timing": "in_arrears",
         "vendor": "FIXR"}]}],
}


def test_recurring_fees_in_advance_and_in_arrears(eco):
    service.save_contract(eco, FEES_CONTRACT, actor="t")
    events = [{"id": "f1", "type": "activated", "contract": "SD-F", "date": "2026-10-10"},
              {"id": "f2", "type": "amended", "contract": "SD-F", "date": "2026-10-16", "version": 2},
              {"id": "f3", "type": "suspended", "contract": "SD-F", "date": "2026-10-20"},
              {"id": "f4", "type": "resumed", "contract": "SD-F", "date": "2026-10-25"}]
    assert import_events(eco, list(enumerate(events)), rules=RULES, actor="t").accepted == 4
    october = bill(eco)
    invoice = billing.get_invoice(eco, october.invoices[0])
    # Oct 10-31 is 22 days, less the 5 frozen days (20-24): 17 of 31. In arrears, 6 days at
    # 93.00 and 11 at 124.00: (6 x 93 + 11 x 124) / 31 = 62.00.
    assert [(line.kind, line.component, line.quantity, line.unit, format_amount(line.amount_minor, "EUR"))
            for line in invoice.lines] == [("fee", "DESK", "17", "days", "164.52"), ("fee", "SUPPORT", "17", "days", "62.00")]
    assert "in advance, 2026-10-01 to 2026-10-31, 17 of 31 days" in invoice.lines[0].description
    entry = postings(eco, f"invoice:{invoice.number}")
    assert ("OPFI", "Liabilities:ContractLiabilities", "-164.52", None) in entry  # deferred until the close
    assert ("OPFI", "Income:Subscriptions", "-62.00", None) in entry  # in arrears: delivered
    assert ("RESL", "Income:Commissions", "-16.45", None) in entry and ("FIXR", "Income:Ecosystem", "-37.20", None) in entry
    assert bill(eco).invoices == []  # the periods are billed once
    from billing.leakage import leakage_report

    due = leakage_report(eco, "OPFI", "2026-11").not_billed
    assert [(r.kind, r.component, r.quantity, r.amount_minor) for r in due] == [
        ("fee", "DESK", "30", 30000), ("fee", "SUPPORT", "30", 12400)]
    # Terminated on 15 November: in advance, November is billed in full and the termination
    # event credits the unused half; in arrears, November is prorated to its last day.
    import_events(eco, [(1, {"id": "f5", "type": "terminated", "contract": "SD-F", "date": "2026-11-15"})],
                  rules=RULES, actor="t")
    november = billing.get_invoice(eco, bill(eco, "2026-11").invoices[0])
    assert [(line.kind, line.component, line.quantity, format_amount(line.amount_minor, "EUR"))
            for line in november.lines] == [
        ("fee", "DESK", "30", "300.00"), ("fee", "SUPPORT", "15", "62.00"),
        ("event", "contract", "1", "-150.00")]  # the termination's credit of the unused half, shown on the invoice
    assert november.total_minor == 30000 + 6200 - 15000
    assert bill(eco, "2026-12").invoices == []  # nothing after the last day of service
    assert verify(eco).ok


def test_event_charges_show_on_the_invoice_and_credits_are_applied(eco):
    from billing.leakage import leakage_report  # noqa: F401 (the report stays consistent below)

    run(eco, MONTH[3:4])  # 240.00 of repairs
    events = [{"id": "part", "type": "one_off_charge", "contract": "SD-1", "date": "2026-10-12", "amount": "80.00",
               "component": "REPAIR", "reason": "replacement part"},
              {"id": "goodwill", "type": "credit", "contract": "SD-1", "date": "2026-10-20", "amount": "25.00",
               "reason": "disputed visit, credited to the next invoice"}]
    assert import_events(eco, list(enumerate(events)), rules=RULES, actor="t").accepted == 2
    invoice = billing.get_invoice(eco, bill(eco).invoices[0])
    assert [(line.kind, line.description, format_amount(line.amount_minor, "EUR")) for line in invoice.lines] == [
        ("usage", "onsite-repair (SD-1 REPAIR): 2 hour", "240.00"),
        ("event", "one_off_charge (SD-1 REPAIR): 2026-10-12: replacement part", "80.00"),
        ("credit", "credit (SD-1 contract): credit granted 2026-10-20: disputed visit, credited to the next invoice, "
                   "applied", "-25.00")]
    assert invoice.total_minor == 24000 + 8000 - 2500
    # The charge was posted by its event; the invoice moves the usage and uses up the credit.
    assert balance(eco, "OPFI", "Assets:Receivables:Customers") == "295.00"
    assert balance(eco, "OPFI", "Liabilities:CustomerCredits") == "0.00"
    assert bill(eco).invoices == []  # each event once
    assert verify(eco).ok


def test_events_not_invoiced_yet_are_leakage(eco):
    from billing.leakage import leakage_report

    import_events(eco, [(1, {"id": "sla", "type": "sla_breach", "contract": "SD-1", "date": "2026-10-20",
                             "amount": "40.00", "component": "REPAIR"})], rules=RULES, actor="t")
    [due] = leakage_report(eco, "OPFI", "2026-10").not_billed
    assert (due.kind, due.amount_minor, due.oldest_usage_date) == ("credit", -4000, dt.date(2026, 10, 20))
    bill(eco)
    assert leakage_report(eco, "OPFI", "2026-10").not_billed == []


COMMITTED = {
    "code": "SD-M", "customer": "ACME", "billing_company": "OPFI", "currency": "EUR", "start": "2026-10-01",
    "components": [
        {"code": "REPAIR", "type": "usage", "service": "onsite-repair", "price_plan": "REPAIR", "vendor": "FIXR"},
        {"code": "MIN", "type": "minimum_commitment", "service": "onsite-repair", "amount": "500.00"},
    ],
}


def _activate(db, code, day="2026-10-01", event_id=None):
    report = import_events(db, [(1, {"id": event_id or f"act-{code}", "type": "activated", "contract": code,
                                     "date": day})], rules=RULES, actor="t")
    assert report.accepted == 1


def _lines(invoice):
    return [(line.kind, line.component, format_amount(line.amount_minor, "EUR")) for line in invoice.lines]


def test_a_minimum_commitment_is_trued_up_and_late_usage_corrects_it(eco):
    from billing.leakage import leakage_report
    from billing.schema import invoice_true_ups

    service.save_contract(eco, COMMITTED, actor="t")
    _activate(eco, "SD-M")
    repair = {**MONTH[3], "contract": "SD-M"}
    run(eco, [{**repair, "id": "m-1"}])  # 2 hours: 240.00 of the 500.00 committed
    assert [(r.kind, r.component, r.quantity, r.amount_minor) for r in leakage_report(eco, "OPFI", "2026-10").not_billed
            if r.contract == "SD-M"] == [("usage", "REPAIR", "2", 24000), ("true_up", "MIN", "31", 26000)]
    october = billing.get_invoice(eco, bill(eco).invoices[0])
    mine = [line for line in october.lines if line.contract == "SD-M"]
    assert [(line.kind, line.component, line.quantity, line.unit, format_amount(line.amount_minor, "EUR"))
            for line in mine] == [("usage", "REPAIR", "2", "hour", "240.00"), ("true_up", "MIN", "31", "days", "260.00")]
    assert mine[1].description == ("onsite-repair (SD-M MIN): minimum commitment 500.00 for 2026-10-01 to 2026-10-31, "
                                   "usage 240.00")
    entry = postings(eco, f"invoice:{october.number}")
    assert ("OPFI", "Income:Usage", "-260.00", None) in entry and ("OPFI", "Assets:Receivables:Customers", "260.00", None) in entry
    assert bill(eco).invoices == []  # trued up once
    # A late line of October (1 hour, 120.00) lowers the shortfall to 140.00: November's run
    # credits 120.00 of the true-up and invoices the hour, so October costs 500.00 in all.
    run(eco, [{**repair, "id": "m-2", "quantity": "1", "timestamp": "2026-10-30T10:00:00Z"}])
    november = billing.get_invoice(eco, bill(eco, "2026-11").invoices[0])
    assert [(k, c, a) for k, c, a in _lines(november) if c in ("REPAIR", "MIN")] == [
        ("usage", "REPAIR", "120.00"), ("true_up", "MIN", "-120.00"), ("true_up", "MIN", "500.00")]  # November: no usage
    assert "correcting the earlier true-up" in november.lines[1].description
    with eco.read() as conn:
        trued = conn.execute(select(invoice_true_ups.c.period_start, func.sum(invoice_true_ups.c.amount_minor))
                             .group_by(invoice_true_ups.c.period_start).order_by(invoice_true_ups.c.period_start)).all()
    assert trued == [(dt.date(2026, 10, 1), 14000), (dt.date(2026, 11, 1), 50000)]
    # Usage above the commitment: no true-up, and an earlier one never goes negative.
    run(eco, [{**repair, "id": "m-3", "quantity": "10", "timestamp": "2026-12-02T10:00:00Z"}])
    december = billing.get_invoice(eco, bill(eco, "2026-12").invoices[0])
    assert [c for _, c, _ in _lines(december)] == ["REPAIR"]
    assert verify(eco).ok


def test_a_commitment_is_prorated_over_the_days_the_contract_is_active(eco):
    service.save_contract(eco, {**COMMITTED, "code": "SD-M2", "start": "2026-10-10"}, actor="t")
    _activate(eco, "SD-M2", "2026-10-10")
    invoice = billing.get_invoice(eco, bill(eco).invoices[0])
    [true_up] = [line for line in invoice.lines if line.contract == "SD-M2"]
    assert (true_up.quantity, true_up.amount_minor) == ("22", 35484)  # 500.00 x 22 / 31, half-up


PREPAID = {
    "code": "SD-P", "customer": "ACME", "billing_company": "OPFI", "currency": "EUR", "start": "2026-10-01",
    "components": [
        {"code": "REPAIR", "type": "usage", "service": "onsite-repair", "price_plan": "REPAIR", "vendor": "FIXR"},
        {"code": "PRE", "type": "prepayment", "service": "onsite-repair", "amount": "1000.00"},
    ],
}


def test_a_prepayment_is_invoiced_once_and_drawn_down_by_later_charges(eco):
    service.save_contract(eco, PREPAID, actor="t")
    _activate(eco, "SD-P")
    repair = {**MONTH[3], "contract": "SD-P"}
    run(eco, [{**repair, "id": "p-1", "quantity": "5"}])  # 600.00
    october = billing.get_invoice(eco, bill(eco).invoices[0])
    assert [(k, c, a) for k, c, a in _lines(october) if c in ("REPAIR", "PRE")] == [
        ("usage", "REPAIR", "600.00"), ("prepayment", "PRE", "1000.00"), ("drawdown", "PRE", "-600.00")]
    assert october.lines[-1].description.endswith("prepaid credit drawn down, 400.00 left")
    entry = postings(eco, f"invoice:{october.number}")
    assert ("OPFI", "Liabilities:ContractLiabilities", "-1000.00", None) in entry
    assert ("OPFI", "Liabilities:ContractLiabilities", "600.00", None) in entry
    # November: 720.00 of repairs; the 400.00 left is drawn and the rest is owed.
    run(eco, [{**repair, "id": "p-2", "quantity": "6", "timestamp": "2026-11-05T10:00:00Z"}])
    november = billing.get_invoice(eco, bill(eco, "2026-11").invoices[0])
    assert _lines(november) == [("usage", "REPAIR", "720.00"), ("drawdown", "PRE", "-400.00")]
    assert november.total_minor == 32000
    run(eco, [{**repair, "id": "p-3", "quantity": "1", "timestamp": "2026-12-05T10:00:00Z"}])
    december = billing.get_invoice(eco, bill(eco, "2026-12").invoices[0])
    assert _lines(december) == [("usage", "REPAIR", "120.00")]  # used up
    assert balance(eco, "OPFI", "Liabilities:ContractLiabilities") == "0.00"
    assert verify(eco).ok


def test_a_budget_cap_carries_the_rest_to_the_next_invoice_without_changing_revenue(eco):
    run(eco, MONTH)  # 609.00
    with pytest.raises(LedgerError, match="no customer"):
        billing.set_cap(eco, "NOBODY", "2026-10", "500.00", actor="t")
    with pytest.raises(LedgerError, match="decimal places"):
        billing.set_cap(eco, "ACME", "2026-10", "500.001", actor="t")
    with pytest.raises(LedgerError, match="YYYY-MM"):
        billing.set_cap(eco, "ACME", "Oct", "500.00", actor="t")
    billing.set_cap(eco, "ACME", "2026-10", "900.00", actor="t")
    billing.set_cap(eco, "ACME", "2026-10", "500.00", actor="controller")  # replaces it
    assert [(c.customer, c.period, c.amount_minor, c.set_by) for c in billing.list_caps(eco)] == [
        ("ACME", "2026-10", 50000, "controller")]
    revenue = balance(eco, "OPFI", "Income:Usage")
    october = billing.get_invoice(eco, bill(eco).invoices[0])
    assert _lines(october)[-1] == ("capped", "budget_cap", "-109.00")
    assert october.lines[-1].contract == "" and october.total_minor == 50000
    assert balance(eco, "OPFI", "Assets:Receivables:Customers") == "500.00"
    assert balance(eco, "OPFI", "Assets:Receivables:Unbilled") == "109.00"
    assert balance(eco, "OPFI", "Income:Usage") == revenue
    # A late October line: October's invoices are at the cap already, so all of it is carried.
    run(eco, [{**MONTH[3], "id": "late", "quantity": "1", "timestamp": "2026-10-30T10:00:00Z"}])
    again = billing.get_invoice(eco, bill(eco).invoices[0])
    assert _lines(again) == [("usage", "REPAIR", "120.00"), ("brought_forward", "budget_cap", "109.00"),
                             ("capped", "budget_cap", "-229.00")]
    # November has no cap: everything carried is brought forward, even with nothing new.
    november = billing.get_invoice(eco, bill(eco, "2026-11").invoices[0])
    assert _lines(november) == [("brought_forward", "budget_cap", "229.00")]
    assert balance(eco, "OPFI", "Assets:Receivables:Unbilled") == "0.00"
    assert balance(eco, "OPFI", "Assets:Receivables:Customers") == "729.00"
    assert bill(eco, "2026-12").invoices == []
    assert verify(eco).ok


def test_a_disputed_line_is_held_back_then_cancelled_by_reversal(eco):
    from billing import disputes
    from billing.leakage import leakage_report

    run(eco, MONTH)
    with pytest.raises(LedgerError, match="no usage line"):
        disputes.open_dispute(eco, "nope", "never happened", actor="t")
    with pytest.raises(LedgerError, match="reason is required"):
        disputes.open_dispute(eco, "r1", "  ", actor="t")
    disputes.open_dispute(eco, "r1", "the technician never came", actor="customer desk")
    with pytest.raises(LedgerError, match="disputed already"):
        disputes.open_dispute(eco, "r1", "again", actor="t")
    [held] = [r for r in leakage_report(eco, "OPFI", "2026-10").not_billed if r.kind == "disputed"]
    assert (held.component, held.amount_minor) == ("REPAIR", 24000)
    october = billing.get_invoice(eco, bill(eco).invoices[0])
    assert [c for _, c, _ in _lines(october)] == ["DESK", "MAINT"]  # the repair waits
    unbilled = balance(eco, "OPFI", "Assets:Receivables:Unbilled")
    assert unbilled == "240.00"
    with pytest.raises(LedgerError, match="not one of"):
        disputes.resolve_dispute(eco, "r1", "forget", rules=RULES, actor="t")
    with pytest.raises(LedgerError, match="not invoiced yet"):
        disputes.resolve_dispute(eco, "r1", "credit_note", rules=RULES, actor="t")
    dispute = disputes.resolve_dispute(eco, "r1", "cancel", rules=RULES, actor="t", day=dt.date(2026, 11, 2),
                                       resolution="no visit on record")
    assert (dispute.status, dispute.resolution, dispute.invoice) == ("cancelled", "no visit on record", None)
    # Posted alone, the line's entry is reversed exactly: revenue, the vendor's share, unbilled.
    assert balance(eco, "OPFI", "Assets:Receivables:Unbilled") == "0.00"
    assert balance(eco, "FIXR", "Income:Ecosystem") == "-221.40"  # 60% of the desk and the maintenance only
    with pytest.raises(LedgerError, match="resolved already"):
        disputes.resolve_dispute(eco, "r1", "accept", rules=RULES, actor="t")
    assert bill(eco, "2026-11").invoices == []  # never invoiced
    assert [d.status for d in disputes.list_disputes(eco)] == ["cancelled"]
    with pytest.raises(Exception, match="resolved once"), eco.write() as conn:
        conn.execute(text("UPDATE usage_disputes SET status = 'open', resolved_at = NULL"))
    assert verify(eco).ok


def test_an_aggregated_line_is_cancelled_by_the_usage_rule_negated(eco):
    from billing import disputes
    from usage.service import Options

    run(eco, MONTH, options=Options(RULES, "test", posting="aggregated"))
    disputes.open_dispute(eco, "d3", "night work not ordered", actor="t")
    disputes.resolve_dispute(eco, "d3", "cancel", rules=RULES, actor="t", day=dt.date(2026, 10, 31))
    invoice = billing.get_invoice(eco, bill(eco).invoices[0])
    desk = next(line for line in invoice.lines if line.component == "DESK")
    assert (desk.quantity, desk.usage_lines) == ("4.5", 2)  # d1 and d2; d3 is void
    # d3 was 180.00 (1.5 hours over the allowance at night): its revenue and unbilled amount
    # are reversed, so what is left unbilled is exactly what no invoice has taken.
    assert balance(eco, "OPFI", "Assets:Receivables:Unbilled") == "0.00"
    assert verify(eco).ok


def test_a_dispute_credited_to_the_next_term(eco):
    from billing import disputes

    run(eco, MONTH)
    october = billing.get_invoice(eco, bill(eco).invoices[0])
    disputes.open_dispute(eco, "m1", "maintenance was rushed", actor="t")  # after the invoice
    with pytest.raises(LedgerError, match="credit it instead"):
        disputes.resolve_dispute(eco, "m1", "cancel", rules=RULES, actor="t", day=dt.date(2026, 11, 3))
    with pytest.raises(LedgerError, match="cannot precede the invoice"):
        disputes.resolve_dispute(eco, "m1", "credit_note", rules=RULES, actor="t", day=dt.date(2026, 10, 1))
    assert [d.status for d in disputes.list_disputes(eco)] == ["open"]  # nothing written
    dispute = disputes.resolve_dispute(eco, "m1", "credit", rules=RULES, actor="t", day=dt.date(2026, 11, 3))
    assert (dispute.status, dispute.invoice, dispute.event_id) == ("credited", october.number, "dispute:m1")
    november = billing.get_invoice(eco, bill(eco, "2026-11").invoices[0])
    assert _lines(november) == [("credit", "contract", "-189.00")]
    assert "disputed usage m1: maintenance was rushed" in november.lines[0].description
    assert verify(eco).ok


def test_the_it_services_story(eco):
    """A service desk with 5 hours a month included and extra hours charged, on-site repair
    and preventive maintenance at their own rates, a night-shift uplift; the allowance
    alerts; the customer disputes the repair (credited next term) and caps October's invoice
    at its budget (the rest carried to November's)."""
    from billing import disputes
    from usage import queries

    run(eco, MONTH)
    assert [(a.kind, a.threshold_percent, a.line_id) for a in queries.list_alerts(eco)] == [
        ("allowance", 80, "d2"), ("allowance", 100, "d3")]
    revenue = balance(eco, "OPFI", "Income:Usage")
    assert revenue == "-609.00"  # 1.5 night hours over the allowance at 120.00, 240.00 repair, 189.00 maintenance
    disputes.open_dispute(eco, "r1", "the repair did not fix the printer", actor="customer")
    billing.set_cap(eco, "ACME", "2026-10", "300.00", actor="controller")
    october = billing.get_invoice(eco, bill(eco).invoices[0])
    assert [(line.kind, line.component, line.quantity, format_amount(line.amount_minor, "EUR"))
            for line in october.lines] == [
        ("usage", "DESK", "6.5", "180.00"),  # 5 hours included, 1.5 night hours at 80.00 x 1.5
        ("usage", "MAINT", "3", "189.00"),  # 3 x 70.00 less 10%
        ("capped", "budget_cap", "1", "-69.00")]  # the repair is held back while disputed
    assert october.total_minor == 30000
    # The operator keeps the repair but credits it: invoiced now, given back next term.
    disputes.resolve_dispute(eco, "r1", "credit", rules=RULES, actor="controller", day=dt.date(2026, 11, 3))
    run(eco, [{**MONTH[0], "id": "n1", "timestamp": "2026-11-03T09:00:00+02:00", "quantity": "2"},
              {**MONTH[3], "id": "n2", "timestamp": "2026-11-10T09:00:00+02:00", "quantity": "3"}])
    november = billing.get_invoice(eco, bill(eco, "2026-11").invoices[0])
    assert [(line.kind, line.component, format_amount(line.amount_minor, "EUR")) for line in november.lines] == [
        ("usage", "DESK", "0.00"),  # within November's allowance
        ("usage", "REPAIR", "600.00"),  # October's repair (240.00), released by the dispute, and November's (360.00)
        ("credit", "contract", "-240.00"),  # the disputed repair, credited
        ("brought_forward", "budget_cap", "69.00")]
    assert november.total_minor == 60000 - 24000 + 6900
    # The cap moved money between invoices only: usage revenue is what was delivered, less
    # the credit, which is an adjustment.
    assert balance(eco, "OPFI", "Income:Usage") == "-969.00"
    assert balance(eco, "OPFI", "Income:Adjustments") == "240.00"
    assert balance(eco, "OPFI", "Assets:Receivables:Unbilled") == "0.00"
    assert balance(eco, "OPFI", "Assets:Receivables:Customers") == format_amount(30000 + 42900, "EUR")
    assert verify(eco).ok


@pytest.mark.parametrize(("rounding", "expected"), [
    ("line", [("usage", "LABEL", "0.99")]),
    ("document", [("usage", "LABEL", "0.99"), ("rounding", "rounding", "0.01")])])
def test_line_against_document_rounding(eco, rounding, expected):
    service.save_price_plan(eco, {"code": "LABELS", "currency": "EUR", "unit": "label", "model": "per_unit",
                                  "unit_price": "0.333"}, actor="t")
    service.save_contract(eco, {"code": "SD-L", "customer": "ACME", "billing_company": "OPFI", "currency": "EUR",
                                "start": "2026-10-01", "components": [
                                    {"code": "LABEL", "type": "usage", "service": "labels", "price_plan": "LABELS"}]},
                          actor="t")
    _activate(eco, "SD-L")
    run(eco, [{"id": f"l{i}", "timestamp": f"2026-10-0{i}T10:00:00Z", "contract": "SD-L", "service": "labels",
               "quantity": "1"} for i in (1, 2, 3)])  # 0.333 each: 0.33 as rated, 0.999 unrounded
    report = billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t", rounding=rounding)
    invoice = billing.get_invoice(eco, report.invoices[0])
    assert _lines(invoice) == expected
    assert invoice.total_minor == sum(int(a.replace(".", "")) for _, _, a in expected)
    if rounding == "document":
        assert "99.9 minor units unrounded" in invoice.lines[-1].description
        assert ("OPFI", "Income:Usage", "-0.01", None) in postings(eco, f"invoice:{invoice.number}")
        with eco.write() as conn:
            conn.execute(text("DROP TRIGGER invoice_lines_no_update" if conn.dialect.name == "sqlite"
                              else "DROP TRIGGER invoice_lines_no_update ON invoice_lines"))
            conn.execute(text("UPDATE invoice_lines SET amount_minor = 2 WHERE kind = 'rounding'"))
        assert "rounds by 2" in str(verify(eco).violations)
    else:
        assert verify(eco).ok
    with pytest.raises(LedgerError, match="not a rounding policy"):
        billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t", rounding="bankers")


def test_credit_notes_credit_an_invoice_line_or_the_invoice_up_to_what_it_charged(eco):
    from billing.credit_notes import issue_credit_note

    run(eco, MONTH)
    october = billing.get_invoice(eco, bill(eco).invoices[0])  # DESK 180.00, MAINT 189.00, REPAIR 240.00
    note = issue_credit_note(eco, october.number, line_no=3, amount="40.00", reason="repair took longer than needed",
                             rules=RULES, actor="t", day=dt.date(2026, 11, 5))
    assert (note.number, note.document_type, note.credits, note.total_minor) == ("OPFI-CN-000001", "credit_note",
                                                                               october.number, -4000)
    assert [(line.kind, line.contract, line.component, line.amount_minor) for line in note.lines] == [
        ("credit_note", "SD-1", "REPAIR", -4000)]
    assert ("OPFI", "Income:Adjustments", "40.00", None) in postings(eco, f"invoice:{note.number}")
    # What is left of the line, then of the invoice; never more.
    rest = issue_credit_note(eco, october.number, line_no=3, reason="visit cancelled", rules=RULES, actor="t",
                             day=dt.date(2026, 11, 5))
    assert rest.total_minor == -20000
    with pytest.raises(LedgerError, match="0.00 EUR left to credit"):
        issue_credit_note(eco, october.number, line_no=3, amount="0.01", reason="x", rules=RULES, actor="t")
    with pytest.raises(LedgerError, match="369.00 EUR left to credit"):
        issue_credit_note(eco, october.number, amount="369.01", reason="x", rules=RULES, actor="t")
    whole = issue_credit_note(eco, october.number, amount="369.00", reason="goodwill", rules=RULES, actor="t",
                              day=dt.date(2026, 11, 6))
    assert (whole.number, whole.lines[0].contract, whole.lines[0].component) == ("OPFI-CN-000003", "", "invoice")
    assert balance(eco, "OPFI", "Assets:Receivables:Customers") == "0.00"
    for bad, message in [({"line_no": 9}, "has no line 9"), ({"amount": "-1.00"}, "positive"),
                         ({"amount": "1.001"}, "decimal places"), ({}, "give the amount"),
                         ({"amount": "1.00", "day": dt.date(2026, 10, 1)}, "cannot precede")]:
        with pytest.raises(LedgerError, match=message):
            issue_credit_note(eco, october.number, reason="x", rules=RULES, actor="t", **bad)
    with pytest.raises(LedgerError, match="is a credit note"):
        issue_credit_note(eco, "OPFI-CN-000001", amount="1.00", reason="x", rules=RULES, actor="t")
    with pytest.raises(LedgerError, match="reason"):
        issue_credit_note(eco, october.number, amount="1.00", reason="", rules=RULES, actor="t")
    # Invoices keep their own gapless numbers.
    run(eco, [{**MONTH[3], "id": "nov", "timestamp": "2026-11-03T10:00:00Z"}])
    assert bill(eco, "2026-11").invoices == ["OPFI-000002"]
    assert [i.document_type for i in billing.list_invoices(eco)] == ["invoice", "credit_note", "credit_note",
                                                                     "credit_note", "invoice"]
    assert verify(eco).ok


def test_a_dispute_of_an_invoiced_line_resolved_by_a_credit_note(eco):
    from billing import disputes

    run(eco, MONTH)
    october = billing.get_invoice(eco, bill(eco).invoices[0])
    disputes.open_dispute(eco, "d3", "night work was not ordered", actor="t")
    dispute = disputes.resolve_dispute(eco, "d3", "credit_note", rules=RULES, actor="t", day=dt.date(2026, 11, 3))
    assert (dispute.status, dispute.event_id) == ("credited", "OPFI-CN-000001")
    note = billing.get_invoice(eco, "OPFI-CN-000001")
    assert (note.credits, note.total_minor) == (october.number, -18000)
    assert note.lines[0].description == ("service-desk (SD-1 DESK): credit of OPFI-000001 line 1: disputed usage d3: "
                                         "night work was not ordered")
    assert bill(eco, "2026-11").invoices == []  # nothing applied next term: the credit note did it
    assert verify(eco).ok


def test_open_balances_are_previewed_approved_then_invoiced(eco):
    run(eco, MONTH)
    plan = billing.preview_billing(eco, "OPFI", "2026-10", rules=RULES)
    [planned] = plan.invoices
    assert (planned.customer, planned.currency, planned.total_minor) == ("ACME", "EUR", 60900)
    with eco.read() as conn:  # the preview writes nothing
        assert conn.execute(select(func.count()).select_from(invoices)).scalar() == 0
    waiting = billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t", approval=True)
    assert waiting.invoices == [] and waiting.awaiting_approval == [
        {"customer": "ACME", "currency": "EUR", "total_minor": 60900}]
    billing.approve_balance(eco, "ACME", "2026-10", "609.00", actor="controller")
    # The balance changes after the review: the run waits for a new approval.
    run(eco, [{**MONTH[3], "id": "late", "quantity": "1", "timestamp": "2026-10-30T10:00:00Z"}])
    assert billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t", approval=True).invoices == []
    with pytest.raises(LedgerError, match="decimal places"):
        billing.approve_balance(eco, "ACME", "2026-10", "729.001", actor="controller")
    billing.approve_balance(eco, "ACME", "2026-10", "729.00", actor="controller")
    report = billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t", approval=True)
    assert report.invoices == ["OPFI-000001"] and report.totals == {"EUR": 72900}
    [approval] = billing.list_approvals(eco)
    assert (approval.total_minor, approval.approved_by, approval.invoice) == (72900, "controller", "OPFI-000001")
    # An approval is used once: new usage of the period waits for its own.
    run(eco, [{**MONTH[3], "id": "later", "quantity": "1", "timestamp": "2026-10-30T11:00:00Z"}])
    again = billing.run_billing(eco, "OPFI", "2026-10", rules=RULES, actor="t", approval=True)
    assert again.invoices == [] and again.awaiting_approval[0]["total_minor"] == 12000
    assert verify(eco).ok


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_disputes_caps_and_credit_notes_keep_the_books_whole(eco_factory, data):  # noqa: F811 (the fixture)
    """Imports, disputes and their resolutions, budget caps, billing runs and credit notes
    at random. Whatever the order: receivables equal the documents issued; unbilled
    receivables equal the usage no invoice took (cancelled usage aside) plus what caps
    carried; usage revenue equals the usage not cancelled; verify passes."""
    from billing import disputes
    from billing.credit_notes import issue_credit_note
    from usage import queries

    db = eco_factory()
    steps = data.draw(st.lists(st.one_of(
        st.tuples(st.just("usage"), st.integers(1, 3)),
        st.tuples(st.just("dispute"), st.integers(0, 20)),
        st.tuples(st.just("resolve"), st.tuples(st.integers(0, 20), st.sampled_from(sorted(disputes.OUTCOMES)))),
        st.tuples(st.just("cap"), st.integers(0, 800)),
        st.tuples(st.just("bill"), st.just(None)),
        st.tuples(st.just("credit"), st.integers(1, 300))), min_size=1, max_size=12))
    count = 0
    for kind, argument in steps:
        try:
            if kind == "usage":
                for _ in range(argument):
                    count += 1
                    run(db, [{**MONTH[3], "id": f"L{count}", "timestamp": f"2026-10-{count % 28 + 1:02d}T12:00:00Z",
                              "quantity": str(count % 3 + 1)}])
            elif kind == "dispute":
                disputes.open_dispute(db, f"L{argument}", "questioned", actor="t")
            elif kind == "resolve":
                disputes.resolve_dispute(db, f"L{argument[0]}", argument[1], rules=RULES, actor="t",
                                         day=dt.date(2026, 10, 31))
            elif kind == "cap":
                billing.set_cap(db, "ACME", "2026-10", format_amount(argument * 100, "EUR"), actor="t")
            elif kind == "bill":
                bill(db)
            else:
                issued = [i for i in billing.list_invoices(db) if i.document_type == "invoice"]
                if issued:
                    issue_credit_note(db, issued[-1].number, amount=format_amount(argument * 100, "EUR"),
                                      reason="goodwill", rules=RULES, actor="t", day=dt.date(2026, 10, 31))
        except LedgerError:
            pass  # refused as a whole (no such line, resolved already, more than is left): nothing written
    documents = billing.list_invoices(db)
    lines = {line.id: line.amount_minor for line in queries.list_lines(db, limit=10_000)}
    cancelled = {d.line_id for d in disputes.list_disputes(db, status="cancelled")}
    with db.read() as conn:
        invoiced = set(conn.execute(text("SELECT usage_line_id FROM invoice_usage")).scalars())
        carried = -sum(conn.execute(text("SELECT amount_minor FROM invoice_lines WHERE kind IN "
                                         "('capped', 'brought_forward')")).scalars())
    assert balance(db, "OPFI", "Assets:Receivables:Customers") == format_amount(
        sum(d.total_minor for d in documents), "EUR")
    assert balance(db, "OPFI", "Assets:Receivables:Unbilled") == format_amount(
        sum(a for i, a in lines.items() if i not in invoiced and i not in cancelled) + carried, "EUR")
    assert balance(db, "OPFI", "Income:Usage") == format_amount(
        -sum(a for i, a in lines.items() if i not in cancelled), "EUR")
    assert verify(db).ok
