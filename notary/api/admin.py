"""The principal registry: binding and revoking principals (notary administrators only); the public list of
submitter keys. A binding or revocation is itself a record in the log (type `registry`)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path

from notary.access import AccessConfigError, Caller, Principal
from notary.api.deps import get_notary, release, require
from notary.api.models import PrincipalIn, Problem, SubmitterOut
from notary.log import Submitter
from notary.service import Notary
from verifier.times import now_utc

router = APIRouter(prefix="/v1", tags=["principals"])
IdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")]
_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": Problem} for s in (401, 403, 404, 409, 422)}


def _out(s: Submitter) -> SubmitterOut:
    return SubmitterOut(
        submitter_id=s.submitter_id, role=s.role, public_key=s.public_key,
        registered_at=s.registered_at, revoked_at=s.revoked_at,
    )


def record_registry_change(notary: Notary, caller: Caller, action: str, principal: Principal) -> None:
    notary.record_registry_change(action, principal, "local" if caller.local else caller.name)


@router.post("/principals", response_model=dict[str, Any], responses=_ERRORS,
             summary="Bind a principal: its role, key and bindings (a device's venue and function, a court's projects)")
def bind_principal(
    body: PrincipalIn, notary: Notary = Depends(get_notary), caller: Caller = Depends(require("manage_principals"))
) -> dict[str, Any]:
    try:
        principal = Principal.parse(body.model_dump(exclude_none=True), "principal")
        new = notary.principals.bind(principal)
    except AccessConfigError as exc:
        conflict = "already bound" in str(exc) or "was revoked" in str(exc)
        raise HTTPException(409 if conflict else 422, str(exc)) from exc
    notary.register_submitter_of(principal)
    if new:
        record_registry_change(notary, caller, "principal_bound", principal)
    return {**principal.to_json(), "registered_at": now_utc()}


@router.post("/principals/{principal_id}/revoke", response_model=dict[str, Any], responses=_ERRORS)
def revoke_principal(
    principal_id: IdPath, notary: Notary = Depends(get_notary), caller: Caller = Depends(require("manage_principals"))
) -> dict[str, Any]:
    principal = notary.principals.revoke(principal_id)
    if principal is None:
        raise HTTPException(404, f"principal {principal_id} is not registered")
    if principal_id in {s.submitter_id for s in notary.log.submitters()}:
        notary.log.revoke_submitter(principal_id)
    record_registry_change(notary, caller, "principal_revoked", principal)
    return {**principal.to_json(), "revoked_at": now_utc()}


@router.get("/principals", response_model=list[dict[str, Any]], responses=_ERRORS)
def list_principals(
    notary: Notary = Depends(get_notary), caller: Caller = Depends(require("list_principals"))
) -> list[dict[str, Any]]:
    return release(notary, caller, [p.to_json() for p in notary.principals.all()])


@router.post("/submitters/{submitter_id}/revoke", response_model=SubmitterOut, responses=_ERRORS)
def revoke_submitter(
    submitter_id: IdPath, notary: Notary = Depends(get_notary), caller: Caller = Depends(require("manage_principals"))
) -> SubmitterOut:
    out = _out(notary.log.revoke_submitter(submitter_id))
    principal = notary.principals.revoke(submitter_id)
    if principal is not None:
        record_registry_change(notary, caller, "principal_revoked", principal)
    return out


@router.get("/submitters", response_model=list[SubmitterOut])
def list_submitters(notary: Notary = Depends(get_notary)) -> list[SubmitterOut]:
    """Public: the keys evidence is signed with, as a verifier needs them."""
    return [_out(s) for s in notary.log.submitters()]
