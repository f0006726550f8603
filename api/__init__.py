"""REST API (issue 8): Flask app factory, one blueprint per resource, marshmallow schemas
shared with the CLI (``ledger.schemas``). Not built yet."""
