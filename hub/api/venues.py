"""Venues and rooms, the expert pool (专家库), trusted CAs for cloud signatures."""

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from hub import db
from hub.api.deps import get_hub, require_token
from hub.api.models import ExpertsIn, Problem, VenueIn
from hub.service import Hub
from hub.workflows import bookings, conduct

router = APIRouter(tags=["venues and experts"], dependencies=[Depends(require_token)],
                   responses={401: {"model": Problem}, 422: {"model": Problem}})


@router.put("/venues", summary="Add or update a venue and its rooms")
def put_venue(body: VenueIn, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    return bookings.add_venue(hub, body)


@router.get("/venues")
def list_venues(hub: Hub = Depends(get_hub)) -> list[dict[str, Any]]:
    with hub.db() as s:
        return [bookings.venue_view(v) for v in s.scalars(select(db.Venue).order_by(db.Venue.venue_id))]


@router.put("/experts", summary="Import experts from the expert pool system (专家库系统)")
def put_experts(body: ExpertsIn, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    with hub.lock, hub.db() as s:
        for e in body.experts:
            s.merge(db.Expert(**e.model_dump()))
        s.commit()
        total = s.scalar(select(func.count()).select_from(db.Expert))
    return {"imported": len(body.experts), "pool_size": total}


class CaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pem: str = Field(min_length=1, max_length=20_000)


@router.post("/trusted-cas", summary="Trust a CA for cloud-signature certificates (多 CA 互认)")
def add_ca(body: CaIn, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    return conduct.add_trusted_ca(hub, body.pem)
