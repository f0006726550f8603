"""What each kind of job does. A kind has parameters (a marshmallow schema: validated the
same way from the CLI, the API and the schedule), a dedup key, an optional partition, and a
body that reports progress through its context and returns a JSON-able result summary.

Bodies are idempotent: run again after a crash, a job finishes with exactly the result of
an uninterrupted run. Read-only jobs (verify) are idempotent by nature; jobs that write
make each step transactional (posting batches) or atomic (a file renamed into place).

Clearing runs and closes join this registry with their issues.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from marshmallow import Schema, ValidationError, fields, validate

from ledger.database import Database
from ledger.export import export_beancount
from ledger.queries import journal_head
from ledger.records import E_INVALID, E_NOT_FOUND, LedgerError, Problem
from ledger.schemas import PERIOD, VerifyReportSchema
from ledger.verify import verify


class JobContext(Protocol):
    """What a running job body may use (given by jobs.runner)."""

    db: Database
    data_dir: Path
    actor: str  # who the audit log names for the job's changes: the job, for whoever started it

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        """Report progress; raises to stop the body at this safe point if the job was
        cancelled or its lease lost."""


class JobFailed(Exception):
    """The body ran to the end and the outcome is a failure (verify found violations): the
    job is failed, and its result is kept."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class JobKind:
    name: str
    description: str
    params: type[Schema]
    run: Callable[[JobContext, dict[str, Any]], dict[str, Any]]
    dedup_key: Callable[[dict[str, Any]], str]
    partition_key: Callable[[dict[str, Any]], str | None] = lambda params: None
    # For the schedule: whether a run now would have anything to do (default: always), so
    # that a frequent schedule does not fill the jobs table with runs that did nothing.
    work_due: Callable[[Database], bool] = lambda db: True

    def load_params(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Validated parameters, or LedgerError naming each bad field."""
        try:
            return self.params().load(raw)
        except ValidationError as exc:
            problems = [
                Problem(E_INVALID, f"params.{field}", "; ".join(map(str, messages)) if isinstance(messages, list) else str(messages))
                for field, messages in sorted(exc.normalized_messages().items())
            ]
            raise LedgerError(*problems) from exc


# -- verify -----------------------------------------------------------------------------------


class VerifyParams(Schema):
    pass


def run_verify(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    with ctx.db.read() as conn:
        total, _ = journal_head(conn)
    ctx.progress(0, total, "verifying the journal")
    report = verify(ctx.db, progress=lambda done: ctx.progress(done, total))
    result = VerifyReportSchema().dump(report)
    if not report.ok:
        count = sum(report.counts.values())
        raise JobFailed(f"verification found {count} violation{'s' if count != 1 else ''}", result)
    return result


# -- export beancount ----------------------------------------------------------------------------


class ExportBeancountParams(Schema):
    out = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={"description": "file to write; a relative path is under the data directory's exports/"},
    )
    company = fields.String(load_default=None, validate=validate.Length(min=1, max=32))


def export_path(ctx_data_dir: Path, out: str) -> Path:
    path = Path(out).expanduser()
    return path if path.is_absolute() else ctx_data_dir / "exports" / path


def run_export_beancount(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    target = export_path(ctx.data_dir, params["out"])
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerError(Problem(E_NOT_FOUND, "params.out", f"cannot create {target.parent}: {exc.strerror}")) from exc
    partial = target.with_name(target.name + ".partial")
    with ctx.db.read() as conn:
        total, _ = journal_head(conn)
    ctx.progress(0, total, f"exporting to {target}")
    try:
        with partial.open("w", encoding="utf-8") as out:
            summary = export_beancount(ctx.db, out, company=params["company"], progress=lambda done: ctx.progress(done, total))
            out.flush()
            os.fsync(out.fileno())
        # Atomic: the file under its real name is always complete, from this run or the last.
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    return {
        "path": str(target),
        "sha256": digest,
        "entries": summary.entries,
        "accounts": summary.accounts,
        "balance_assertions": summary.balance_assertions,
    }


# -- jobs that post through the posting rules -------------------------------------------------


def _settings_and_rules():
    """The worker's settings and the posting rules they name, read when the job runs."""
    from config import load_settings
    from contracts.rules import DEFAULT_RULES, RuleError, load_rules

    settings = load_settings()
    try:
        return settings, load_rules(settings.posting_rules or DEFAULT_RULES)
    except RuleError as exc:
        raise LedgerError(Problem(E_INVALID, "posting_rules", str(exc))) from None


# -- import usage -------------------------------------------------------------------------------


class ImportUsageParams(Schema):
    file = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={"description": "usage file (CSV or JSON lines); a relative path is under the data directory's uploads/"},
    )
    file_format = fields.String(load_default=None, validate=validate.OneOf(["csv", "jsonl"]),
                                metadata={"description": "default: csv for *.csv, else JSON lines"})
    posting = fields.String(load_default=None, validate=validate.OneOf(["line", "aggregated"]))
    late_policy = fields.String(load_default=None, validate=validate.OneOf(["first_open_period", "reject"]))
    source = fields.String(load_default=None, validate=validate.Length(min=1, max=200),
                           metadata={"description": "the name the import list shows; default the file's"})


def upload_path(data_dir: Path, file: str) -> Path:
    path = Path(file).expanduser()
    return path if path.is_absolute() else data_dir / "uploads" / path


def run_import_usage(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Import a usage file. Safe to run again after a crash: posted lines are duplicates,
    so the second run posts exactly what the first did not."""
    from usage.lines import guess_format, read_lines
    from usage.schemas import ImportReportSchema
    from usage.service import import_usage, options_from

    path = upload_path(ctx.data_dir, params["file"])
    settings, rules = _settings_and_rules()
    options = options_from(settings, rules, ctx.actor, posting=params["posting"], late_policy=params["late_policy"])
    file_format = params["file_format"] or guess_format(path.name)
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise LedgerError(Problem(E_NOT_FOUND, "params.file", f"cannot read {path}: {exc.strerror}")) from None
    with stream:
        total = os.fstat(stream.fileno()).st_size
        ctx.progress(0, total, f"importing {path.name}")
        report = import_usage(ctx.db, read_lines(stream, file_format), options=options,
                              source=params["source"] or path.name, file_format=file_format,
                              progress=lambda _lines: ctx.progress(stream.tell(), total))
    result = ImportReportSchema().dump(report)
    result["outcomes"] = result["outcomes"][:JOB_OUTCOMES_KEPT]
    result["outcomes_omitted"] = report.outcomes_omitted + max(0, len(report.outcomes) - JOB_OUTCOMES_KEPT)
    return result


# -- billing run ----------------------------------------------------------------------------------


class BillingRunParams(Schema):
    company = fields.String(required=True, validate=validate.Length(min=1, max=32))
    period = fields.String(required=True, validate=PERIOD)
    consolidate = fields.Boolean(load_default=None, allow_none=True,
                                 metadata={"description": "one invoice per organisation; default the "
                                                          "invoice_consolidate setting"})
    rounding = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(["line", "document"]),
                             metadata={"description": "usage rounded per line as rated, or once per invoice; "
                                                      "default the invoice_rounding setting"})
    approval = fields.Boolean(load_default=None, allow_none=True,
                              metadata={"description": "invoice only customers whose open balance was approved at "
                                                       "its total; default the invoice_approval setting"})


def run_billing_run(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Invoice a company's uninvoiced usage up to the end of a period. Safe to run again:
    a run is one transaction, and a second run invoices only what the first did not."""
    from billing.schemas import BillingReportSchema
    from billing.service import run_billing

    settings, rules = _settings_and_rules()
    ctx.progress(0, None, f"billing {params['company']} for {params['period']}")
    consolidate = settings.invoice_consolidate if params["consolidate"] is None else params["consolidate"]
    report = run_billing(ctx.db, params["company"], params["period"], rules=rules, actor=ctx.actor,
                         payment_terms_days=settings.invoice_payment_terms_days, consolidate=consolidate,
                         rounding=params.get("rounding") or settings.invoice_rounding,
                         approval=settings.invoice_approval if params.get("approval") is None else params["approval"])
    return BillingReportSchema().dump(report)


class PeriodAlertParams(Schema):
    period = fields.String(required=True, validate=PERIOD)


def run_period_alerts(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Raise the underrun and run-rate alerts of the rating periods that ended in a month.
    Safe to run again: each alert is raised once."""
    from usage.period_alerts import evaluate_period_alerts, thresholds_from
    from usage.schemas import PeriodAlertReportSchema

    settings, _ = _settings_and_rules()
    ctx.progress(0, None, f"period alerts for {params['period']}")
    report = evaluate_period_alerts(ctx.db, params["period"], actor=ctx.actor, thresholds=thresholds_from(settings))
    return PeriodAlertReportSchema().dump(report)


class ClearingRunParams(Schema):
    period = fields.String(required=True, validate=PERIOD)
    partner = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=32),
                            metadata={"description": "only this partner; default every partner"})


class DeliverWebhooksParams(Schema):
    pass


def run_deliver_webhooks(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Send each webhook the alerts raised since its last acknowledged delivery."""
    from usage.webhooks import deliver_webhooks

    ctx.progress(0, None, "delivering alerts to webhooks")
    run = deliver_webhooks(ctx.db, progress=lambda message: ctx.progress(0, None, message))
    return {"attempts": run.attempts, "delivered": run.delivered, "failed": run.failed}


def _webhooks_due(db: Database) -> bool:
    from usage.webhooks import deliveries_due

    return deliveries_due(db)


def run_clearing_run(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """True up the partners' agreements for a period. Safe to run again: a run posts only
    what earlier runs did not."""
    from clearing.run import run_clearing
    from clearing.schemas import ClearingReportSchema

    _, rules = _settings_and_rules()
    ctx.progress(0, None, f"clearing {params.get('partner') or 'every partner'} for {params['period']}")
    report = run_clearing(ctx.db, params["period"], rules=rules, actor=ctx.actor, partner=params.get("partner"))
    return ClearingReportSchema().dump(report)


def _close_check(name: str) -> None:
    from revrec.close import CHECKS  # when validating: job kinds load before the domain modules

    if name not in CHECKS:
        raise ValidationError(f"no readiness check {name!r}; checks: {', '.join(CHECKS)}")


class CloseParams(Schema):
    company = fields.String(required=True, validate=validate.Length(min=1, max=32))
    period = fields.String(required=True, validate=PERIOD)
    accept = fields.Dict(keys=fields.String(validate=_close_check),
                         values=fields.String(validate=validate.Length(1, 2000)), load_default=dict,
                         metadata={"description": "failed readiness checks accepted: check name -> reason"})


def run_close_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The controller's close of a company's month. A blocked close fails the job with its
    checks; closing a closed month changes nothing."""
    from revrec.close import BLOCKED, run_close
    from revrec.policy import policies
    from revrec.schemas import CloseReportSchema

    settings, _ = _settings_and_rules()
    policy = policies(settings)
    ctx.progress(0, None, f"closing {params['company']} {params['period']}")
    report = run_close(ctx.db, params["company"], params["period"], ssp=policy.ssp, day_count=policy.day_count,
                       actor=ctx.actor, accept=params.get("accept") or {}, cost_expedient=policy.cost_expedient)
    result = CloseReportSchema().dump(report)
    if report.outcome == BLOCKED:
        failed = [check.name for check in report.checks if check.status == "failed"]
        raise JobFailed(f"the close is blocked by failed checks: {', '.join(failed)}", result)
    if report.outcome == "closed":
        from billing.pdf import fonts
        from revrec.disclosure import write_pack

        ctx.progress(0, None, "writing the disclosure pack")
        pack = write_pack(ctx.db, params["company"], params["period"], report.run_no, ssp=policy.ssp,
                          day_count=policy.day_count, root=ctx.data_dir, font=fonts(settings.pdf_font,
                                                                                     settings.pdf_font_bold))
        result["disclosure_pack"] = {"directory": pack.directory, "files": [f.name for f in pack.files]}
    return result


# Rejections kept in an import job's result; all of them are in the rejects store.
JOB_OUTCOMES_KEPT = 100


KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind(
            "verify",
            "recompute every invariant of the ledger (as `ecoledger verify`)",
            VerifyParams,
            run_verify,
            dedup_key=lambda params: "verify",
        ),
        JobKind(
            "export-beancount",
            "write the ledger, or one company's books, as a beancount file",
            ExportBeancountParams,
            run_export_beancount,
            dedup_key=lambda params: f"export-beancount:{params['company'] or '*'}:{params['out']}",
        ),
        JobKind(
            "import-usage",
            "import a usage file: mediate, rate and post its lines (as `ecoledger import usage`)",
            ImportUsageParams,
            run_import_usage,
            dedup_key=lambda params: f"import-usage:{params['file']}"[:255],
        ),
        JobKind(
            "billing-run",
            "invoice a billing company's uninvoiced usage up to the end of a period",
            BillingRunParams,
            run_billing_run,
            dedup_key=lambda params: f"billing-run:{params['company']}:{params['period']}",
            # one billing run per company at a time: numbers are taken in order
            partition_key=lambda params: f"billing:{params['company']}",
        ),
        JobKind(
            "clearing-run",
            "true up the partners' agreements for a period (guarantees, fixed costs, tiered commissions)",
            ClearingRunParams,
            run_clearing_run,
            dedup_key=lambda params: f"clearing-run:{params['period']}:{params.get('partner') or '*'}",
            # one clearing run at a time: items are posted as differences from earlier ones
            partition_key=lambda params: "clearing",
        ),
        JobKind(
            "close",
            "the controller's close of a company's month: readiness checks, recognition batch, lock",
            CloseParams,
            run_close_job,
            dedup_key=lambda params: f"close:{params['company']}:{params['period']}",
            # one close per company at a time: runs are numbered and periods close in order
            partition_key=lambda params: f"close:{params['company']}",
        ),
        JobKind(
            "usage-period-alerts",
            "raise the underrun and run-rate alerts of the rating periods that ended in a month",
            PeriodAlertParams,
            run_period_alerts,
            dedup_key=lambda params: f"usage-period-alerts:{params['period']}",
        ),
        JobKind(
            "deliver-webhooks",
            "send each webhook the alerts raised since its last acknowledged delivery",
            DeliverWebhooksParams,
            run_deliver_webhooks,
            dedup_key=lambda params: "deliver-webhooks",
            # one delivery run at a time: each webhook's alerts go in order
            partition_key=lambda params: "webhooks",
            work_due=_webhooks_due,
        ),
    )
}


def kind_of(name: str) -> JobKind:
    kind = KINDS.get(name)
    if kind is None:
        raise LedgerError(Problem(E_NOT_FOUND, "kind", f"no job kind {name!r}; kinds: {', '.join(sorted(KINDS))}"))
    return kind
