"""JSON shapes of usage imports, rejects, rated lines, alerts and counters (CLI and API)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields

from ledger.schemas import PERIOD, OutcomeSchema, money_field


class ImportReportSchema(Schema):
    import_id = fields.Integer()
    source = fields.String()
    format = fields.String(attribute="file_format")
    posting = fields.String(metadata={"description": "line or aggregated"})
    status = fields.String(metadata={"description": "complete or interrupted"})
    lines_read = fields.Integer(metadata={"description": "posted + duplicates + rejected"})
    posted = fields.Integer()
    duplicates = fields.Integer()
    rejected = fields.Integer()
    late = fields.Integer(metadata={"description": "posted lines whose period was closed: posted on its first open day"})
    entries_posted = fields.Integer()
    alerts_raised = fields.Integer()
    amounts = fields.Dict(keys=fields.String(), values=fields.Integer(),
                          metadata={"description": "posted amount per currency, in minor units"})
    outcomes = fields.List(fields.Nested(OutcomeSchema), metadata={"description": "duplicates and rejections (the first ones)"})
    outcomes_omitted = fields.Integer()


class UsageImportSchema(Schema):
    id = fields.Integer()
    source = fields.String()
    format = fields.String()
    posting = fields.String()
    status = fields.String()
    lines_read = fields.Integer()
    posted = fields.Integer()
    duplicates = fields.Integer()
    rejected = fields.Integer()
    late = fields.Integer()
    entries_posted = fields.Integer()
    started_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    started_by = fields.String()


class RejectSchema(Schema):
    id = fields.Integer()
    import_id = fields.Integer()
    line_ref = fields.String(metadata={"description": "line number in its file"})
    line_id = fields.String(allow_none=True)
    raw = fields.String(metadata={"description": "the line as read (JSON of its fields)"})
    code = fields.String()
    field = fields.String(allow_none=True)
    message = fields.String()
    status = fields.String(metadata={"description": "open, resolved (a corrected line posted) or resubmitted"})
    resolved_by_import = fields.Integer(allow_none=True)


class RatedLineSchema(Schema):
    id = fields.String()
    import_id = fields.Integer()
    contract = fields.String()
    component = fields.String()
    service = fields.String()
    used_at = fields.DateTime()
    usage_date = fields.Date()
    quantity = fields.String()
    unit = fields.String()
    attributes = fields.Dict(keys=fields.String(), values=fields.String())
    currency = fields.String()
    gross = money_field("gross_minor")
    discount = money_field("discount_minor")
    amount = money_field("amount_minor")
    rating = fields.Dict(metadata={"description": "plan, model, the period counter before the line, driver factor"})
    entry_seq = fields.Integer(allow_none=True, metadata={"description": "the entry that posted it (none for a zero charge)"})
    posted_date = fields.Date()
    late = fields.Boolean()


class AlertSchema(Schema):
    id = fields.Integer()
    contract = fields.String()
    component = fields.String()
    period_start = fields.Date()
    kind = fields.String(metadata={"description": "allowance or budget (a line reached the threshold); underrun, "
                                                  "run_rate_high or run_rate_low (raised when the period ended)"})
    threshold_percent = fields.Integer()
    limit = fields.String()
    used = fields.String()
    line_id = fields.String(allow_none=True, metadata={"description": "the line that reached the threshold; null "
                                                                      "for a period's alerts"})
    raised_at = fields.DateTime()


class PeriodAlertSchema(Schema):
    contract = fields.String()
    component = fields.String()
    period_start = fields.Date()
    kind = fields.String()
    threshold_percent = fields.Integer()
    limit = fields.String(attribute="limit_text")
    used = fields.String(attribute="used_text")


class PeriodAlertReportSchema(Schema):
    period = fields.String()
    components = fields.Integer(metadata={"description": "usage components whose rating period ended in the month"})
    raised = fields.List(fields.Nested(PeriodAlertSchema))


class PeriodAlertArgsSchema(Schema):
    class Meta:
        unknown = RAISE

    period = fields.String(required=True, validate=PERIOD)


class CounterSchema(Schema):
    contract = fields.String()
    component = fields.String()
    period_start = fields.Date()
    period_end = fields.Date()
    quantity = fields.String()
    amount = money_field("amount_minor")
    currency = fields.String()


class WebhookDocumentSchema(Schema):
    name = fields.String()
    url = fields.String()
    kinds = fields.List(fields.String())
    company = fields.String(allow_none=True, metadata={"description": "only alerts of contracts this company bills"})
    active = fields.Boolean()
    delivered_through = fields.Integer(metadata={"description": "the last alert id the receiver acknowledged"})
    failures = fields.Integer(metadata={"description": "consecutive failed attempts"})
    next_attempt_at = fields.DateTime(allow_none=True, metadata={"description": "after a failure: not before"})
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    created_by = fields.String()


class WebhookCreatedSchema(WebhookDocumentSchema):
    secret = fields.String(metadata={"description": "signs every delivery (Ecoledger-Signature); shown this once"})


class WebhookDeliverySchema(Schema):
    webhook = fields.String()
    attempted_at = fields.DateTime()
    first_alert_id = fields.Integer()
    last_alert_id = fields.Integer()
    alerts = fields.Integer()
    status_code = fields.Integer(allow_none=True, metadata={"description": "null: no answer"})
    delivered = fields.Boolean()
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer()
