"""The contract register and its events: load, import events, contract list|show, customer list."""

from __future__ import annotations

import json
import sys

import click

from contracts import ecosystem, service
from contracts.events import import_events, read_events
from contracts.rules import DEFAULT_RULES, RuleError, RuleSet, load_rules
from contracts.schemas import (
    ContractDocumentSchema,
    CustomerDocumentSchema,
    EventReportSchema,
    LoadReportSchema,
    PricePlanDocumentSchema,
    component_document,
    price_plan_document,
)
from ecoledger.cli.output import (
    CSV,
    JSON,
    TABLE,
    echo_rejections,
    emit_csv,
    emit_json,
    emit_table,
    file_size,
    format_option,
    progress_bar,
)
from ecoledger.cli.partner_commands import read_document
from ledger.records import E_NOT_FOUND, LedgerError, Problem, show


def register(main: click.Group) -> None:
    main.add_command(load)
    main.add_command(import_group)
    main.add_command(contract)
    main.add_command(customer)
    main.add_command(price_plan)


def rules_of(app, path: str | None) -> RuleSet:
    """The posting rules: --rules, else the posting_rules setting, else the shipped file."""
    try:
        return load_rules(path or app.settings.posting_rules or DEFAULT_RULES)
    except RuleError as exc:
        raise click.UsageError(f"posting rules refused: {exc}") from None


@click.command()
@click.argument("document", type=click.Path(dir_okay=False, allow_dash=True))
@format_option(TABLE, JSON)
@click.pass_obj
def load(app, document: str, fmt: str) -> None:
    """Load an ecosystem file (YAML or JSON; '-' for stdin): companies, partners with their
    agreements, customers and contracts, in one step and all or nothing.

    Loading the same file again changes nothing; a file that adds records, agreement versions
    or contract amendments adds them. API keys of newly onboarded partners are printed once.
    The format is in docs/ecosystem.md.
    """
    report = ecosystem.load_ecosystem(app.database(), read_document(document), actor=app.actor)
    if fmt == JSON:
        emit_json(LoadReportSchema().dump(report))
        return
    for section in ecosystem.SECTIONS:
        counts = getattr(report, section)
        click.echo(f"{section}: {counts.created} created, {counts.updated} updated, {counts.unchanged} unchanged")
    if report.api_keys:
        click.echo("API keys of the new partners (shown only now; store them in a secret store):", err=True)
        for key in report.api_keys:
            click.echo(f"{key['company']}\t{key['token']}")


@click.group("import")
def import_group() -> None:
    """Import contract events or usage lines."""


@import_group.command("events")
@click.argument("file", type=click.File("rb"))
@click.option("--partial", is_flag=True, help="Apply the valid events even if some are rejected.")
@click.option("--rules", "rules_path", type=click.Path(exists=True, dir_okay=False),
              help="Posting rules file. [default: the posting_rules setting, else config/posting_rules.yaml]")
@format_option(TABLE, JSON)
@click.pass_obj
def import_events_command(app, file, partial: bool, rules_path: str | None, fmt: str) -> None:
    """Apply contract events from FILE (JSON lines; - for stdin), in order, each posting
    through its posting rule.

    \b
    {"id": "evt-1", "type": "activated", "contract": "C-1001", "date": "2026-10-01"}
    {"id": "evt-2", "type": "one_off_charge", "contract": "C-1001", "date": "2026-10-20",
     "amount": "80.00", "component": "SETUP", "reason": "replacement part"}

    Each event ends as accepted, duplicate (same id and content: nothing written) or
    rejected (line, id, field and reason printed). All or nothing unless --partial. Exits 1
    if any event was rejected.
    """
    rules = rules_of(app, rules_path)
    db = app.database()
    size = file_size(file)
    label = getattr(file, "name", "<stdin>")
    label = "stdin" if label in ("-", "<stdin>") else label
    with progress_bar(f"importing {label}", size, unit="bytes" if size else "events") as update:
        report = import_events(db, read_events(file), rules=rules, actor=app.actor, all_or_nothing=not partial,
                               progress=(lambda _n: update(file.tell())) if size else update)
    if fmt == JSON:
        emit_json(EventReportSchema().dump(report))
    else:
        summary = f"{label}: {report.accepted} accepted, {report.duplicates} duplicate, {report.rejected} rejected"
        if report.not_applied:
            summary += f"; {report.not_applied} valid events not applied (all-or-nothing: fix the rejections or use --partial)"
        click.echo(summary + f"; {report.entries_posted} entries posted")
        echo_rejections(report.outcomes, report.outcomes_omitted)
    if not report.ok:
        sys.exit(1)


@click.group()
def contract() -> None:
    """The contract register: contracts with their versions and status."""


@contract.command("list")
@click.option("--customer", help="Only this customer's contracts.")
@click.option("--company", help="Only contracts billed by this company.")
@click.option("--status", type=click.Choice(["draft", "active", "suspended", "terminated"]))
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def contract_list(app, customer, company, status, fmt) -> None:
    """List contracts."""
    rows = service.list_contracts(app.database(), customer=customer, company=company, status=status)
    if fmt == JSON:
        emit_json(ContractDocumentSchema(many=True).dump(rows))
        return
    columns = ["code", "customer", "billing_company", "currency", "start", "end", "billing", "status", "versions"]
    data = [(c.code, c.customer, c.billing_company, c.currency, str(c.start), str(c.end or ""),
             f"{c.billing_frequency} day {c.billing_day}", c.status, len(c.versions)) for c in rows]
    if fmt == CSV:
        emit_csv(columns, data)
    else:
        emit_table(["Code", "Customer", "Billed by", "Currency", "Start", "End", "Billing", "Status", "Versions"], data,
                   title="Contracts", right=["Versions"])


@contract.command("show")
@click.argument("code")
@format_option(TABLE, JSON)
@click.pass_obj
def contract_show(app, code: str, fmt: str) -> None:
    """A contract with every version of its components."""
    found = service.get_contract(app.database(), code)
    if fmt == JSON:
        emit_json(ContractDocumentSchema().dump(found))
        return
    emit_table(["Field", "Value"], [
        ("Customer", found.customer), ("Billed by", found.billing_company), ("Currency", found.currency),
        ("Term", f"{found.start} to {found.end or 'open-ended'}"),
        ("Billing", f"{found.billing_frequency}, periods start on day {found.billing_day}"),
        ("Status", found.status + (f" since {found.status_since}" if found.status_since else "")),
    ], title=f"Contract {found.code}")
    rows = []
    for version in found.versions:
        for component in version.components:
            shown = component_document(component, found.currency)
            detail = {k: v for k, v in shown.items() if k not in ("code", "type", "service", "vendor", "reseller")}
            rows.append((version.version, str(version.effective_from), shown["code"], shown["type"], shown["service"],
                         shown.get("vendor") or "", shown.get("reseller") or "", json.dumps(detail, ensure_ascii=False)))
    emit_table(["Version", "From", "Component", "Type", "Service", "Vendor", "Reseller", "Terms"], rows, title="Components")


@click.group()
def customer() -> None:
    """Customers: the buyers contracts are with."""


@customer.command("list")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def customer_list(app, fmt: str) -> None:
    """List customers with their billing company and organisation."""
    rows = service.list_customers(app.database())
    if fmt == JSON:
        emit_json(CustomerDocumentSchema(many=True).dump(rows))
        return
    columns = ["code", "name", "billing_company", "currency", "parent", "cost_centre", "region"]
    if fmt == CSV:
        emit_csv(columns, rows)
    else:
        emit_table(["Code", "Name", "Billed by", "Currency", "Part of", "Cost centre", "Region"], rows, title="Customers")


@click.group("price-plan")
def price_plan() -> None:
    """Price plans: how usage is priced (loaded with the ecosystem file)."""


@price_plan.command("list")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def price_plan_list(app, fmt: str) -> None:
    """List price plans."""
    plans = service.list_price_plans(app.database())
    if fmt == JSON:
        emit_json(PricePlanDocumentSchema(many=True).dump(plans))
        return
    rows = [(p.code, p.currency, p.model, p.document["unit"], p.document.get("description", "")) for p in plans]
    if fmt == CSV:
        emit_csv(["code", "currency", "model", "unit", "description"], rows)
    else:
        emit_table(["Code", "Currency", "Model", "Unit", "Description"], rows, title="Price plans")


@price_plan.command("show")
@click.argument("code")
@click.pass_obj
def price_plan_show(app, code: str) -> None:
    """One price plan, as JSON."""
    found = [p for p in service.list_price_plans(app.database()) if p.code == code]
    if not found:
        raise LedgerError(Problem(E_NOT_FOUND, "price_plan", f"no price plan {show(code)}"))
    emit_json(price_plan_document(found[0].document))
