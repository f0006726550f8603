"""Journal entries: post a batch, list, get one, reverse."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import database
from api.auth import POST, READ, principal, requires, visible_company
from api.problems import PROBLEM_CONTENT_TYPE, ApiProblem, RejectedBatchProblemSchema
from api.resources.common import ALL_OR_NOTHING, PARTIAL, PageArgsSchema, batch_body, decode_cursor, encode_cursor
from config import limits
from config.currencies import MINOR_UNITS
from ledger import posting, reports, reversal
from ledger.interchange import parse_entry
from ledger.schemas import EntryDocumentSchema, PostingReportSchema, ReversalSchema

blp = Blueprint("entries", __name__, description="Journal entries")



# Documentation of the request body. The body is parsed by ledger.interchange, the same
# strict parser as `ecoledger post` (faster than marshmallow by 4x, and identical in
# verdicts to the CLI); these schemas only describe it in the OpenAPI document.
class PostingInputSchema(Schema):
    company = fields.String(required=True, validate=validate.Length(1, 32), metadata={"example": "OPFI"})
    account = fields.String(required=True, validate=validate.Length(1, 200), metadata={"example": "Income:Usage"})
    amount = fields.String(required=True, validate=validate.Regexp(r"^-?[0-9]{1,19}(\.[0-9]{1,4})?$"),
                           metadata={"description": "decimal string in major units; debit > 0, credit < 0", "example": "-190.00"})
    currency = fields.String(required=True, validate=validate.OneOf(sorted(MINOR_UNITS)))
    dimensions = fields.Dict(keys=fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,62}$")),
                             values=fields.String(validate=validate.Length(1, 200)))


class SourceInputSchema(Schema):
    type = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_.\-]{0,63}$"))
    id = fields.String(allow_none=True, validate=validate.Length(1, 200))


class EntryInputSchema(Schema):
    id = fields.String(required=True, validate=validate.Regexp(r"^[!-~]{1,200}$"), metadata={"example": "usage-2026-10-000123"})
    date = fields.Date(required=True)
    description = fields.String(validate=validate.Length(max=limits.DESCRIPTION_CHARS_MAX))
    source = fields.Nested(SourceInputSchema)
    metadata = fields.Dict(keys=fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,62}$")),
                           values=fields.String(validate=validate.Length(1, limits.METADATA_VALUE_CHARS_MAX)))
    postings = fields.List(fields.Nested(PostingInputSchema), required=True,
                           validate=validate.Length(1, limits.POSTINGS_PER_ENTRY_MAX))


class EntriesBatchSchema(Schema):
    entries = fields.List(fields.Nested(EntryInputSchema), required=True,
                          validate=validate.Length(1, limits.BATCH_ENTRIES_MAX))
    mode = fields.String(load_default=ALL_OR_NOTHING, validate=validate.OneOf([ALL_OR_NOTHING, PARTIAL]),
                         metadata={"description": "all_or_nothing: any rejection, nothing is written"})


class EntryListArgsSchema(PageArgsSchema):
    company = fields.String(load_default=None, validate=validate.Length(1, 32))
    account = fields.String(load_default=None, validate=validate.Length(1, 200))
    date_from = fields.Date(load_default=None, data_key="from")
    date_to = fields.Date(load_default=None, data_key="to")
    source_type = fields.String(load_default=None, validate=validate.Length(1, 64))


class EntryPageSchema(Schema):
    items = fields.List(fields.Nested(EntryDocumentSchema))
    next_cursor = fields.String(allow_none=True)


class ReversalInputSchema(Schema):
    entry_id = fields.String(required=True, validate=validate.Length(1, 255))
    date = fields.Date(required=True, metadata={"description": "effective date of the reversal"})
    description = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, limits.DESCRIPTION_CHARS_MAX))


def _batch() -> tuple[list, bool]:
    """The request's entries, parsed as `ecoledger post` parses a file."""
    entries, all_or_nothing = batch_body("entries")
    return [parse_entry(raw, index) for index, raw in enumerate(entries)], all_or_nothing


@blp.route("/entries")
class Entries(MethodView):
    @requires(POST)
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": EntriesBatchSchema}}})
    @blp.response(201, PostingReportSchema, description="every entry accepted or a duplicate")
    @blp.alt_response(200, schema=PostingReportSchema, description="partial mode: some entries rejected, the others posted")
    @blp.alt_response(422, schema=RejectedBatchProblemSchema, content_type=PROBLEM_CONTENT_TYPE,
                      description="all-or-nothing mode: entries rejected (errors name entries[i].field); nothing was posted")
    def post(self):
        """Post a batch of entries (the interchange format of `ecoledger post`).

        Each entry ends as accepted, duplicate (same id and content: nothing written) or
        rejected (with the field and reason). All-or-nothing mode answers 422 and writes
        nothing if any entry is rejected; partial mode posts the others and answers 200.
        """
        drafts, all_or_nothing = _batch()
        report = posting.post_entries(database(), drafts, actor=principal().actor,
                                      all_or_nothing=all_or_nothing, collect_results=True)
        document = PostingReportSchema().dump(report)
        if report.ok:
            return document, 201
        if all_or_nothing:
            errors = [
                p.under(f"entries[{o.ref}]")
                for o in report.results
                for p in o.problems
                if p.code != "batch_not_posted"
            ]
            raise ApiProblem(422, f"{report.rejected} of {report.total} entries rejected; nothing was posted",
                             code="entries_rejected", errors=errors, extra={"report": document})
        return document, 200

    @requires(READ)
    @blp.arguments(EntryListArgsSchema, location="query")
    @blp.response(200, EntryPageSchema)
    def get(self, args):
        """Entries in journal order, filtered; a partner sees only its company's postings."""
        own = principal().partner_company
        company = args["company"]
        if own is not None:
            company = visible_company(company) if company is not None else own
        after = decode_cursor(args["cursor"]) or 0
        if not isinstance(after, int) or after < 0:
            raise ApiProblem(400, "the cursor is not one this API gave out", code="invalid_cursor")
        items, next_after = reports.list_entries(
            database(), company=company, account=args["account"], date_from=args["date_from"],
            date_to=args["date_to"], source_type=args["source_type"], after_seq=after, limit=args["limit"],
            company_postings_only=own is not None,
        )
        return {"items": items, "next_cursor": encode_cursor(next_after) if next_after else None}


@blp.route("/entries/<path:entry_id>")
class Entry(MethodView):
    @requires(READ)
    @blp.response(200, EntryDocumentSchema)
    def get(self, entry_id):
        """One entry with its postings, source, reversal links and hashes."""
        return reports.get_entry(database(), entry_id, company=principal().partner_company)


@blp.route("/reversals")
class Reversals(MethodView):
    @requires(POST)
    @blp.arguments(ReversalInputSchema)
    @blp.response(201, ReversalSchema, description="the reversal was posted")
    @blp.alt_response(200, schema=ReversalSchema, description="the entry was already reversed on that date")
    def post(self, body):
        """Reverse an entry: its exact negation, dated explicitly, at most once."""
        result = reversal.reverse_entry(database(), body["entry_id"], body["date"], actor=principal().actor,
                                        description=body["description"])
        return result, 201 if result.created else 200
