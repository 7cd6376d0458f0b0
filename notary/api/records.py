"""Submitting and reading records."""

import json
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response

from notary.api.deps import Metrics, get_metrics, get_notary
from notary.api.models import Problem, Receipt, RecordOut, RecordPage, SubmissionIn, SubmissionOut
from notary.log import Disclosure, Submission
from notary.service import Notary
from verifier.merkle import leaf_hash

router = APIRouter(prefix="/v1", tags=["records"])
LeafIndex = Annotated[int, Path(ge=0, le=2**42)]
_ERRORS: dict[int | str, dict[str, object]] = {
    s: {"model": Problem} for s in (400, 401, 403, 409, 413, 422)
}


@router.post("/records", response_model=SubmissionOut, responses=_ERRORS)
async def submit_records(
    body: SubmissionIn, notary: Notary = Depends(get_notary), metrics: Metrics = Depends(get_metrics)
) -> Response:
    """Append one record or a batch. Answers only after the records are durable; resubmitting a
    record returns its original receipt and appends nothing. Concurrent submissions share one commit."""
    submission = Submission(
        submitter=body.submitter,
        records=body.records,
        signature=body.signature,
        disclosures=[Disclosure(d.index, d.field, d.salt, d.value) for d in body.disclosures],
    )
    with metrics.submit_seconds.time():
        result = await notary.log.submit_async(submission)
    duplicates = len(result.receipts) - result.appended
    metrics.appended.inc(result.appended)
    metrics.duplicates.inc(duplicates)
    notary.sealer.nudge(1 + max(r["leaf_index"] for r in result.receipts))
    content = json.dumps({"receipts": result.receipts, "appended": result.appended, "duplicates": duplicates})
    return Response(content, media_type="application/json")


def _record_out(leaf_index: int, entry: bytes) -> RecordOut:
    return RecordOut(leaf_index=leaf_index, leaf_hash=leaf_hash(entry).hex(), entry=json.loads(entry))


@router.get("/records", response_model=RecordPage)
def list_records(
    after: Annotated[int, Query(ge=-1, le=2**42, description="return leaves after this index")] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    project_id: Annotated[str | None, Query(max_length=128)] = None,
    notary: Notary = Depends(get_notary),
) -> RecordPage:
    rows = notary.log.entries(after=after, limit=limit, project_id=project_id)
    return RecordPage(
        records=[_record_out(seq, entry) for seq, entry in rows],
        next_after=rows[-1][0] if len(rows) == limit else None,
    )


@router.get("/records/{leaf_index}", response_model=RecordOut, responses={404: {"model": Problem}})
def get_record(leaf_index: LeafIndex, notary: Notary = Depends(get_notary)) -> RecordOut:
    entry = notary.log.entry(leaf_index)
    if entry is None:
        raise HTTPException(404, f"leaf {leaf_index} is not in the log (size {notary.log.size})")
    return _record_out(leaf_index, entry)


@router.get("/records/{leaf_index}/receipt", response_model=Receipt, responses={404: {"model": Problem}})
def get_receipt(leaf_index: LeafIndex, notary: Notary = Depends(get_notary)) -> Receipt:
    if leaf_index >= notary.log.size:
        raise HTTPException(404, f"leaf {leaf_index} is not in the log (size {notary.log.size})")
    return Receipt.model_validate(notary.log.receipt(leaf_index))
