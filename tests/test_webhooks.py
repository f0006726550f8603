"""Webhooks: alerts pushed to a real HTTP receiver, signed, at least once and in order; a
failing receiver keeps its place and waits; the CLI and the API over the same service."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.server
import json
import threading

import pytest
from sqlalchemy import text
from test_api_usage import eco_api  # noqa: F401 (the fixture)
from test_usage import MONTH, build_eco, line, run
from test_usage_cli import eco_cli, raise_budget_alert  # noqa: F401 (the fixture)

from ledger.records import LedgerError
from usage.webhooks import (
    BACKOFF_FIRST,
    add_webhook,
    deliver_webhooks,
    disable_webhook,
    list_deliveries,
    list_webhooks,
    signature,
)


class Receiver:
    """An HTTP server on a free local port that records each POST and answers the status
    codes it is told to, in turn (then 204)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alert_ids(self) -> list[list[int]]:
        return [[a["id"] for a in json.loads(body)["alerts"]] for _, body in self.requests]


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture
def eco(empty_db):
    return build_eco(empty_db)


def test_alerts_raised_after_the_webhook_reach_it_signed(eco, receiver):
    run(eco, MONTH[:1])  # 3 of 5 hours: no alert yet
    hook, secret = add_webhook(eco, {"name": "ops", "url": receiver.url}, actor="t")
    assert secret.startswith("whsec_") and hook.delivered_through == 0 and hook.kinds[0] == "allowance"
    assert deliver_webhooks(eco).attempts == 0  # nothing raised yet

    run(eco, MONTH[1:])  # the allowance's 80% and 100% alerts
    outcome = deliver_webhooks(eco)
    assert (outcome.attempts, outcome.delivered, outcome.failed) == (1, 2, [])
    headers, body = receiver.requests[0]
    document = json.loads(body)
    assert document["type"] == "usage.alerts" and document["webhook"] == "ops"
    assert [(a["kind"], a["threshold_percent"], a["line_id"], a["contract"]) for a in document["alerts"]] == [
        ("allowance", 80, "d2", "SD-1"), ("allowance", 100, "d3", "SD-1")]
    # the receiver's check: HMAC-SHA256 of "t.body" under the secret
    stamp, mac = (part.split("=", 1)[1] for part in headers["Ecoledger-Signature"].split(","))
    assert hmac.compare_digest(mac, hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest())
    assert headers["Ecoledger-Signature"] == signature(secret, int(stamp), body)
    assert headers["Ecoledger-Webhook-Id"] == f"ops:{document['alerts'][0]['id']}-{document['alerts'][1]['id']}"

    # delivered once: the next run sends nothing
    assert deliver_webhooks(eco).attempts == 0 and len(receiver.requests) == 1
    [shown] = list_webhooks(eco)
    assert shown.delivered_through == document["alerts"][1]["id"] and shown.failures == 0
    [delivery] = list_deliveries(eco, "ops")
    assert (delivery.status_code, delivery.delivered, delivery.alerts) == (204, True, 2)


def test_a_failing_receiver_keeps_its_place_waits_and_gets_the_same_alerts_again(eco, receiver):
    add_webhook(eco, {"name": "ops", "url": receiver.url}, actor="t")
    run(eco, MONTH)
    receiver.answers = [500]
    start = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)
    failed = deliver_webhooks(eco, now=lambda: start)
    assert (failed.attempts, failed.delivered, failed.failed) == (1, 0, ["ops"])
    [hook] = list_webhooks(eco)
    assert (hook.delivered_through, hook.failures, hook.last_error) == (0, 1, "answered 500")
    assert hook.next_attempt_at == start + BACKOFF_FIRST

    # not before its time; then the same alerts again, and a 2xx moves the place
    assert deliver_webhooks(eco, now=lambda: start + dt.timedelta(seconds=30)).attempts == 0
    assert deliver_webhooks(eco, now=lambda: start + BACKOFF_FIRST).delivered == 2
    assert receiver.alert_ids()[0] == receiver.alert_ids()[1]
    [hook] = list_webhooks(eco)
    assert hook.failures == 0 and hook.next_attempt_at is None and hook.last_error is None
    assert [(d.status_code, d.delivered) for d in list_deliveries(eco, "ops")] == [(204, True), (500, False)]


def test_an_unreachable_receiver_backs_off_doubling(eco, receiver):
    receiver.server.shutdown()
    receiver.server.server_close()  # nothing listens on the port any more
    add_webhook(eco, {"name": "gone", "url": receiver.url}, actor="t")
    run(eco, MONTH)
    at = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)
    waits = []
    for _ in range(3):
        assert deliver_webhooks(eco, now=lambda at=at: at).failed == ["gone"]
        [hook] = list_webhooks(eco)
        waits.append(hook.next_attempt_at - at)
        at = hook.next_attempt_at
    assert waits == [BACKOFF_FIRST, 2 * BACKOFF_FIRST, 4 * BACKOFF_FIRST]
    [latest, *_] = list_deliveries(eco, "gone")
    assert latest.status_code is None and latest.error.startswith("URLError") and "refused" in latest.error, latest


def test_kinds_and_company_filter_what_a_webhook_gets(eco, receiver):
    add_webhook(eco, {"name": "budget-only", "url": receiver.url, "kinds": ["budget"]}, actor="t")
    add_webhook(eco, {"name": "other-company", "url": receiver.url, "company": "FIXR"}, actor="t")
    run(eco, MONTH)  # allowance alerts only
    assert deliver_webhooks(eco).attempts == 0
    night = [line(f"n{i}", "2026-10-20T23:00:00+03:00", "service-desk", "2", attributes={"shift": "night"})
             for i in range(1, 5)]
    run(eco, night)  # the desk's budget of 500.00 is crossed
    outcome = deliver_webhooks(eco)
    assert outcome.attempts == 1  # budget-only; FIXR bills no contract
    assert {a["kind"] for _, body in receiver.requests for a in json.loads(body)["alerts"]} == {"budget"}


def test_alerts_go_in_batches_in_order(eco, receiver, monkeypatch):
    import usage.webhooks as webhooks

    monkeypatch.setattr(webhooks, "ALERTS_PER_DELIVERY", 1)
    add_webhook(eco, {"name": "ops", "url": receiver.url}, actor="t")
    run(eco, MONTH)
    assert deliver_webhooks(eco).attempts == 2
    first, second = receiver.alert_ids()
    assert len(first) == len(second) == 1 and first[0] < second[0]


def test_bad_webhooks_are_refused_and_nothing_is_written(eco):
    cases = [
        ({"name": "x", "url": "ftp://example.com/h"}, "url"),
        ({"name": "x", "url": "https://user:pw@example.com/h"}, "url"),
        ({"name": "x", "url": "not a url"}, "url"),
        ({"name": "Bad Name", "url": "https://example.com/h"}, "name"),
        ({"name": "x", "url": "https://example.com/h", "kinds": ["nope"]}, "kinds"),
        ({"name": "x", "url": "https://example.com/h", "kinds": []}, "kinds"),
        ({"name": "x", "url": "https://example.com/h", "company": "NOPE"}, "company"),
        ({"name": "x", "url": "https://example.com/h", "extra": 1}, "extra"),
        ({"url": "https://example.com/h"}, "name"),
    ]
    for document, field in cases:
        with pytest.raises(LedgerError) as caught:
            add_webhook(eco, document, actor="t")
        assert any(p.field.startswith(field) for p in caught.value.problems), (document, caught.value.problems)
    assert list_webhooks(eco) == []
    add_webhook(eco, {"name": "x", "url": "https://example.com/h"}, actor="t")
    with pytest.raises(LedgerError, match="exists"):
        add_webhook(eco, {"name": "x", "url": "https://example.com/other"}, actor="t")


def test_a_disabled_webhook_gets_nothing_and_deliveries_are_kept(eco, receiver):
    add_webhook(eco, {"name": "ops", "url": receiver.url}, actor="t")
    disable_webhook(eco, "ops", actor="t")
    assert disable_webhook(eco, "ops", actor="t").active is False  # twice: harmless
    run(eco, MONTH)
    assert deliver_webhooks(eco).attempts == 0 and receiver.requests == []
    with pytest.raises(LedgerError, match="no webhook"):
        disable_webhook(eco, "nope", actor="t")
    with eco.write() as conn:
        actions = conn.execute(text("SELECT action FROM audit_log WHERE target = 'ops' ORDER BY id")).scalars().all()
    assert actions == ["webhook.add", "webhook.disable"]


def test_the_cli(eco_cli, receiver, tmp_path):  # noqa: F811
    cli = eco_cli
    code, out, err = cli("webhook", "add", "ops", "--url", receiver.url, "--kind", "budget", "--format", "json")
    assert code == 0 and json.loads(out)["secret"].startswith("whsec_"), err
    raise_budget_alert(cli, tmp_path)
    code, out, _ = cli("webhook", "deliver", "--format", "json")
    assert code == 0 and json.loads(out) == {"attempts": 1, "delivered": 1, "failed": []}
    code, out, _ = cli("webhook", "list", "--format", "json")
    [shown] = json.loads(out)
    assert "secret" not in shown and shown["kinds"] == ["budget"] and shown["delivered_through"] > 0
    code, out, _ = cli("webhook", "deliveries", "ops", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("attempted_at,alert_ids")
    code, out, _ = cli("job", "run", "deliver-webhooks", "--format", "json")
    assert code == 0 and json.loads(out)["result"] == {"attempts": 0, "delivered": 0, "failed": []}
    code, out, _ = cli("webhook", "disable", "ops")
    assert code == 0 and "disabled" in out
    code, _, err = cli("webhook", "deliveries", "nope")
    assert code == 1 and "no webhook 'nope'" in err
    code, _, err = cli("webhook", "add", "bad", "--url", "file:///etc/passwd")
    assert code == 1 and "url" in err


def test_the_api(eco_api, receiver):  # noqa: F811
    api = eco_api
    created = api.call("operator_admin", "POST", "/webhooks", json={"name": "ops", "url": receiver.url})
    assert created.status_code == 201 and created.get_json()["secret"].startswith("whsec_")
    listed = api.call("auditor", "GET", "/webhooks").get_json()
    assert [w["name"] for w in listed] == ["ops"] and "secret" not in listed[0]
    bad = api.call("operator_admin", "POST", "/webhooks", json={"name": "x", "url": "gopher://h"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "url"
    job = api.call("controller", "POST", "/webhook-deliveries")
    assert job.status_code == 202 and job.get_json()["kind"] == "deliver-webhooks"
    assert api.call("auditor", "GET", "/webhooks/ops/deliveries").status_code == 200
    assert api.call("auditor", "GET", "/webhooks/nope/deliveries").status_code == 404
    disabled = api.call("operator_admin", "DELETE", "/webhooks/ops")
    assert disabled.status_code == 200 and disabled.get_json()["active"] is False


def test_the_receivers_check_in_the_docs_accepts_a_signature_and_refuses_a_forgery():
    from pathlib import Path

    docs = (Path(__file__).parent.parent / "docs" / "usage.md").read_text(encoding="utf-8")
    section = docs[docs.index("## Webhooks"):]
    code = section[section.index("```python") + len("```python"):]
    namespace: dict = {}
    exec(code[:code.index("```")], namespace)  # noqa: S102 (our own documentation)
    body = b'{"alerts":[]}'
    header = signature("whsec_x", 1_790_000_000, body)
    assert namespace["genuine"]("whsec_x", header, body)
    assert not namespace["genuine"]("whsec_x", header, body + b" ")
    assert not namespace["genuine"]("whsec_y", header, body)


def test_the_schedule_starts_a_delivery_only_when_one_is_due(eco, receiver, db_url, tmp_path):
    from config import Settings
    from jobs import store
    from jobs.celery_app import SCHEDULE_TASK, create_app
    from usage.webhooks import deliveries_due

    tick = create_app(Settings(database_url=db_url, data_dir=str(tmp_path), schedule_enabled=True)).tasks[SCHEDULE_TASK]
    add_webhook(eco, {"name": "budget-only", "url": receiver.url, "kinds": ["budget"]}, actor="t")
    tick.run("deliver-webhooks", {})
    assert not deliveries_due(eco) and store.list_jobs(eco) == []  # no alert: no job row
    run(eco, MONTH)  # allowance alerts: none for this webhook, but it is behind them
    assert deliveries_due(eco)
    assert deliver_webhooks(eco).attempts == 0  # nothing to send: its place passes over them
    assert not deliveries_due(eco) and receiver.requests == []
    add_webhook(eco, {"name": "ops", "url": receiver.url}, actor="t")
    receiver.answers = [204, 503]  # webhooks go in name order: budget-only, then ops
    night = [line(f"n{i}", "2026-10-20T23:00:00+03:00", "service-desk", "2", attributes={"shift": "night"})
             for i in range(1, 5)]
    run(eco, night)  # budget alerts
    tick.run("deliver-webhooks", {})
    assert [job.kind for job in store.list_jobs(eco)] == ["deliver-webhooks"]
    # run here: ops fails and waits; budget-only gets its alerts
    assert deliver_webhooks(eco).failed == ["ops"]
    assert not deliveries_due(eco)  # ops waits after its failure
    assert deliveries_due(eco, at=dt.datetime.now(dt.UTC) + BACKOFF_FIRST)
