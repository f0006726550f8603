"""Billing: billing run|preview|approve|approvals|leakage|cap|caps, invoice list|show|credit."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from billing import service
from billing.credit_notes import issue_credit_note
from billing.leakage import leakage_report
from billing.pdf import FontError, fonts, invoice_pdf
from billing.schemas import (
    ApprovalSchema,
    BillingReportSchema,
    BudgetCapSchema,
    InvoiceSchema,
    InvoiceSummarySchema,
    LeakageReportSchema,
    preview_document,
)
from ecoledger.cli.contract_commands import rules_of
from ecoledger.cli.output import CSV, JSON, TABLE, emit_csv, emit_json, emit_table, format_option
from ledger.money import format_amount

PDF = "pdf"


def register(main: click.Group) -> None:
    main.add_command(billing)
    main.add_command(invoice)


@click.group()
def billing() -> None:
    """Billing runs: invoices per customer of a billing company for a period."""


@billing.command("run")
@click.option("--company", required=True, help="The billing company (an operator entity).")
@click.option("--period", required=True, help="The month, as YYYY-MM: usage posted up to its end is invoiced.")
@click.option("--rules", "rules_path", type=click.Path(exists=True, dir_okay=False),
              help="Posting rules file. [default: the posting_rules setting, else config/posting_rules.yaml]")
@click.option("--consolidate/--per-customer", default=None,
              help="One invoice per organisation (its lines name the customer and cost centre), or one per "
                   "customer. [default: the invoice_consolidate setting, per customer]")
@click.option("--rounding", type=click.Choice(["line", "document"]),
              help="Usage rounded per line as rated, or once per invoice (a rounding line). "
                   "[default: the invoice_rounding setting, line]")
@click.option("--approval/--no-approval", default=None,
              help="Invoice only customers whose open balance was approved at its total (billing approve); the "
                   "others wait. [default: the invoice_approval setting, off]")
@format_option(TABLE, JSON)
@click.pass_obj
def billing_run(app, company, period, rules_path, consolidate, rounding, approval, fmt) -> None:
    """Invoice what the company has not invoiced yet of the usage posted up to the end of
    PERIOD: one invoice per customer, numbered without gaps, posted from unbilled to
    receivables. Running it again invoices only what is new (late lines). As a job for the
    workers: `ecoledger job start billing-run -p company=C -p period=P`."""
    report = service.run_billing(
        app.database(), company, period, rules=rules_of(app, rules_path), actor=app.actor,
        payment_terms_days=app.settings.invoice_payment_terms_days,
        consolidate=app.settings.invoice_consolidate if consolidate is None else consolidate,
        rounding=rounding or app.settings.invoice_rounding,
        approval=app.settings.invoice_approval if approval is None else approval)
    if fmt == JSON:
        emit_json(BillingReportSchema().dump(report))
        return
    totals = ", ".join(f"{format_amount(v, c)} {c}" for c, v in sorted(report.totals.items())) or "nothing"
    click.echo(f"billing run {report.run_id} for {company} {period}: {len(report.invoices)} invoices issued on "
               f"{report.issue_date}, {report.usage_lines} usage lines, {report.fees} fee periods, {totals}")
    for number in report.invoices:
        click.echo(f"  {number}")
    for waiting in report.awaiting_approval:
        click.echo(f"  awaiting approval: {waiting['customer']} "
                   f"{format_amount(waiting['total_minor'], waiting['currency'])} {waiting['currency']}")


@billing.command("preview")
@click.option("--company", required=True, help="The billing company (an operator entity).")
@click.option("--period", required=True, help="The month, as YYYY-MM.")
@click.option("--rules", "rules_path", type=click.Path(exists=True, dir_okay=False),
              help="Posting rules file. [default: the posting_rules setting, else config/posting_rules.yaml]")
@click.option("--consolidate/--per-customer", default=None, help="As billing run. [default: the invoice_consolidate "
                                                                   "setting]")
@click.option("--rounding", type=click.Choice(["line", "document"]), help="As billing run. [default: the "
                                                                           "invoice_rounding setting]")
@format_option(TABLE, JSON)
@click.pass_obj
def billing_preview(app, company, period, rules_path, consolidate, rounding, fmt) -> None:
    """Each customer's open balance: the invoices a run would issue now, written nowhere.
    Review it, then approve it (billing approve) when runs require approval."""
    plan = service.preview_billing(
        app.database(), company, period, rules=rules_of(app, rules_path),
        consolidate=app.settings.invoice_consolidate if consolidate is None else consolidate,
        rounding=rounding or app.settings.invoice_rounding)
    document = preview_document(company, period, plan)
    if fmt == JSON:
        emit_json(document)
        return
    for planned in document["invoices"]:
        emit_table(["Kind", "Description", "Quantity", "Unit", "Amount"],
                   [(line["kind"], line["description"], line["quantity"], line["unit"], line["amount"])
                    for line in planned["lines"]],
                   title=f"{planned['customer']}: {planned['total']} {planned['currency']}",
                   right=["Quantity", "Amount"])
    if not document["invoices"]:
        click.echo(f"nothing to invoice for {company} {period}")


@billing.command("approve")
@click.option("--customer", required=True, help="The invoiced customer (the organisation when consolidating).")
@click.option("--period", required=True, help="The month, as YYYY-MM.")
@click.option("--total", required=True, help="The open balance approved, as the preview showed it, e.g. 609.00.")
@click.option("--currency", help="[default: the customer's currency]")
@format_option(TABLE, JSON)
@click.pass_obj
def billing_approve(app, customer, period, total, currency, fmt) -> None:
    """Approve a customer's open balance for PERIOD at TOTAL. A run requiring approval then
    invoices it, at exactly that total; if the balance changed since, it waits."""
    approval = service.approve_balance(app.database(), customer, period, total, currency=currency, actor=app.actor)
    if fmt == JSON:
        emit_json(ApprovalSchema().dump(approval))
        return
    click.echo(f"approved {approval.customer} {approval.period}: {format_amount(approval.total_minor, approval.currency)}"
               f" {approval.currency}")


@billing.command("approvals")
@click.option("--customer", help="Approvals of this customer.")
@click.option("--period", help="Approvals of this month (YYYY-MM).")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def billing_approvals(app, customer, period, fmt) -> None:
    """Approved open balances, and the invoice that used each."""
    rows = service.list_approvals(app.database(), customer=customer, period=period)
    if fmt == JSON:
        emit_json(ApprovalSchema(many=True).dump(rows))
        return
    data = [(a.period, a.customer, format_amount(a.total_minor, a.currency), a.currency, a.approved_at.isoformat(),
             a.approved_by, a.invoice or "") for a in rows]
    if fmt == CSV:
        emit_csv(["period", "customer", "total", "currency", "approved_at", "approved_by", "invoice"], data)
    else:
        emit_table(["Period", "Customer", "Total", "Cur", "Approved at", "By", "Invoice"], data, title="Approvals",
                   right=["Total"])


@billing.command("leakage")
@click.option("--company", required=True, help="The billing company.")
@click.option("--period", required=True, help="The month, as YYYY-MM.")
@format_option(TABLE, JSON)
@click.pass_obj
def billing_leakage(app, company, period, fmt) -> None:
    """Where money leaks: usage posted but not invoiced, usage refused for a missing or
    inactive contract or service, and usage of days a contract is not active by the events
    recorded since. Exits 1 when something leaks."""
    report = leakage_report(app.database(), company, period)
    if fmt == JSON:
        emit_json(LeakageReportSchema().dump(report))
    else:
        emit_table(["Kind", "Contract", "Component", "Lines", "Quantity", "Amount", "Cur", "Oldest"],
                   [(r.kind, r.contract, r.component, r.lines, r.quantity, format_amount(r.amount_minor, r.currency),
                     r.currency, str(r.oldest_usage_date)) for r in report.not_billed],
                   title=f"Not billed: usage posted up to the end of {period} and fees due, on no invoice",
                   right=["Lines", "Quantity", "Amount"])
        emit_table(["Reason", "Contract", "Lines", "Quantity", "Pre-rated"],
                   [(r.reason, r.contract or "", r.lines, r.quantity, ", ".join(f"{v} {k}" for k, v in r.pre_rated.items()))
                    for r in report.no_contract],
                   title="No contract: open rejects of the period (ecoledger usage rejects)", right=["Lines", "Quantity"])
        emit_table(["Contract", "Component", "Lines", "Amount", "Invoiced", "Cur", "From", "To"],
                   [(r.contract, r.component, r.lines, format_amount(r.amount_minor, r.currency),
                     format_amount(r.invoiced_minor, r.currency), r.currency, str(r.first_date), str(r.last_date))
                    for r in report.inactive_service],
                   title="Inactive service: usage on days the contract is not active", right=["Lines", "Amount", "Invoiced"])
    if report.not_billed or report.no_contract or report.inactive_service:
        sys.exit(1)


@billing.command("cap")
@click.option("--customer", required=True, help="The customer (the organisation when invoices are consolidated).")
@click.option("--period", required=True, help="The month, as YYYY-MM, whose invoices the cap limits.")
@click.option("--amount", required=True, help="The cap in major units, e.g. 500.00.")
@click.option("--currency", help="[default: the customer's currency]")
@format_option(TABLE, JSON)
@click.pass_obj
def billing_cap(app, customer, period, amount, currency, fmt) -> None:
    """Cap what the customer's invoices for PERIOD charge: a billing run carries the rest to
    the next invoice (back to unbilled receivables; recognised revenue does not change).
    Setting it again replaces it."""
    cap = service.set_cap(app.database(), customer, period, amount, currency=currency, actor=app.actor)
    if fmt == JSON:
        emit_json(BudgetCapSchema().dump(cap))
        return
    click.echo(f"budget cap for {cap.customer} {cap.period}: {format_amount(cap.amount_minor, cap.currency)} "
               f"{cap.currency}")


@billing.command("caps")
@click.option("--customer", help="Caps of this customer.")
@click.option("--period", help="Caps of this month (YYYY-MM).")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def billing_caps(app, customer, period, fmt) -> None:
    """List budget caps by period and customer."""
    caps = service.list_caps(app.database(), customer=customer, period=period)
    if fmt == JSON:
        emit_json(BudgetCapSchema(many=True).dump(caps))
        return
    data = [(c.period, c.customer, format_amount(c.amount_minor, c.currency), c.currency, c.set_at.isoformat(),
             c.set_by) for c in caps]
    if fmt == CSV:
        emit_csv(["period", "customer", "amount", "currency", "set_at", "set_by"], data)
    else:
        emit_table(["Period", "Customer", "Cap", "Cur", "Set at", "Set by"], data, title="Budget caps", right=["Cap"])


@click.group()
def invoice() -> None:
    """Invoices and credit notes: list them, show one with its lines, credit an invoice."""


@invoice.command("list")
@click.option("--company", help="Invoices of this billing company.")
@click.option("--customer", help="Invoices to this customer.")
@click.option("--period", help="Invoices of this period (YYYY-MM).")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def invoice_list(app, company, customer, period, fmt) -> None:
    """List invoices in number order."""
    rows = service.list_invoices(app.database(), company=company, customer=customer, period=period)
    if fmt == JSON:
        emit_json(InvoiceSummarySchema(many=True).dump(rows))
        return
    data = [(i.number, i.document_type, i.company, i.customer, i.period, str(i.issue_date), str(i.due_date),
             format_amount(i.total_minor, i.currency), i.currency, i.entry_seq or "", i.credits or "") for i in rows]
    if fmt == CSV:
        emit_csv(["number", "document_type", "company", "customer", "period", "issue_date", "due_date", "total",
                  "currency", "entry_seq", "credits"], data)
    else:
        emit_table(["Number", "Type", "Company", "Customer", "Period", "Issued", "Due", "Total", "Cur", "Entry",
                    "Credits"], data, title="Invoices and credit notes", right=["Total", "Entry"])


@invoice.command("show")
@click.argument("number")
@format_option(TABLE, JSON, CSV, PDF)
@click.option("--out", type=click.Path(dir_okay=False, writable=True),
              help="Write the document to this file. [default for pdf: NUMBER.pdf; others: stdout]")
@click.pass_obj
def invoice_show(app, number, fmt, out) -> None:
    """An invoice with its lines (CSV: the lines; PDF: the document to send)."""
    found = service.get_invoice(app.database(), number)
    if fmt == PDF:
        target = Path(out or f"{found.number}.pdf")
        try:
            document = invoice_pdf(found, fonts(app.settings.pdf_font, app.settings.pdf_font_bold))
        except FontError as exc:
            raise click.ClickException(str(exc)) from None
        target.write_bytes(document)
        click.echo(f"{found.number}: {target}")
        return
    if out:
        raise click.UsageError("--out is for --format pdf; redirect the other formats")
    if fmt == JSON:
        emit_json(InvoiceSchema().dump(found))
        return
    lines = [(line.line_no, line.description, line.quantity, line.unit, format_amount(line.amount_minor, line.currency),
              line.currency, line.usage_lines) for line in found.lines]
    if fmt == CSV:
        emit_csv(service.CSV_COLUMNS, service.csv_rows(found))
        return
    credit_note = found.document_type == "credit_note"
    emit_table(["Field", "Value"], [
        *([("Credits", found.credits), ("Reason", found.reason)] if credit_note else []),
        ("Billed by", found.company), ("Customer", f"{found.customer} ({found.customer_name})"),
        *([("Cost centre", found.cost_centre)] if found.cost_centre else []),
        ("Period", found.period), ("Issued", str(found.issue_date)), ("Due", str(found.due_date)),
        ("Total", f"{format_amount(found.total_minor, found.currency)} {found.currency}"),
        ("Entry", str(found.entry_seq or "")), ("Document hash", found.document_hash),
    ], title=f"{'Credit note' if credit_note else 'Invoice'} {found.number}")
    emit_table(["Line", "Description", "Quantity", "Unit", "Amount", "Cur", "Usage lines"], lines, title="Lines",
               right=["Quantity", "Amount", "Usage lines"])


@invoice.command("credit")
@click.argument("number")
@click.option("--reason", required=True, help="Why the invoice is credited (printed on the credit note).")
@click.option("--line", "line_no", type=click.IntRange(1, 1_000_000), help="Credit this line of the invoice.")
@click.option("--amount", help="Amount to credit, in major units. [default with --line: the rest of the line]")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="Issue date. [default: today]")
@click.option("--rules", "rules_path", type=click.Path(exists=True, dir_okay=False),
              help="Posting rules file. [default: the posting_rules setting, else config/posting_rules.yaml]")
@format_option(TABLE, JSON)
@click.pass_obj
def invoice_credit(app, number, reason, line_no, amount, day, rules_path, fmt) -> None:
    """Issue a credit note against invoice NUMBER: an amount of it, or a line of it. Never
    more than the line or the invoice charged."""
    note = issue_credit_note(app.database(), number, reason=reason, rules=rules_of(app, rules_path), actor=app.actor,
                             amount=amount, line_no=line_no, day=day and day.date())
    if fmt == JSON:
        emit_json(InvoiceSchema().dump(note))
        return
    click.echo(f"credit note {note.number} credits {note.credits}: {format_amount(note.total_minor, note.currency)} "
               f"{note.currency}")
