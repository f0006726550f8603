"""Partners: partner onboard|list|show|offboard."""

from __future__ import annotations

import datetime as dt
import json

import click

from ecoledger.cli.output import CSV, JSON, TABLE, emit_csv, emit_json, emit_table, format_option
from ecoledger.documents import DOCUMENT_BYTES_MAX, parse_document
from partners import service
from partners.schemas import OnboardingResultSchema, PartnerSchema, terms_document


def register(main: click.Group) -> None:
    main.add_command(partner)


@click.group()
def partner() -> None:
    """Partner companies: onboard in one step, list, show, offboard."""


def read_document(path: str) -> object:
    """A YAML or JSON document from a file or stdin ('-')."""
    with click.open_file(path, "rb") as stream:
        raw = stream.read(DOCUMENT_BYTES_MAX + 1)
    return parse_document(raw, path)


@partner.command("onboard")
@click.argument("document", type=click.Path(dir_okay=False, allow_dash=True))
@format_option(TABLE, JSON)
@click.pass_obj
def partner_onboard(app, document: str, fmt: str) -> None:
    """Onboard a partner from a YAML or JSON DOCUMENT ('-' for stdin): its company and chart of
    accounts, settlement terms, agreements and API key, all or nothing.

    The same document again changes nothing; one that adds agreements or versions adds them.
    The API key's token is printed once. The format is in docs/partners.md.
    """
    result = service.onboard_partner(app.database(), read_document(document), actor=app.actor)
    if fmt == JSON:
        emit_json(OnboardingResultSchema().dump(result))
        return
    code = result.partner.code
    if result.created:
        click.echo(f"onboarded {code} ({', '.join(result.partner.roles)}) with {len(result.partner.agreements)} agreements")
    elif result.added_versions:
        click.echo(f"{code}: added {', '.join(result.added_versions)}")
    else:
        click.echo(f"{code} was already onboarded with this document; nothing changed")
    if result.token:
        click.echo(f"API key {result.api_key_id} for {code}; the token is shown only now:", err=True)
        click.echo(result.token)


@partner.command("list")
@click.option("--status", type=click.Choice([service.ACTIVE, service.OFFBOARDED]), help="Only partners with this status.")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def partner_list(app, status: str | None, fmt: str) -> None:
    """List partners with their settlement terms."""
    rows = service.list_partners(app.database(), status=status)
    if fmt == JSON:
        emit_json(PartnerSchema(many=True).dump(rows))
        return
    columns = ["code", "name", "roles", "status", "settlement_currency", "frequency", "payment_terms_days", "netting", "agreements"]
    data = [
        (p.code, p.name, " ".join(p.roles), p.status, p.settlement.currency, p.settlement.frequency,
         p.settlement.payment_terms_days, "yes" if p.settlement.netting else "no", len(p.agreements))
        for p in rows
    ]
    if fmt == CSV:
        emit_csv(columns, data)
    else:
        emit_table(["Code", "Name", "Roles", "Status", "Settles in", "Every", "Terms (days)", "Netting", "Agreements"],
                   data, title="Partners", right=["Terms (days)", "Agreements"])


@partner.command("show")
@click.argument("code")
@format_option(TABLE, JSON)
@click.pass_obj
def partner_show(app, code: str, fmt: str) -> None:
    """A partner with its settlement terms and every version of its agreements."""
    found = service.get_partner(app.database(), code)
    if fmt == JSON:
        emit_json(PartnerSchema().dump(found))
        return
    s = found.settlement
    status = found.status if found.offboarded_on is None else f"offboarded on {found.offboarded_on} ({found.offboard_reason})"
    emit_table(["Field", "Value"], [
        ("Name", found.name), ("Roles", ", ".join(found.roles)), ("Currency", found.currency), ("Status", status),
        ("Settlement", f"{s.frequency} in {s.currency}, {s.payment_terms_days} days, netting {'allowed' if s.netting else 'not allowed'}"),
        ("Onboarded", f"{found.onboarded_at:%Y-%m-%d %H:%M} UTC by {found.onboarded_by}"),
    ], title=f"Partner {found.code}")
    rows = [
        (a.code, a.kind, a.counterparty, v.version, str(v.effective_from), str(v.effective_to or ""),
         json.dumps(terms_document(v.terms, a.currency), ensure_ascii=False))
        for a in found.agreements
        for v in a.versions
    ]
    emit_table(["Agreement", "Kind", "With", "Version", "From", "To", "Terms"], rows, title="Agreements")


@partner.command("offboard")
@click.argument("code")
@click.option("--date", "on", required=True, type=click.DateTime(["%Y-%m-%d"]), help="No new contracts from this day.")
@click.option("--reason", required=True, help="Why (kept with the partner and in the audit log).")
@format_option(TABLE, JSON)
@click.pass_obj
def partner_offboard(app, code: str, on: dt.datetime, reason: str, fmt: str) -> None:
    """Offboard a partner: no new contracts from --date; its history, balances and key stay,
    and the final clearing runs as usual."""
    found = service.offboard_partner(app.database(), code, on=on.date(), reason=reason, actor=app.actor)
    if fmt == JSON:
        emit_json(PartnerSchema().dump(found))
    else:
        click.echo(f"{code} offboarded on {found.offboarded_on}")

