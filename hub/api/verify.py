"""Verify an uploaded audit extract against the published roots the hub is configured with (`--trust`).

The checks are `verifier`'s, run exactly as `bidtrace verify` runs them; the hub only hands over the bytes
and the roots. Without configured roots no extract can be VERIFIED (it is UNTRUSTED at best), as offline.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request

from hub.api.deps import get_hub, require
from hub.api.models import Problem
from hub.errors import Invalid
from hub.service import Hub
from hub.workflows.proofs import trust_roots
from notary.access import Caller
from verifier.extract import ExtractReport, verify_extract
from verifier.report import render_html

router = APIRouter(tags=["verification"], responses={s: {"model": Problem} for s in (401, 403, 413, 422)})


@dataclass(frozen=True)
class CheckedExtract:
    """An uploaded extract's findings and the court's report of them, in one language."""

    report: ExtractReport
    html: str


def check_extract(hub: Hub, data: bytes, name: str, lang: str = "zh") -> CheckedExtract:
    """Run `verifier` over `data` (an extract's bytes) against the hub's configured roots and render the
    report. The bytes live in a private temporary file only while they are checked."""
    if not data:
        raise Invalid("the upload is empty: choose an audit extract (.zip) made by `bidtrace extract`")
    roots = trust_roots(hub.config.trust)
    uploads = hub.config.data_dir / "uploads"
    uploads.mkdir(mode=0o700, exist_ok=True)
    safe = "".join(c for c in Path(name).name if c.isalnum() or c in "._-")[:80] or "extract.zip"
    with tempfile.TemporaryDirectory(dir=uploads) as folder:
        path = Path(folder) / safe  # the report names the file as it was uploaded
        path.write_bytes(data)
        report = verify_extract(path, roots)
        return CheckedExtract(report, render_html(report, path, lang))


def report_json(report: ExtractReport) -> dict[str, Any]:
    return {"verdict": report.verdict.value, "project_id": report.project_id, "log_id": report.log_id,
            "findings": [{"name": f.name, "ok": f.ok, "detail": f.detail} for f in [*report.findings,
                                                                                      *report.sessions]],
            "failed_records": [{"leaf_index": r.leaf_index, "type": r.type, "errors": r.errors}
                               for r in report.records if not r.ok],
            "errors": report.errors, "checked_against": report.checked_against}


@router.post("/extracts/verify", summary="Verify an audit extract (the zip as the body) against the hub's "
                                         "published roots; the same checks as `bidtrace verify`")
async def verify_upload(request: Request, hub: Hub = Depends(get_hub),
                        _: Caller = Depends(require("verify_extract"))) -> dict[str, Any]:
    checked = check_extract(hub, await request.body(), "extract.zip")
    return report_json(checked.report)
