"""Webhooks: webhook add|list|disable|deliver|deliveries (usage alerts pushed to URLs)."""

from __future__ import annotations

import click

from ecoledger.cli.output import CSV, JSON, TABLE, emit_csv, emit_json, emit_table, format_option
from usage.schemas import WebhookCreatedSchema, WebhookDeliverySchema, WebhookDocumentSchema
from usage.webhooks import ALERT_KINDS, add_webhook, deliver_webhooks, disable_webhook, list_deliveries, list_webhooks


def register(main: click.Group) -> None:
    main.add_command(webhook)


@click.group()
def webhook() -> None:
    """Webhooks: usage alerts pushed to URLs, signed, at least once and in order."""


@webhook.command("add")
@click.argument("name")
@click.option("--url", required=True, help="Where alerts are POSTed (http or https).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(ALERT_KINDS),
              help="An alert kind to send (repeat the option). [default: all]")
@click.option("--company", help="Only alerts of the contracts this company bills. [default: all]")
@format_option(TABLE, JSON)
@click.pass_obj
def add_command(app, name, url, kinds, company, fmt) -> None:
    """Register a webhook. It sends the alerts raised from now on. Its signing secret is
    printed this once: the receiver checks each delivery's Ecoledger-Signature with it."""
    document = {"name": name, "url": url, "company": company, **({"kinds": list(kinds)} if kinds else {})}
    found, secret = add_webhook(app.database(), document, actor=app.actor)
    if fmt == JSON:
        emit_json(WebhookCreatedSchema().dump({**found._asdict(), "secret": secret}))
        return
    click.echo(f"added webhook {found.name}: {found.url} ({', '.join(found.kinds)}"
               f"{'; company ' + found.company if found.company else ''})")
    click.echo(f"signing secret (shown this once): {secret}")


@webhook.command("list")
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def list_command(app, fmt) -> None:
    """Webhooks, with their place in the alerts and their failures (never their secrets)."""
    rows = list_webhooks(app.database())
    if fmt == JSON:
        emit_json(WebhookDocumentSchema(many=True).dump(rows))
        return
    data = [(w.name, w.url, " ".join(w.kinds), w.company or "", "yes" if w.active else "no", w.delivered_through,
             w.failures, w.next_attempt_at.isoformat(timespec="seconds") if w.next_attempt_at else "",
             w.last_error or "") for w in rows]
    if fmt == CSV:
        emit_csv(["name", "url", "kinds", "company", "active", "delivered_through", "failures", "next_attempt_at",
                  "last_error"], data)
    else:
        emit_table(["Name", "URL", "Kinds", "Company", "Active", "Through", "Failures", "Next", "Last error"], data,
                   title="Webhooks", right=["Through", "Failures"])


@webhook.command("disable")
@click.argument("name")
@click.pass_obj
def disable_command(app, name) -> None:
    """Stop a webhook. It is kept with its deliveries, for the record."""
    disable_webhook(app.database(), name, actor=app.actor)
    click.echo(f"disabled webhook {name}")


@webhook.command("deliver")
@format_option(TABLE, JSON)
@click.pass_obj
def deliver_command(app, fmt) -> None:
    """Send each webhook the alerts raised since its last acknowledged delivery, now (the
    worker's schedule does it every five minutes; also the job deliver-webhooks). Exits 1 if a
    webhook's attempt failed."""
    run = deliver_webhooks(app.database())
    if fmt == JSON:
        emit_json(run._asdict())
    else:
        click.echo(f"{run.attempts} attempts, {run.delivered} alerts delivered"
                   + (f"; failed: {', '.join(run.failed)}" if run.failed else ""))
    if run.failed:
        raise SystemExit(1)


@webhook.command("deliveries")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 1_000), default=50, show_default=True)
@format_option(TABLE, JSON, CSV)
@click.pass_obj
def deliveries_command(app, name, limit, fmt) -> None:
    """A webhook's latest delivery attempts, newest first."""
    rows = list_deliveries(app.database(), name, limit=limit)
    if fmt == JSON:
        emit_json(WebhookDeliverySchema(many=True).dump(rows))
        return
    data = [(d.attempted_at.isoformat(timespec="seconds"), f"{d.first_alert_id}-{d.last_alert_id}", d.alerts,
             d.status_code if d.status_code is not None else "", "yes" if d.delivered else "no", d.error or "",
             d.duration_ms) for d in rows]
    if fmt == CSV:
        emit_csv(["attempted_at", "alert_ids", "alerts", "status_code", "delivered", "error", "duration_ms"], data)
    else:
        emit_table(["Attempted", "Alert ids", "Alerts", "Status", "Delivered", "Error", "ms"], data,
                   title=f"Deliveries of {name}", right=["Alerts", "Status", "ms"])
