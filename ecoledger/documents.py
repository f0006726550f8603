"""Reading YAML (or JSON) documents: onboarding documents, ecosystem files.

YAML would read 2026-10-01 as a date and 62.5 as a binary float; the schemas want the text
as written (dates are checked as ISO dates, decimals are never floats), exactly as in a
JSON document. The safe loader builds plain data only: no Python objects from tags.
"""

from __future__ import annotations

from typing import Any

import yaml

from ledger.records import E_MALFORMED, LedgerError, Problem

DOCUMENT_BYTES_MAX = 4 * 1024 * 1024


class _TextScalarsLoader(yaml.SafeLoader):
    pass


_TextScalarsLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:float")]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_document(raw: bytes | str, source: str) -> Any:
    """A YAML or JSON document; refused with the source named if it is not one."""
    if len(raw) > DOCUMENT_BYTES_MAX:
        raise LedgerError(Problem(E_MALFORMED, None, f"{source}: larger than {DOCUMENT_BYTES_MAX} bytes"))
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return yaml.load(text, Loader=_TextScalarsLoader)  # noqa: S506  (a SafeLoader subclass)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LedgerError(Problem(E_MALFORMED, None, f"{source}: not YAML or JSON: {exc}")) from None
