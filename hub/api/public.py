"""Public endpoints, no token: 信息公开 and health."""

from typing import Any

from fastapi import APIRouter, Depends

from hub.api.deps import get_hub, require
from hub.api.models import Problem
from hub.service import Hub
from hub.workflows import cases, public
from notary.access import Caller

router = APIRouter(tags=["public"])


@router.get("/public/projects/{project_id}", responses={404: {"model": Problem}},
            summary="信息公开: what of the project may be public (no personal data, no secrets)")
def disclosure(project_id: str, hub: Hub = Depends(get_hub),
               _: Caller = Depends(require("read_public"))) -> dict[str, Any]:
    return public.disclosure(hub, project_id)


@router.get("/public/misconduct", summary="不当行为信息公开: the published misconduct cases of every project")
def misconduct(hub: Hub = Depends(get_hub), _: Caller = Depends(require("read_public"))) -> list[dict[str, Any]]:
    return cases.published_cases(hub)


@router.get("/healthz")
def health(hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    """ok, or degraded after the hub's database refused a write (until a probe write succeeds)."""
    if hub.storage_error is not None:
        hub.probe_storage()
    return {"status": "degraded" if hub.storage_error else "ok", "last_error": hub.storage_error,
            "hub_id": hub.config.hub_id, "notary": hub.config.notary_url}
