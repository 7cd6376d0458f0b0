"""Registering and revoking submitters (devices and the hub); needs the admin token."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from notary.api.deps import get_notary, require_admin
from notary.api.models import Problem, SubmitterIn, SubmitterOut
from notary.log import Submitter
from notary.service import Notary

router = APIRouter(prefix="/v1/submitters", tags=["submitters"])
SubmitterPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")]


def _out(s: Submitter) -> SubmitterOut:
    return SubmitterOut(
        submitter_id=s.submitter_id, role=s.role, public_key=s.public_key,
        registered_at=s.registered_at, revoked_at=s.revoked_at,
    )


@router.post("", response_model=SubmitterOut, responses={401: {"model": Problem}, 409: {"model": Problem},
                                                         422: {"model": Problem}})
def register_submitter(
    body: SubmitterIn, notary: Notary = Depends(get_notary), _: None = Depends(require_admin)
) -> SubmitterOut:
    return _out(notary.log.register_submitter(body.submitter_id, body.role, body.public_key))


@router.post("/{submitter_id}/revoke", response_model=SubmitterOut, responses={404: {"model": Problem}})
def revoke_submitter(
    submitter_id: SubmitterPath, notary: Notary = Depends(get_notary), _: None = Depends(require_admin)
) -> SubmitterOut:
    return _out(notary.log.revoke_submitter(submitter_id))


@router.get("", response_model=list[SubmitterOut])
def list_submitters(notary: Notary = Depends(get_notary)) -> list[SubmitterOut]:
    return [_out(s) for s in notary.log.submitters()]
