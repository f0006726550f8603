"""marshmallow schemas of ecoledger's JSON documents: what ``--format json`` prints and what
the API (issue 8) will answer and document in its OpenAPI description. Amounts are decimal
strings in major units beside their currency, as in the interchange format."""

from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from ledger.money import format_amount
from ledger.periods import PERIOD_PATTERN
from ledger.records import E_INVALID, LedgerError, Problem

# Validators the request and job schemas of several capabilities share.
COMPANY_CODE = validate.Regexp(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$", error="a company code")
PERIOD = validate.Regexp(f"^{PERIOD_PATTERN}$", error="a month as YYYY-MM")


def problems_from_messages(messages: Any) -> list[Problem]:
    """marshmallow's (or webargs') error messages as problems whose fields are JSON paths:
    {"agreements": {0: {"code": ["..."]}}} becomes agreements[0].code. The request part
    that webargs adds ("json", "query", ...) is left out."""
    problems: list[Problem] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if not path and key in ("json", "query", "form", "headers", "path", "view_args"):
                    walk(inner, "")
                elif isinstance(key, int):
                    walk(inner, f"{path}[{key}]")
                else:
                    walk(inner, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            problems.extend(Problem(E_INVALID, path or None, text) for text in value)
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                walk(inner, f"{path}[{index}]")
        else:
            problems.append(Problem(E_INVALID, path or None, str(value)))

    walk(messages, "")
    return problems


def load_document(schema: Schema, document: Any, what: str) -> dict:
    """``document`` loaded by a marshmallow ``schema``; refused as a LedgerError whose
    problems name each field's path. ``what`` names the record with its article ("a
    customer")."""
    if not isinstance(document, dict):
        raise LedgerError(Problem(E_INVALID, None, f"{what} is a mapping of fields"))
    try:
        return schema.load(document)
    except ValidationError as exc:
        raise LedgerError(*problems_from_messages(exc.messages)) from None


def major_units(document: dict, currency: str) -> dict:
    """A stored document as shown: every ``<name>_minor`` amount, in nested lists of
    documents too, becomes ``<name>``, a decimal string in major units of ``currency``."""
    shown: dict = {}
    for name, value in document.items():
        if name.endswith("_minor") and isinstance(value, int):
            shown[name.removesuffix("_minor")] = format_amount(value, currency)
        elif isinstance(value, list) and all(isinstance(item, dict) for item in value):
            shown[name] = [major_units(item, currency) for item in value]
        else:
            shown[name] = value
    return shown


def money_field(attribute: str) -> fields.Function:
    """An amount in minor units shown as a decimal string of the object's currency."""
    return fields.Function(
        lambda obj: format_amount(getattr(obj, attribute), obj.currency),
        metadata={"description": "decimal string in major units of the currency"},
    )


class FieldErrorSchema(Schema):
    """One problem with a request or an entry: its stable code, the field, the reason."""

    code = fields.String(required=True, metadata={"description": "stable error code"})
    field = fields.String(allow_none=True, metadata={"description": "JSON path of the field concerned"})
    message = fields.String(required=True)


class CompanySchema(Schema):
    code = fields.String()
    name = fields.String()
    functional_currency = fields.String()
    roles = fields.List(fields.String())
    created_at = fields.DateTime()
    account_count = fields.Integer()


class AccountSchema(Schema):
    company = fields.String()
    name = fields.String()
    type = fields.String()
    currencies = fields.List(fields.String())
    constraint = fields.String(allow_none=True)
    open_date = fields.Date()
    close_date = fields.Date(allow_none=True)
    description = fields.String()


class OutcomeSchema(Schema):
    ref = fields.Raw(metadata={"description": "line number (CLI) or index (API) of the entry"})
    id = fields.String(attribute="external_id", allow_none=True)
    status = fields.String(metadata={"description": "accepted, duplicate or rejected"})
    entry_seq = fields.Integer(allow_none=True, metadata={"description": "journal position"})
    problems = fields.List(fields.Nested(FieldErrorSchema))


class PostingReportSchema(Schema):
    all_or_nothing = fields.Boolean()
    accepted = fields.Integer()
    duplicates = fields.Integer()
    rejected = fields.Integer()
    not_posted = fields.Integer(
        metadata={"description": "valid entries rolled back because the all-or-nothing batch had rejections"}
    )
    first_entry_seq = fields.Integer(allow_none=True)
    last_entry_seq = fields.Integer(allow_none=True)
    rejections = fields.List(fields.Nested(OutcomeSchema))
    rejections_omitted = fields.Integer()
    results = fields.List(fields.Nested(OutcomeSchema), allow_none=True)


class BalanceLineSchema(Schema):
    company = fields.String()
    account = fields.String()
    type = fields.String()
    currency = fields.String()
    balance = money_field("balance_minor")
    balance_minor = fields.Integer()


class TrialBalanceSchema(Schema):
    as_of = fields.Date(allow_none=True)
    company = fields.String(allow_none=True)
    consolidated = fields.Boolean()
    lines = fields.List(fields.Nested(BalanceLineSchema))
    totals = fields.Method("_totals")

    def _totals(self, obj):
        return [
            {
                "currency": currency,
                "debits": format_amount(debits, currency),
                "credits": format_amount(credits, currency),
            }
            for currency, (debits, credits) in sorted(obj.totals().items())
        ]


class StatementLineSchema(Schema):
    date = fields.Date()
    entry_seq = fields.Integer()
    entry_id = fields.String()
    description = fields.String()
    line_no = fields.Integer()
    currency = fields.String()
    amount = money_field("amount_minor")
    balance = money_field("balance_minor")
    dimensions = fields.Method("_dimensions")

    def _dimensions(self, obj):
        return json.loads(obj.dimensions) if obj.dimensions else {}


class PeriodSchema(Schema):
    company = fields.String()
    period = fields.String()
    start = fields.Date()
    end = fields.Date()
    status = fields.String()
    closed_at = fields.DateTime(allow_none=True)
    closed_by = fields.String(allow_none=True)


class ReversalSchema(Schema):
    original_id = fields.String()
    reversal_id = fields.String()
    entry_seq = fields.Integer()
    effective_date = fields.Date()
    created = fields.Boolean()


class PostingDocumentSchema(Schema):
    company = fields.String()
    account = fields.String()
    amount = money_field("amount_minor")
    currency = fields.String()
    dimensions = fields.Dict(keys=fields.String(), values=fields.String())


class SourceSchema(Schema):
    type = fields.String()
    id = fields.String(allow_none=True)


class EntryDocumentSchema(Schema):
    """A stored entry: the interchange format plus what the ledger recorded."""

    id = fields.String(attribute="external_id")
    date = fields.Date(attribute="effective_date")
    description = fields.String()
    source = fields.Nested(SourceSchema)
    metadata = fields.Dict(keys=fields.String(), values=fields.String())
    postings = fields.List(fields.Nested(PostingDocumentSchema))
    entry_seq = fields.Integer()
    recorded_at = fields.DateTime()
    reverses = fields.String(allow_none=True)
    reversed_by = fields.String(allow_none=True)
    payload_hash = fields.String()
    chain_hash = fields.String()


class ViolationSchema(Schema):
    check = fields.String()
    entry_id = fields.String(allow_none=True)
    message = fields.String()


class VerifyReportSchema(Schema):
    ok = fields.Boolean()
    entries = fields.Integer()
    postings = fields.Integer()
    head_seq = fields.Integer()
    head_hash = fields.String()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    violations = fields.List(fields.Nested(ViolationSchema))


class JobSchema(Schema):
    """A job as `ecoledger job show --format json` prints it (and the API will answer)."""

    id = fields.String()
    kind = fields.String()
    dedup_key = fields.String()
    partition_key = fields.String(allow_none=True)
    params = fields.Dict()
    status = fields.String(metadata={"description": "queued, running, succeeded, failed or cancelled"})
    cancel_requested = fields.Boolean()
    progress = fields.Function(
        lambda job: {"done": job.progress_done, "total": job.progress_total, "message": job.progress_message}
    )
    attempts = fields.Integer(metadata={"description": "runs started; more than one after a crash"})
    worker = fields.String(allow_none=True)
    heartbeat_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    created_by = fields.String()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    result = fields.Dict(allow_none=True)
    error = fields.String(allow_none=True)
