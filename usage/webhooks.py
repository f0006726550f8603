"""Webhooks: alerts pushed to the URLs operators register.

A webhook names a URL, the alert kinds it wants and optionally a company (the alerts of
the contracts that company bills). Delivery is at least once and in alert order: each
webhook keeps its place in the alerts (``delivered_through``, the last alert id a 2xx
acknowledged), so a run sends what came after it, up to ``ALERTS_PER_DELIVERY`` alerts a
request, and moves the place only when the receiver answers 2xx. A failure keeps the
place, counts, and waits before the next attempt (doubling from one minute up to six
hours); the next attempt resends the same alerts, so a receiver dedupes by alert id.

Each request carries ``Ecoledger-Signature: t=<unix time>,v1=<hex>``, the HMAC-SHA256 of
``"<t>.<body>"`` under the webhook's secret, which is shown once when the webhook is
added. The secret is kept in clear, unlike API keys, because signing needs it.

No HTTP is sent inside a database transaction: the alerts are read, the request is sent,
and the attempt is then recorded in a transaction of its own, which moves the place only
if no other delivery moved it meanwhile.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import Connection, func, insert, or_, select, update

from contracts.schema import contracts
from ledger import audit
from ledger.database import Database
from ledger.queries import company_id
from ledger.records import E_CONFLICT, E_NOT_FOUND, LedgerError, Problem, show
from ledger.schema import companies
from ledger.schemas import COMPANY_CODE, load_document
from usage.schema import usage_alerts, webhook_deliveries, webhooks

ALERT_KINDS = ("allowance", "budget", "underrun", "run_rate_high", "run_rate_low")
ALERTS_PER_DELIVERY = 100
DELIVERIES_PER_RUN_MAX = 50  # per webhook: a run ends; the next one goes on
TIMEOUT_SECONDS = 10
BACKOFF_FIRST = dt.timedelta(minutes=1)
BACKOFF_MAX = dt.timedelta(hours=6)
ERROR_CHARS_MAX = 500
NAME = validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,63}$", error="lower-case letters, digits, - and _ (up to 64)")


class Webhook(NamedTuple):
    name: str
    url: str
    kinds: list[str]
    company: str | None
    active: bool
    delivered_through: int
    failures: int
    next_attempt_at: dt.datetime | None
    last_error: str | None
    created_at: dt.datetime
    created_by: str


class Delivery(NamedTuple):
    webhook: str
    attempted_at: dt.datetime
    first_alert_id: int
    last_alert_id: int
    alerts: int
    status_code: int | None
    delivered: bool
    error: str | None
    duration_ms: int


class DeliveryRun(NamedTuple):
    attempts: int
    delivered: int  # alerts acknowledged
    failed: list[str]  # webhooks whose last attempt failed


def _url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError("an http or https URL with a host")
    if parts.username or parts.password:
        raise ValidationError("no credentials in the URL: the signature authenticates deliveries")


class WebhookSchema(Schema):
    class Meta:
        unknown = "raise"

    name = fields.String(required=True, validate=NAME)
    url = fields.String(required=True, validate=[validate.Length(max=2000), _url])
    kinds = fields.List(fields.String(validate=validate.OneOf(ALERT_KINDS)), load_default=list(ALERT_KINDS),
                        validate=validate.Length(min=1), metadata={"description": "alert kinds sent; default all"})
    company = fields.String(load_default=None, validate=COMPANY_CODE,
                            metadata={"description": "only alerts of contracts this company bills"})


def add_webhook(db: Database, document: Any, *, actor: str) -> tuple[Webhook, str]:
    """Register a webhook; (it, its signing secret: shown this once). It sends the alerts
    raised from now on, not the ones before."""
    spec = load_document(WebhookSchema(), document, "a webhook")
    kinds = sorted(set(spec["kinds"]), key=ALERT_KINDS.index)
    secret = "whsec_" + secrets.token_urlsafe(32)
    with db.write() as conn:
        if conn.execute(select(webhooks.c.id).where(webhooks.c.name == spec["name"])).first() is not None:
            raise LedgerError(Problem(E_CONFLICT, "name", f"a webhook {show(spec['name'])} exists"))
        cid = company_id(conn, spec["company"]) if spec["company"] else None
        now = dt.datetime.now(dt.UTC)
        conn.execute(insert(webhooks).values(
            name=spec["name"], url=spec["url"], secret=secret, kinds=json.dumps(kinds), company_id=cid,
            active=True, delivered_through=conn.execute(select(func.coalesce(func.max(usage_alerts.c.id), 0))).scalar(),
            failures=0, next_attempt_at=None, last_error=None, created_at=now, created_by=actor[:200]))
        audit.record(conn, actor=actor, action="webhook.add", target=spec["name"],
                     details={"url": spec["url"], "kinds": kinds, "company": spec["company"]})
        return _webhook(conn, spec["name"]), secret


def disable_webhook(db: Database, name: str, *, actor: str) -> Webhook:
    """Stop a webhook (kept, with its deliveries, for the record). Disabling twice is harmless."""
    with db.write() as conn:
        found = _webhook(conn, name)
        if found.active:
            conn.execute(update(webhooks).where(webhooks.c.name == name).values(active=False))
            audit.record(conn, actor=actor, action="webhook.disable", target=name, details={})
        return _webhook(conn, name)


def list_webhooks(db: Database) -> list[Webhook]:
    with db.read() as conn:
        names = conn.execute(select(webhooks.c.name).order_by(webhooks.c.name)).scalars().all()
        return [_webhook(conn, name) for name in names]


def list_deliveries(db: Database, name: str, *, limit: int = 100) -> list[Delivery]:
    """A webhook's latest delivery attempts, newest first."""
    d = webhook_deliveries.c
    with db.read() as conn:
        webhook_id = _webhook_id(conn, name)
        rows = conn.execute(select(webhook_deliveries).where(d.webhook_id == webhook_id)
                            .order_by(d.id.desc()).limit(max(1, min(limit, 1_000))))
        return [Delivery(name, r.attempted_at, r.first_alert_id, r.last_alert_id, r.alerts, r.status_code,
                         r.delivered, r.error, r.duration_ms) for r in rows]


Send = Callable[[str, bytes, dict[str, str]], int]


def deliver_webhooks(db: Database, *, now: Callable[[], dt.datetime] | None = None, send: Send | None = None,
                     progress: Callable[[str], None] | None = None) -> DeliveryRun:
    """Send every active webhook the alerts after its place, unless it is waiting after a
    failure. ``send`` posts a body and answers the status code (raising ``OSError`` when
    there is no answer); by default an HTTP POST."""
    now = now or (lambda: dt.datetime.now(dt.UTC))
    send = send or _post
    attempts = delivered = 0
    failed: list[str] = []
    for hook in _due(db, now()):
        for _ in range(DELIVERIES_PER_RUN_MAX):
            alerts, latest = _pending(db, hook)
            if not alerts:
                _pass_over(db, hook, latest)
                break
            attempts += 1
            ok, hook = _attempt(db, hook, alerts, now, send)
            if progress:
                progress(f"{hook['name']}: {len(alerts)} alerts {'delivered' if ok else 'not delivered'}")
            if not ok:
                failed.append(hook["name"])
                break
            delivered += len(alerts)
    return DeliveryRun(attempts, delivered, failed)


def deliveries_due(db: Database, at: dt.datetime | None = None) -> bool:
    """Whether some active webhook, not waiting after a failure, is behind the latest alert
    (an alert of a kind it does not want counts: the run then finds nothing to send)."""
    w = webhooks.c
    at = at or dt.datetime.now(dt.UTC)
    with db.read() as conn:
        latest = conn.execute(select(func.coalesce(func.max(usage_alerts.c.id), 0))).scalar()
        return conn.execute(select(w.id).where(
            w.active.is_(True), w.delivered_through < latest,
            or_(w.next_attempt_at.is_(None), w.next_attempt_at <= at)).limit(1)).first() is not None


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Ecoledger-Signature`` header's value for a body sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


# -- delivery ------------------------------------------------------------------------------------


def _due(db: Database, at: dt.datetime) -> list[dict]:
    w = webhooks.c
    with db.read() as conn:
        rows = conn.execute(select(webhooks).where(w.active.is_(True)).order_by(w.name)).mappings().all()
    return [dict(row) for row in rows if row["next_attempt_at"] is None or row["next_attempt_at"] <= at]


def _pending(db: Database, hook: dict) -> tuple[list[dict], int]:
    from usage.schemas import AlertSchema  # the API's alert document, here the payload's

    a = usage_alerts.c
    query = (select(usage_alerts, contracts.c.code.label("contract"))
             .join(contracts, contracts.c.id == a.contract_id)
             .where(a.id > hook["delivered_through"], a.kind.in_(json.loads(hook["kinds"])))
             .order_by(a.id).limit(ALERTS_PER_DELIVERY))
    if hook["company_id"] is not None:
        query = query.where(contracts.c.billing_company_id == hook["company_id"])
    with db.read() as conn:  # one snapshot: every alert up to ``latest`` is in it
        rows = conn.execute(query).mappings().all()
        latest = conn.execute(select(func.coalesce(func.max(a.id), 0))).scalar()
    schema = AlertSchema()
    return [{"id": row["id"], **schema.dump({**row, "limit": row["limit_text"], "used": row["used_text"]})}
            for row in rows], latest


def _pass_over(db: Database, hook: dict, latest: int) -> None:
    """Nothing after the webhook's place is for it (other kinds, other companies): move its
    place to the latest alert, so that it is not due again until a new alert comes."""
    if latest <= hook["delivered_through"]:
        return
    w = webhooks.c
    with db.write(ledger_lock=False) as conn:
        conn.execute(update(webhooks).where(w.id == hook["id"], w.delivered_through == hook["delivered_through"])
                     .values(delivered_through=latest))


def _attempt(db: Database, hook: dict, alerts: list[dict], now: Callable[[], dt.datetime], send: Send
             ) -> tuple[bool, dict]:
    sent_at = now()
    body = json.dumps({"type": "usage.alerts", "webhook": hook["name"], "sent_at": sent_at.isoformat(),
                       "alerts": alerts}, separators=(",", ":"), sort_keys=True).encode()
    first, last = alerts[0]["id"], alerts[-1]["id"]
    headers = {"Content-Type": "application/json", "User-Agent": "ecoledger-webhooks",
               "Ecoledger-Webhook-Id": f"{hook['name']}:{first}-{last}",
               "Ecoledger-Signature": signature(hook["secret"], int(sent_at.timestamp()), body)}
    started = time.monotonic()
    status, error = None, None
    try:
        status = send(hook["url"], body, headers)
        if not 200 <= status < 300:
            error = f"answered {status}"
    except (OSError, ValueError) as exc:  # refused, unreachable, timed out, bad answer
        error = f"{type(exc).__name__}: {exc}"
    ok = error is None
    duration_ms = int((time.monotonic() - started) * 1000)
    with db.write(ledger_lock=False) as conn:
        conn.execute(insert(webhook_deliveries).values(
            webhook_id=hook["id"], attempted_at=sent_at, first_alert_id=first, last_alert_id=last,
            alerts=len(alerts), status_code=status, delivered=ok, error=error and error[:ERROR_CHARS_MAX],
            duration_ms=duration_ms))
        w = webhooks.c
        moved = (dict(delivered_through=last, failures=0, next_attempt_at=None, last_error=None) if ok else
                 dict(failures=hook["failures"] + 1, last_error=error[:ERROR_CHARS_MAX],
                      next_attempt_at=sent_at + _backoff(hook["failures"] + 1)))
        # Only from the place this attempt started at: a concurrent run may have moved it.
        conn.execute(update(webhooks).where(w.id == hook["id"], w.delivered_through == hook["delivered_through"])
                     .values(**moved))
        row = conn.execute(select(webhooks).where(w.id == hook["id"])).mappings().one()
    return ok, dict(row)


def _backoff(failures: int) -> dt.timedelta:
    return min(BACKOFF_FIRST * 2 ** min(failures - 1, 20), BACKOFF_MAX)


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310 (http(s) only)
            return answer.status
    except urllib.error.HTTPError as exc:  # a 4xx or 5xx: an answer, not a failure to reach
        return exc.code


# -- reading -------------------------------------------------------------------------------------


def _webhook_id(conn: Connection, name: str) -> int:
    found = conn.execute(select(webhooks.c.id).where(webhooks.c.name == name)).scalar()
    if found is None:
        raise LedgerError(Problem(E_NOT_FOUND, "webhook", f"no webhook {show(name)}"))
    return found


def _webhook(conn: Connection, name: str) -> Webhook:
    w = webhooks.c
    row = conn.execute(select(webhooks, companies.c.code.label("company"))
                       .outerjoin(companies, companies.c.id == w.company_id).where(w.name == name)).first()
    if row is None:
        raise LedgerError(Problem(E_NOT_FOUND, "webhook", f"no webhook {show(name)}"))
    return Webhook(row.name, row.url, json.loads(row.kinds), row.company, row.active, row.delivered_through,
                   row.failures, row.next_attempt_at, row.last_error, row.created_at, row.created_by)
