"""Submitting and reading records."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response

from notary.access import DEVICE_FUNCTIONS, Caller, Role
from notary.api.deps import (
    NOT_PROJECT,
    Metrics,
    check_project,
    get_metrics,
    get_notary,
    record_access,
    release,
    require,
)
from notary.api.models import Problem, ReceiptJson, RecordOut, RecordPage, SubmissionIn, SubmissionOut
from notary.log import Disclosure, Submission
from notary.records import PAYLOADS
from notary.service import Notary
from verifier.merkle import leaf_hash

router = APIRouter(prefix="/v1", tags=["records"])
LeafIndex = Annotated[int, Path(ge=0, le=2**42)]
_ERRORS: dict[int | str, dict[str, object]] = {
    s: {"model": Problem} for s in (400, 401, 403, 409, 413, 422, 503)
}


@router.post("/records", response_model=SubmissionOut, responses=_ERRORS)
async def submit_records(
    body: SubmissionIn, notary: Notary = Depends(get_notary), metrics: Metrics = Depends(get_metrics),
    caller: Caller = Depends(require("submit_records")),
) -> Response:
    """Append one record or a batch. Answers only after the records are durable; resubmitting a
    record returns its original receipt and appends nothing. The caller submits as itself; a device
    only for its own venue and only the record types of its function. A worker with too many submissions
    in flight answers 503 with Retry-After (nothing was appended; send the same request again then).

    Well-formed requests are served by `notary.api.intake.Intake` in front of the framework, with the same
    dependency and `accept_submission`; this route answers the others (and publishes the contract)."""
    return Response(await accept_submission(body, notary, metrics, caller), media_type="application/json")


async def accept_submission(body: SubmissionIn, notary: Notary, metrics: Metrics, caller: Caller) -> bytes:
    """The answer to a submission `caller` was authenticated for: the JSON body of a 200, once durable."""
    _check_submitter(caller, body)
    submission = Submission(
        submitter=body.submitter,
        records=body.records,
        signature=body.signature,
        disclosures=[Disclosure(d.index, d.field, d.salt, d.value) for d in body.disclosures],
    )
    with metrics.submit_seconds.time():
        result = await notary.log.submit_async(submission)
    notary.storage_error = None
    duplicates = len(result.receipts) - result.appended
    metrics.appended.inc(result.appended)
    metrics.duplicates.inc(duplicates)
    notary.sealer.nudge(1 + max(r.leaf_index for r in result.receipts))
    return json.dumps({"receipts": result.encode(), "appended": result.appended,
                       "duplicates": duplicates}).encode()


def _check_submitter(caller: Caller, body: SubmissionIn) -> None:
    p = caller.principal
    if p is None:
        return  # an --insecure-local caller; the batch signature still names a registered submitter
    if body.submitter != p.principal_id:
        raise HTTPException(403, f"{p.describe()} may submit only as itself, not as {body.submitter}")
    if p.role is not Role.DEVICE:
        return
    types = DEVICE_FUNCTIONS[p.function or ""]
    for i, record in enumerate(body.records):
        if record.get("venue_id") != p.venue_id:
            raise HTTPException(403, f"record {i}: device {p.principal_id} is bound to venue {p.venue_id}; "
                                     f"it may not speak for venue {record.get('venue_id')!r}")
        if record.get("type") in PAYLOADS and record.get("type") not in types:
            raise HTTPException(403, f"record {i}: device {p.principal_id} is a {p.function}; it may submit "
                                     f"{', '.join(sorted(types))}, not {record.get('type')!r}")


def _project_of(entry: bytes) -> str:
    return str(json.loads(entry)["record"]["project_id"])


def _record_out(leaf_index: int, entry: bytes) -> RecordOut:
    return RecordOut(leaf_index=leaf_index, leaf_hash=leaf_hash(entry).hex(), entry=json.loads(entry))


@router.get("/records", response_model=RecordPage)
def list_records(
    after: Annotated[int, Query(ge=-1, le=2**42, description="return leaves after this index")] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    project_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")] = None,
    notary: Notary = Depends(get_notary),
    caller: Caller = Depends(require("read_records")),
) -> RecordPage:
    if project_id is None and caller.principal is not None and caller.principal.role is Role.COURT:
        raise HTTPException(403, f"{caller.principal.describe()} reads only its granted projects: name project_id")
    if project_id is not None:
        check_project(caller, project_id)
    record_access(notary, caller, "read_records", project_id or NOT_PROJECT,
                  f"GET /v1/records?project_id={project_id or ''}&after={after}&limit={limit}")
    rows = notary.log.entries(after=after, limit=limit, project_id=project_id)
    return release(notary, caller, RecordPage(
        records=[_record_out(seq, entry) for seq, entry in rows],
        next_after=rows[-1][0] if len(rows) == limit else None,
    ))


@router.get("/records/{leaf_index}", response_model=RecordOut, responses={404: {"model": Problem}})
def get_record(leaf_index: LeafIndex, notary: Notary = Depends(get_notary),
               caller: Caller = Depends(require("read_records"))) -> RecordOut:
    entry = notary.log.entry(leaf_index)
    if entry is None:
        raise HTTPException(404, f"leaf {leaf_index} is not in the log (size {notary.log.size})")
    project_id = _project_of(entry)
    check_project(caller, project_id)
    record_access(notary, caller, "read_record", project_id, f"GET /v1/records/{leaf_index}")
    return release(notary, caller, _record_out(leaf_index, entry))


@router.get("/records/{leaf_index}/receipt", response_model=ReceiptJson, responses={404: {"model": Problem}})
def get_receipt(leaf_index: LeafIndex, notary: Notary = Depends(get_notary),
                _: Caller = Depends(require("read_public"))) -> dict[str, Any]:
    """Public: a receipt carries hashes and the notary's signature, nothing of the record."""
    if leaf_index >= notary.log.size:
        raise HTTPException(404, f"leaf {leaf_index} is not in the log (size {notary.log.size})")
    return notary.log.receipt(leaf_index).encode()
