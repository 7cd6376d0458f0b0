"""Sessions and everything that happens in one: offers, draws, check-ins, signatures, fees, incidents,
objections, the timeline and the archive."""

from typing import Any

from fastapi import APIRouter, Depends

from hub import db
from hub.api.deps import check_session, get_hub, permit, release, require, require_venue
from hub.api.models import (
    BidIn,
    CheckInReportIn,
    ComplaintIn,
    DrawIn,
    DrawScheduleIn,
    FeeIn,
    IncidentIn,
    ObjectionIn,
    OfferIn,
    Problem,
    SessionIn,
    SignatureIn,
)
from hub.errors import Forbidden
from hub.service import Hub
from hub.workflows import bookings, cases, conduct, draws, oversight
from notary.access import Caller, Role

router = APIRouter(prefix="/sessions", tags=["sessions"],
                   responses={s: {"model": Problem} for s in (401, 403, 404, 409, 413, 422, 502, 503)})


@router.post("", status_code=201, summary="Open a session; reserves the main venue's room")
def create_session(body: SessionIn, hub: Hub = Depends(get_hub),
                   _: Caller = Depends(require("run_session"))) -> dict[str, Any]:
    return bookings.create_session(hub, body)


@router.get("/{session_id}")
def get_session(session_id: str, hub: Hub = Depends(get_hub),
                caller: Caller = Depends(require("read_session"))) -> dict[str, Any]:
    with hub.db() as s:
        session = hub.get(s, db.EvalSession, session_id, "session")
        check_session(caller, s, session)
        return release(hub, caller, bookings.session_view(session))


@router.post("/{session_id}/offers", status_code=201, summary="要约发起: offer the session to a secondary venue")
def offer(session_id: str, body: OfferIn, hub: Hub = Depends(get_hub),
          _: Caller = Depends(require("run_session"))) -> dict[str, Any]:
    return bookings.offer(hub, session_id, body)


@router.post("/{session_id}/draws", status_code=201, summary="Commit an expert draw (anchored before it runs)")
def commit_draw(session_id: str, body: DrawIn, hub: Hub = Depends(get_hub),
                _: Caller = Depends(require("run_session"))) -> dict[str, Any]:
    return draws.commit_draw(hub, session_id, body)


@router.post("/{session_id}/draw-schedules", status_code=201,
             summary="专家预约抽取: announce a draw that the hub's scheduler commits at draw_at and then runs")
def schedule_draw(session_id: str, body: DrawScheduleIn, hub: Hub = Depends(get_hub),
                  _: Caller = Depends(require("run_session"))) -> dict[str, Any]:
    return draws.schedule_draw(hub, session_id, body)


@router.get("/{session_id}/draw-schedules", summary="A session's scheduled draws and how each went")
def draw_schedules(session_id: str, hub: Hub = Depends(get_hub),
                   caller: Caller = Depends(require("read_session"))) -> list[dict[str, Any]]:
    with hub.db() as s:
        check_session(caller, s, hub.get(s, db.EvalSession, session_id, "session"))
    return release(hub, caller, draws.session_schedules(hub, session_id))


@router.get("/{session_id}/experts", summary="Drawn experts, their venues and whether they were replaced "
                                             "(sealed: hub operators and supervisors; each read is recorded)")
def experts(session_id: str, hub: Hub = Depends(get_hub),
            caller: Caller = Depends(require("read_draw"))) -> list[dict[str, Any]]:
    hub.record_access(session_id, caller, "read_drawn_experts", f"GET /sessions/{session_id}/experts")
    return release(hub, caller, draws.session_experts(hub, session_id))


@router.post("/{session_id}/checkins", status_code=201, summary="Take a device's check-in record into the roster")
def checkin(session_id: str, body: CheckInReportIn, hub: Hub = Depends(get_hub),
            caller: Caller = Depends(require("report_checkin"))) -> dict[str, Any]:
    p = caller.principal
    if p is not None and p.role is Role.DEVICE and p.function != "checkin":
        raise Forbidden(f"{p.describe()} is not a check-in station")
    return conduct.report_checkin(hub, session_id, body, _venue(caller))


def _venue(caller: Caller) -> str | None:
    p = caller.principal
    return p.venue_id if p is not None and p.role in (Role.VENUE_OPERATOR, Role.DEVICE) else None


@router.post("/{session_id}/roster", status_code=201, summary="Record the session roster")
def roster(session_id: str, hub: Hub = Depends(get_hub),
           _: Caller = Depends(require("run_session"))) -> dict[str, Any]:
    return conduct.record_roster(hub, session_id)


@router.post("/{session_id}/signatures", status_code=201, summary="Verify and record a cloud signature (云签)")
def signature(session_id: str, body: SignatureIn, hub: Hub = Depends(get_hub),
              _: Caller = Depends(require("run_session"))) -> dict[str, Any]:
    return conduct.record_signature(hub, session_id, body)


@router.post("/{session_id}/fees", status_code=201, summary="Record an expert fee payment (专家费支付)")
def fee(session_id: str, body: FeeIn, hub: Hub = Depends(get_hub),
        _: Caller = Depends(require("run_session"))) -> dict[str, Any]:
    return conduct.pay_fee(hub, session_id, body)


@router.post("/{session_id}/incidents", status_code=201, summary="Record an incident (突发事件)")
def incident(session_id: str, body: IncidentIn, hub: Hub = Depends(get_hub),
             caller: Caller = Depends(require("report_incident"))) -> dict[str, Any]:
    require_venue(caller, {body.venue_id}, f"report an incident at {body.venue_id}")
    if body.kind == "main_venue_switch":
        permit(caller, "run_session")  # moving the lead to another venue is the province's decision
    return conduct.record_incident(hub, session_id, body)


@router.post("/{session_id}/objections", status_code=201,
             summary="File an objection (异议/质疑): a bidder of the project, or the province for one on paper")
def objection(session_id: str, body: ObjectionIn, hub: Hub = Depends(get_hub),
              caller: Caller = Depends(require("file_objection"))) -> dict[str, Any]:
    return cases.file_objection(hub, session_id, body, caller)


@router.post("/{session_id}/complaints", status_code=201,
             summary="File a complaint (投诉) with a supervisor: a bidder of the project")
def complaint(session_id: str, body: ComplaintIn, hub: Hub = Depends(get_hub),
              caller: Caller = Depends(require("file_complaint"))) -> dict[str, Any]:
    return cases.file_complaint(hub, session_id, body, caller)


@router.post("/{session_id}/bids", status_code=201,
             summary="投标文件递交: a bidder's bid, its machine code and address as keyed tags")
def bid(session_id: str, body: BidIn, hub: Hub = Depends(get_hub),
        caller: Caller = Depends(require("submit_bid"))) -> dict[str, Any]:
    return oversight.submit_bid(hub, session_id, body, caller)


@router.get("/{session_id}/timeline", summary="The session's evidence in log order (each read is recorded)")
def timeline(session_id: str, hub: Hub = Depends(get_hub),
             caller: Caller = Depends(require("read_session"))) -> list[dict[str, Any]]:
    with hub.db() as s:
        check_session(caller, s, hub.get(s, db.EvalSession, session_id, "session"))
    hub.record_access(session_id, caller, "read_timeline", f"GET /sessions/{session_id}/timeline")
    return release(hub, caller, conduct.timeline(hub, session_id))


@router.post("/{session_id}/archive", status_code=201, summary="归档: list every leaf of the session")
def archive(session_id: str, hub: Hub = Depends(get_hub),
            _: Caller = Depends(require("run_session"))) -> dict[str, Any]:
    return conduct.archive(hub, session_id)
