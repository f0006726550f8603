"""The disclosure pack a close produces (step 6): every revenue report of the month as
JSON, CSV and PDF, the waterfall chart as PNG, and a manifest with each file's SHA-256, in
one directory per company, month and close run. The reports are recomputed from the ledger
and the schedules, so a pack written again for the same run is byte for byte the same."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import NamedTuple

from billing.pdf import Fonts
from ledger.database import Database
from revrec.pdf import report_pdf, waterfall_png
from revrec.reports import REPORTS, build_report
from revrec.schemas import REPORT_SCHEMAS
from revrec.ssp import SspTable


class PackFile(NamedTuple):
    name: str
    sha256: str
    size_bytes: int


class Pack(NamedTuple):
    directory: str
    files: list[PackFile]


def pack_directory(root: Path, company: str, period: str, run_no: int) -> Path:
    return root / "disclosures" / company / period / f"run-{run_no}"


def write_pack(db: Database, company: str, period: str, run_no: int, *, ssp: SspTable, day_count: str, root: Path,
               font: Fonts) -> Pack:
    directory = pack_directory(root, company, period, run_no)
    directory.mkdir(parents=True, exist_ok=True)
    documents: dict[str, bytes] = {}
    for kind in REPORTS:
        found, table = build_report(db, kind, company, period, ssp=ssp, day_count=day_count)
        documents[f"{kind}.json"] = json.dumps(REPORT_SCHEMAS[kind].dump(found), indent=2, sort_keys=True).encode()
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(table.columns)
        writer.writerows(table.rows)
        documents[f"{kind}.csv"] = text.getvalue().encode()
        documents[f"{kind}.pdf"] = report_pdf(table, company, period, font)
        if kind == "waterfall":
            documents["waterfall.png"] = waterfall_png(found)
    files = []
    for name, content in sorted(documents.items()):
        (directory / name).write_bytes(content)
        files.append(PackFile(name, hashlib.sha256(content).hexdigest(), len(content)))
    manifest = {"company": company, "period": period, "close_run": run_no,
                "files": [{"name": f.name, "sha256": f.sha256, "size_bytes": f.size_bytes} for f in files]}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return Pack(str(directory), files)
