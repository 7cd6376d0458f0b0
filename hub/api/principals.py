"""Binding and revoking the hub's principals: who may bind whom follows `MANAGE` (README's matrix); a venue
operator binds and revokes only its own venue's devices. Each binding and revocation is a `registry` record in
the log, signed by the hub and naming who did it, before it takes effect."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from hub.api.deps import MANAGE, allowed, get_caller, get_hub, permit, release, require
from hub.api.models import PrincipalIn, Problem
from hub.errors import Forbidden, Invalid
from hub.service import Hub
from notary.access import AccessConfigError, Caller, Principal, Role
from verifier.times import now_utc

router = APIRouter(prefix="/principals", tags=["principals"],
                   responses={s: {"model": Problem} for s in (401, 403, 404, 409, 413, 422, 502, 503)})
IdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")]


def _by(caller: Caller) -> str:
    return "local" if caller.local else caller.name


def _own_venue_only(caller: Caller, target: Principal, what: str) -> None:
    """A venue operator binds and revokes devices of its own venue only."""
    p = caller.principal
    if p is not None and p.role is Role.VENUE_OPERATOR and target.venue_id != p.venue_id:
        raise Forbidden(f"{p.describe()} may not {what} {target.describe()}: a venue operator manages the "
                        f"devices of venue {p.venue_id} only")


def _may_manage_someone(caller: Caller) -> None:
    """Refuse, before anything is looked up, a caller whose role may bind or revoke no one."""
    if not any(allowed(caller, action) for action in set(MANAGE.values())):
        permit(caller, "manage_devices")  # the broadest of them: its refusal names who may


@router.post("", status_code=201, summary="Bind a principal: its role, key and bindings")
def bind_principal(body: PrincipalIn, hub: Hub = Depends(get_hub),
                   caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    permit(caller, MANAGE[Role(body.role)])
    try:
        principal = Principal.parse(body.model_dump(exclude_none=True), "body")
    except AccessConfigError as exc:
        raise Invalid(str(exc)) from exc
    _own_venue_only(caller, principal, "bind")
    new = hub.bind_principal(principal, _by(caller))
    return {**principal.to_json(), "bound": new, "at": now_utc()}


@router.post("/{principal_id}/revoke", summary="Revoke a principal, at once and for good (its key stays revoked)")
def revoke_principal(principal_id: IdPath, hub: Hub = Depends(get_hub),
                     caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    _may_manage_someone(caller)

    def may_revoke(target: Principal) -> None:
        permit(caller, MANAGE[target.role])
        _own_venue_only(caller, target, "revoke")

    revoked = hub.revoke_principal(principal_id, _by(caller), may_revoke)  # 404 if it is not bound
    return {**revoked.to_json(), "revoked": True, "at": now_utc()}


@router.get("", summary="The principals bound at the hub, with their roles and bindings")
def list_principals(hub: Hub = Depends(get_hub),
                    caller: Caller = Depends(require("list_principals"))) -> list[dict[str, Any]]:
    return release(hub, caller, [p.to_json() for p in hub.principals.all()])
