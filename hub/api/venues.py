"""Venues, rooms and their cameras, the expert pool (专家库), trusted CAs for cloud signatures. Importing experts and
trusting a CA change who is trusted: each is a `registry` record in the log, signed by the hub, naming
the operator who did it."""

import hashlib
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from hub import db
from hub.api.deps import get_hub, release, require, require_venue
from hub.api.models import CamerasIn, ExpertsIn, Problem, VenueIn
from hub.service import Hub
from hub.workflows import bookings, conduct
from notary.access import Caller
from verifier.canonical import canonical_bytes

router = APIRouter(tags=["venues and experts"],
                   responses={s: {"model": Problem} for s in (401, 403, 413, 422, 502, 503)})


@router.put("/venues", summary="Add or update a venue and its rooms")
def put_venue(body: VenueIn, hub: Hub = Depends(get_hub),
              _: Caller = Depends(require("manage_registry"))) -> dict[str, Any]:
    return bookings.add_venue(hub, body)


@router.get("/venues")
def list_venues(hub: Hub = Depends(get_hub),
                caller: Caller = Depends(require("list_venues"))) -> list[dict[str, Any]]:
    with hub.db() as s:
        return release(hub, caller,
                       [bookings.venue_view(v) for v in s.scalars(select(db.Venue).order_by(db.Venue.venue_id))])


@router.put("/venues/{venue_id}/rooms/{room}/cameras",
            summary="Register a room's cameras (360° coverage; evidence, and named in every session booking the room)")
def put_cameras(venue_id: str, room: str, body: CamerasIn, hub: Hub = Depends(get_hub),
                caller: Caller = Depends(require("register_cameras"))) -> dict[str, Any]:
    require_venue(caller, {venue_id}, f"register the cameras of {venue_id}")
    return bookings.register_cameras(hub, venue_id, room, body)


@router.put("/experts", summary="Import experts from the expert pool system (专家库系统)")
def put_experts(body: ExpertsIn, hub: Hub = Depends(get_hub),
                caller: Caller = Depends(require("manage_registry"))) -> dict[str, Any]:
    experts = [e.model_dump() for e in body.experts]
    # The digest commits to the imported list (identity numbers included) without putting any of it in the log.
    digest = hashlib.sha256(canonical_bytes(sorted(experts, key=lambda e: e["expert_id"]))).hexdigest()
    with hub.lock, hub.db() as s:
        hub.write_registry(s, {"action": "experts_imported", "subject": "expert-pool", "by": caller.name,
                               "digest": digest, "count": len(experts)})
        for e in experts:
            s.merge(db.Expert(**e))
        s.commit()
        total = s.scalar(select(func.count()).select_from(db.Expert))
    return {"imported": len(body.experts), "pool_size": total}


class CaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pem: str = Field(min_length=1, max_length=20_000)


@router.post("/trusted-cas", summary="Trust a CA for cloud-signature certificates (多 CA 互认)")
def add_ca(body: CaIn, hub: Hub = Depends(get_hub),
           caller: Caller = Depends(require("manage_registry"))) -> dict[str, Any]:
    return conduct.add_trusted_ca(hub, body.pem, caller.name)
