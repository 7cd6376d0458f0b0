"""Checkpoints, proofs, anchors and extracts."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response
from sqlalchemy import select

from notary.access import Caller
from notary.api.deps import allowed, check_project, get_notary, record_access, release, require
from notary.api.models import (
    AnchorOut,
    CheckpointOut,
    ConsistencyProofOut,
    InclusionProofOut,
    LogOut,
    Problem,
)
from notary.extract import NotAnchored, build_extract, proof_bundle, published_roots
from notary.service import Notary
from notary.store import anchors

router = APIRouter(prefix="/v1", tags=["proofs"])
Size = Annotated[int, Query(ge=0, le=2**42)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}, 409: {"model": Problem}}


@router.get("/log", response_model=LogOut)
def get_log(notary: Notary = Depends(get_notary)) -> LogOut:
    """The log's identity and state; `trust_roots` are the roots this notary publishes, in the trust file
    format `bidtrace-trust/2` (what `bidtrace notary roots` writes): shown, to be compared, never to be
    trusted because the notary serves them."""
    return LogOut(
        log_id=notary.log.log_id,
        origin=notary.key.name,
        note_key=notary.key.vkey,
        size=notary.log.size,
        anchored_size=notary.status().anchored_size,
        ledger=notary.ledger.kind,
        max_merge_delay=notary.config.max_merge_delay,
        trust_roots=json.loads(published_roots(notary.log, notary.ledger).encode()),
    )


@router.get("/checkpoint", response_model=CheckpointOut)
def get_checkpoint(notary: Notary = Depends(get_notary)) -> CheckpointOut:
    """The newest signed checkpoint (C2SP signed note)."""
    latest = notary.log.latest_checkpoint()
    size, root, note = latest if latest is not None else notary.log.sign_checkpoint()
    return CheckpointOut(size=size, root=root.hex(), note=note)


@router.get("/proof/inclusion", response_model=InclusionProofOut, responses=_NOT_FOUND)
def get_inclusion_proof(leaf_index: Size, tree_size: Size, notary: Notary = Depends(get_notary)) -> InclusionProofOut:
    if not leaf_index < tree_size <= notary.log.size:
        raise HTTPException(
            404, f"need leaf_index < tree_size <= {notary.log.size}, got {leaf_index} and {tree_size}"
        )
    proof = notary.log.inclusion_proof(leaf_index, tree_size)
    return InclusionProofOut(leaf_index=leaf_index, tree_size=tree_size, proof=[h.hex() for h in proof])


@router.get("/proof/consistency", response_model=ConsistencyProofOut, responses=_NOT_FOUND)
def get_consistency_proof(first: Size, second: Size, notary: Notary = Depends(get_notary)) -> ConsistencyProofOut:
    if not first <= second <= notary.log.size:
        raise HTTPException(404, f"need first <= second <= {notary.log.size}, got {first} and {second}")
    proof = notary.log.consistency_proof(first, second)
    return ConsistencyProofOut(first=first, second=second, proof=[h.hex() for h in proof])


@router.get("/proof/bundle/{leaf_index}", responses=_NOT_FOUND)
def get_proof_bundle(
    leaf_index: Annotated[int, Path(ge=0, le=2**42)], notary: Notary = Depends(get_notary),
    caller: Caller = Depends(require("read_records")),
) -> dict[str, Any]:
    """Record, inclusion proof to the newest anchored checkpoint, the checkpoint and its anchor evidence."""
    try:
        entry = notary.log.entry(leaf_index)
        if entry is None:
            raise LookupError(f"leaf {leaf_index} is not in the log (size {notary.log.size})")
        project_id = str(json.loads(entry)["record"]["project_id"])
        check_project(caller, project_id)
        record_access(notary, caller, "read_proof_bundle", project_id, f"GET /v1/proof/bundle/{leaf_index}")
        return release(notary, caller, proof_bundle(notary.log, leaf_index)).encode()
    except NotAnchored as exc:
        raise HTTPException(409, f"{exc}; anchoring happens within {notary.config.max_merge_delay}s") from exc
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc


@router.get("/anchors", response_model=list[AnchorOut])
def list_anchors(
    after_size: Annotated[int, Query(ge=-1, le=2**42)] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    notary: Notary = Depends(get_notary),
) -> list[AnchorOut]:
    with notary.engine.connect() as conn:
        rows = conn.execute(
            select(anchors).where(anchors.c.size > after_size).order_by(anchors.c.size).limit(limit)
        ).all()
    return [
        AnchorOut(size=r.size, root=bytes(r.root).hex(), ledger=r.ledger, tx_id=r.tx_id, anchored_at=r.anchored_at)
        for r in rows
    ]


@router.get(
    "/projects/{project_id}/extract",
    responses={200: {"content": {"application/zip": {}}}, **_NOT_FOUND},
    response_class=Response,
)
def get_extract(
    project_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")],
    disclose: bool = False,
    notary: Notary = Depends(get_notary),
    caller: Caller = Depends(require("read_extract")),
) -> Response:
    """The project's audit extract (zip); `disclose` adds the openings of personal-data commitments (courts
    and notary administrators, with a stated purpose in the signed Bidtrace-Purpose header)."""
    check_project(caller, project_id)
    if disclose:
        if not allowed(caller, "read_disclosures"):
            raise HTTPException(403, f"{caller.name} may not read disclosures; that is for a court or complainant "
                                     "and notary administrators")
        if not caller.purpose and not caller.local:
            raise HTTPException(422, "reading disclosures needs a stated purpose (signed Bidtrace-Purpose header)")
    record_access(notary, caller, "read_extract_disclosed" if disclose else "read_extract", project_id,
                  f"GET /v1/projects/{project_id}/extract?disclose={str(disclose).lower()}")
    try:
        data = build_extract(notary.log, notary.ledger, project_id, disclose=disclose)
    except NotAnchored as exc:
        raise HTTPException(409, str(exc)) from exc
    return Response(
        release(notary, caller, data), media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="extract-{project_id}.zip"'},
    )
