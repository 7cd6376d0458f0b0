"""Sessions and everything that happens in one: offers, draws, check-ins, signatures, fees, incidents,
objections, the timeline and the archive."""

from typing import Any

from fastapi import APIRouter, Depends

from hub import db
from hub.api.deps import get_hub, require_token
from hub.api.models import (
    CheckInReportIn,
    DrawIn,
    FeeIn,
    IncidentIn,
    ObjectionIn,
    OfferIn,
    Problem,
    SessionIn,
    SignatureIn,
)
from hub.service import Hub
from hub.workflows import bookings, cases, conduct, draws

router = APIRouter(prefix="/sessions", tags=["sessions"], dependencies=[Depends(require_token)],
                   responses={s: {"model": Problem} for s in (401, 403, 404, 409, 422, 502, 503)})


@router.post("", status_code=201, summary="Open a session; reserves the main venue's room")
def create_session(body: SessionIn, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    return bookings.create_session(hub, body)


@router.get("/{session_id}")
def get_session(session_id: str, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    with hub.db() as s:
        return bookings.session_view(hub.get(s, db.EvalSession, session_id, "session"))


@router.post("/{session_id}/offers", status_code=201, summary="要约发起: offer the session to a secondary venue")
def offer(session_id: str, body: OfferIn, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    return bookings.offer(hub, session_id, body)


@router.post("/{session_id}/draws", status_code=201, summary="Commit an expert draw (anchored before it runs)")
def commit_draw(session_id: str, body: DrawIn, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    return draws.commit_draw(hub, session_id, body)


@router.get("/{session_id}/experts", summary="Drawn experts, their venues and whether they were replaced")
def experts(session_id: str, hub: Hub = Depends(get_hub)) -> list[dict[str, Any]]:
    return draws.session_experts(hub, session_id)


@router.post("/{session_id}/checkins", status_code=201, summary="Take a device's check-in record into the roster")
def checkin(session_id: str, body: CheckInReportIn, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    return conduct.report_checkin(hub, session_id, body)


@router.post("/{session_id}/roster", status_code=201, summary="Record the session roster")
def roster(session_id: str, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    return conduct.record_roster(hub, session_id)


@router.post("/{session_id}/signatures", status_code=201, summary="Verify and record a cloud signature (云签)")
def signature(session_id: str, body: SignatureIn, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    return conduct.record_signature(hub, session_id, body)


@router.post("/{session_id}/fees", status_code=201, summary="Record an expert fee payment (专家费支付)")
def fee(session_id: str, body: FeeIn, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    return conduct.pay_fee(hub, session_id, body)


@router.post("/{session_id}/incidents", status_code=201, summary="Record an incident (突发事件)")
def incident(session_id: str, body: IncidentIn, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    return conduct.record_incident(hub, session_id, body)


@router.post("/{session_id}/objections", status_code=201, summary="File an objection (异议/质疑)")
def objection(session_id: str, body: ObjectionIn, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    return cases.file_objection(hub, session_id, body)


@router.get("/{session_id}/timeline", summary="The session's evidence in log order")
def timeline(session_id: str, hub: Hub = Depends(get_hub)) -> list[dict[str, Any]]:
    return conduct.timeline(hub, session_id)


@router.post("/{session_id}/archive", status_code=201, summary="归档: list every leaf of the session")
def archive(session_id: str, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    return conduct.archive(hub, session_id)
