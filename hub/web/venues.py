"""The venues' console: a venue operator's bookings and offers, each session's check-ins at the venue,
its cameras' recording health, and incidents to report. Acting only as the venue of its credential."""

from datetime import date

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from hub import db
from hub.api import sessions as session_api
from hub.api import steps as step_api
from hub.api.deps import acting_venue, check_session, get_hub, permit
from hub.api.models import IncidentIn, IncidentResolveIn
from hub.errors import Forbidden, NotFound
from hub.web.login import ConsoleSession
from hub.web.pages import posted_form, render, signed_in
from hub.workflows import alarms, bookings
from verifier.times import parse_time

router = APIRouter()
INCIDENT_KINDS = ("power_failure", "network_failure", "device_failure", "other")  # a switch is the province's


def own_venue(session: ConsoleSession, venue_id: str) -> None:
    """A venue operator acts only as the venue of its credential; another venue's console is refused."""
    permit(session.caller, "answer_booking")
    mine = acting_venue(session.caller)
    if mine != venue_id:
        p = session.caller.principal
        raise Forbidden(f"{p.describe() if p else 'this caller'} acts only as venue {mine}; "
                        f"the console of {venue_id} is not its own")


def _on(stamp: str, day: date) -> bool:
    try:
        return parse_time(stamp, "time").date() == day
    except ValueError:
        return False


@router.get("/venues/{venue_id}", name="venue")
def venue_page(request: Request, venue_id: str) -> HTMLResponse:
    session = signed_in(request)
    own_venue(session, venue_id)
    hub = get_hub(request)
    today = hub.now().date()
    with hub.db() as s:
        venue = hub.get(s, db.Venue, venue_id, "venue")
        mine = list(s.scalars(select(db.Booking).where(db.Booking.venue_id == venue_id)
                              .order_by(db.Booking.slot_start)))
        shown = [b for b in mine if b.status == "offered" or _on(b.slot_start, today)]
        taking_part = [x for x in s.scalars(select(db.EvalSession).where(
            db.EvalSession.status == "open", db.EvalSession.session_id != "registry").order_by(
            db.EvalSession.slot_start)) if venue_id in bookings.venues_of(s, x)]
    sessions_view = []
    for evaluation in taking_part:
        # Check-ins and recordings come from the session's evidence: a read recorded as the timeline's is.
        with hub.db() as s:
            check_session(session.caller, s, evaluation)
        hub.record_access(evaluation.session_id, session.caller, "read_venue_console",
                          f"GET /console/venues/{venue_id}")
        with hub.db() as s:
            sid = evaluation.session_id
            sessions_view.append({
                "evaluation": evaluation,
                "checkins": list(s.scalars(select(db.CheckIn).where(
                    db.CheckIn.session_id == sid, db.CheckIn.venue_id == venue_id).order_by(db.CheckIn.id))),
                "expected": list(s.scalars(select(db.Selection).where(
                    db.Selection.session_id == sid, db.Selection.venue_id == venue_id,
                    db.Selection.status == "selected").order_by(db.Selection.id))),
                "cameras": alarms.cameras(s, sid, venue_id),
                "incidents": list(s.scalars(select(db.Incident).where(
                    db.Incident.session_id == sid, db.Incident.venue_id == venue_id)
                    .order_by(db.Incident.incident_id))),
            })
    return render(request, "venue.html.j2", session, venue=venue, bookings=shown, sessions=sessions_view,
                  incident_kinds=INCIDENT_KINDS)


def _back(request: Request, venue_id: str) -> Response:
    return RedirectResponse(request.url_for("venue", venue_id=venue_id), status_code=303)


@router.post("/venues/{venue_id}/bookings/{booking_id}/{action}", name="venue_booking")
async def venue_booking(request: Request, venue_id: str, booking_id: str, action: str) -> Response:
    session = signed_in(request)
    own_venue(session, venue_id)
    await posted_form(request, session)
    if action not in ("confirm", "decline"):
        raise NotFound(f"a venue confirms or declines a booking; {action[:20]!r} is neither")
    # The API's own handler: it checks answer_booking and acts as the caller's venue.
    step_api.booking_action(booking_id, action, None, get_hub(request), session.caller)  # type: ignore[arg-type]
    return _back(request, venue_id)


@router.post("/venues/{venue_id}/incidents", name="venue_incident")
async def venue_incident(request: Request, venue_id: str) -> Response:
    session = signed_in(request)
    own_venue(session, venue_id)
    form = await posted_form(request, session)
    permit(session.caller, "report_incident")
    hub = get_hub(request)
    body = IncidentIn(venue_id=venue_id, kind=str(form.get("kind", "")),  # type: ignore[arg-type]
                      description=str(form.get("description", "")), started_at=hub.stamp())
    session_api.incident(str(form.get("session_id", "")), body, hub, session.caller)
    return _back(request, venue_id)


@router.post("/venues/{venue_id}/incidents/{incident_id}/resolve", name="venue_resolve")
async def venue_resolve(request: Request, venue_id: str, incident_id: str) -> Response:
    session = signed_in(request)
    own_venue(session, venue_id)
    await posted_form(request, session)
    permit(session.caller, "report_incident")
    hub = get_hub(request)
    step_api.resolve_incident(incident_id, IncidentResolveIn(ended_at=hub.stamp()), hub, session.caller)
    return _back(request, venue_id)
