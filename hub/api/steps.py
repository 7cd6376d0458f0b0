"""Transitions of bookings, draws, objections, misconduct cases and incidents; subscriptions; alarms.
The acting venue is always the caller's, from its credential."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from hub import db
from hub.api.deps import acting_venue, check_project, get_caller, get_hub, permit, release, require
from hub.api.models import (
    IDENT,
    BookingActionIn,
    BookingChangeIn,
    ComplaintStepIn,
    IncidentResolveIn,
    MisconductIn,
    MisconductStepIn,
    ObjectionStepIn,
    Problem,
    RegistrySearchIn,
    ReplacementIn,
    SubscriptionIn,
)
from hub.errors import Forbidden
from hub.service import Hub
from hub.workflows import bookings, cases, conduct, draws, feed, oversight
from notary.access import Caller

_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": Problem}
                                            for s in (401, 403, 404, 409, 413, 422, 502, 503)}
router = APIRouter(responses=_ERRORS)


@router.get("/bookings/{booking_id}", tags=["bookings"])
def get_booking(booking_id: str, hub: Hub = Depends(get_hub),
                caller: Caller = Depends(require("read_session"))) -> dict[str, Any]:
    with hub.db() as s:
        booking = hub.get(s, db.Booking, booking_id, "booking")
        check_project(caller, hub.get(s, db.EvalSession, booking.session_id, "session").project_id)
        venue = acting_venue(caller)
        if venue is not None and venue not in (booking.venue_id, booking.main_venue_id):
            # A secondary venue sees its own booking and the main venue all of its session's, not another's.
            raise Forbidden(f"{caller.principal.describe() if caller.principal else venue} may not read booking "
                            f"{booking_id}: it is between {booking.main_venue_id} and {booking.venue_id}")
        return release(hub, caller, bookings.booking_view(booking))


@router.post("/bookings/{booking_id}/{action}", tags=["bookings"],
             summary="确认 confirm or decline (the offered venue), cancel (the booked or the main venue)")
def booking_action(booking_id: str, action: Literal["confirm", "decline", "cancel"],
                   body: BookingActionIn | None = None, hub: Hub = Depends(get_hub),
                   caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    permit(caller, "cancel_booking" if action == "cancel" else "answer_booking")
    return bookings.act(hub, booking_id, action, body or BookingActionIn(), acting_venue(caller))


@router.patch("/bookings/{booking_id}", tags=["bookings"], summary="Change room or slot (to be confirmed again)")
def booking_change(booking_id: str, body: BookingChangeIn, hub: Hub = Depends(get_hub),
                   _: Caller = Depends(require("run_session"))) -> dict[str, Any]:
    return bookings.change(hub, booking_id, body)


@router.get("/draws/{draw_id}", tags=["draws"], summary="A draw with its seed and experts (sealed; reads recorded)")
def get_draw(draw_id: str, hub: Hub = Depends(get_hub),
             caller: Caller = Depends(require("read_draw"))) -> dict[str, Any]:
    with hub.db() as s:
        session_id = hub.get(s, db.Draw, draw_id, "draw").session_id
    hub.record_access(session_id, caller, "read_draw", f"GET /draws/{draw_id}")
    with hub.db() as s:
        return release(hub, caller, draws.draw_view(hub.get(s, db.Draw, draw_id, "draw"), secret=True))


@router.post("/draws/{draw_id}/execute", tags=["draws"],
             summary="Run the draw with the anchor of its commitment as beacon; reveals the seed")
def execute_draw(draw_id: str, hub: Hub = Depends(get_hub),
                 _: Caller = Depends(require("run_session"))) -> dict[str, Any]:
    return draws.execute(hub, draw_id)


@router.post("/draws/{draw_id}/replacements", tags=["draws"], status_code=201,
             summary="补抽: commit a replacement draw for absent or recused experts")
def replacement(draw_id: str, body: ReplacementIn, hub: Hub = Depends(get_hub),
                _: Caller = Depends(require("run_session"))) -> dict[str, Any]:
    return draws.replace(hub, draw_id, body)


@router.get("/objections/{objection_id}", tags=["objections"],
            summary="An objection: the province, supervisors, the bidder that filed it, the tenderer it was relayed to")
def get_objection(objection_id: str, hub: Hub = Depends(get_hub),
                  caller: Caller = Depends(require("follow_case"))) -> dict[str, Any]:
    cases.check_objection_party(hub, objection_id, caller)
    with hub.db() as s:
        return release(hub, caller, cases.objection_view(hub.get(s, db.Objection, objection_id, "objection")))


@router.post("/objections/{objection_id}/{action}", tags=["objections"],
             summary="review (受理复核) and relay (反映, to the tenderer or agency and supervisors): the lead venue; "
                     "answer (答复): a party it was relayed to; withdraw: the bidder that filed it, or the province")
def objection_step(objection_id: str, action: Literal["review", "relay", "answer", "withdraw"],
                   body: ObjectionStepIn, hub: Hub = Depends(get_hub),
                   caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    permit(caller, {"withdraw": "file_objection", "answer": "answer_objection"}.get(action, "lead_objection"))
    return cases.step_objection(hub, objection_id, action, body, caller)


@router.get("/complaints/{complaint_id}", tags=["complaints"],
            summary="A complaint: the province, the supervisor it is addressed to, the bidder that filed it")
def get_complaint(complaint_id: str, hub: Hub = Depends(get_hub),
                  caller: Caller = Depends(require("follow_case"))) -> dict[str, Any]:
    cases.check_complaint_party(hub, complaint_id, caller)
    with hub.db() as s:
        return release(hub, caller, cases.complaint_view(hub.get(s, db.Complaint, complaint_id, "complaint")))


@router.post("/complaints/{complaint_id}/{action}", tags=["complaints"],
             summary="accept (受理), reject (不予受理), decide (处理决定): the supervisor addressed; "
                     "withdraw: the bidder that filed it")
def complaint_step(complaint_id: str, action: Literal["accept", "reject", "decide", "withdraw"],
                   body: ComplaintStepIn | None = None, hub: Hub = Depends(get_hub),
                   caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    permit(caller, "file_complaint" if action == "withdraw" else "handle_complaint")
    return cases.step_complaint(hub, complaint_id, action, body or ComplaintStepIn(), caller)


@router.get("/alarms", tags=["objections"], summary="Relays, answers, acceptances and decisions past their deadline")
def alarms(hub: Hub = Depends(get_hub), caller: Caller = Depends(require("read_cases"))) -> list[dict[str, Any]]:
    return release(hub, caller, cases.alarms(hub))


@router.post("/misconduct", tags=["misconduct"], status_code=201, summary="Record misconduct (不当行为)")
def misconduct(body: MisconductIn, hub: Hub = Depends(get_hub),
               _: Caller = Depends(require("handle_misconduct"))) -> dict[str, Any]:
    return cases.record_misconduct(hub, body)


@router.post("/misconduct/registry", tags=["misconduct"],
             summary="专题库: every case of one party across projects, by its keyed linkage (each read recorded)")
def search_registry(body: RegistrySearchIn, hub: Hub = Depends(get_hub),
                    caller: Caller = Depends(require("read_cases"))) -> list[dict[str, Any]]:
    return cases.search_registry(hub, body, caller)


@router.get("/misconduct/{case_id}", tags=["misconduct"])
def get_misconduct(case_id: str, hub: Hub = Depends(get_hub),
                   caller: Caller = Depends(require("read_cases"))) -> dict[str, Any]:
    with hub.db() as s:
        return release(hub, caller, cases.misconduct_view(hub.get(s, db.MisconductCase, case_id, "misconduct case")))


@router.get("/misconduct/{case_id}/linked", tags=["misconduct"],
            summary="The cases of the same party as this one, across projects (each read recorded)")
def linked(case_id: str, hub: Hub = Depends(get_hub),
           caller: Caller = Depends(require("read_cases"))) -> list[dict[str, Any]]:
    return release(hub, caller, cases.linked_cases(hub, case_id, caller))


@router.post("/misconduct/{case_id}/{action}", tags=["misconduct"],
             summary="verify, publish, forward (转送: delivered to the supervisor's registered endpoint, receipt kept)")
def misconduct_step(case_id: str, action: Literal["verify", "publish", "forward"],
                    body: MisconductStepIn | None = None, hub: Hub = Depends(get_hub),
                    _: Caller = Depends(require("handle_misconduct"))) -> dict[str, Any]:
    return cases.step_misconduct(hub, case_id, action, body or MisconductStepIn())


@router.get("/incidents/{incident_id}", tags=["incidents"])
def get_incident(incident_id: str, hub: Hub = Depends(get_hub),
                 caller: Caller = Depends(require("read_cases"))) -> dict[str, Any]:
    with hub.db() as s:
        return release(hub, caller, conduct.incident_view(hub.get(s, db.Incident, incident_id, "incident")))


@router.post("/incidents/{incident_id}/resolve", tags=["incidents"])
def resolve_incident(incident_id: str, body: IncidentResolveIn, hub: Hub = Depends(get_hub),
                     caller: Caller = Depends(require("report_incident"))) -> dict[str, Any]:
    return conduct.resolve_incident(hub, incident_id, body, acting_venue(caller))


@router.get("/statistics", tags=["oversight"],
            summary="统计: a month's bookings per venue, sessions, incidents, objections, complaints, misconduct")
def statistics(month: Annotated[str, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")],
               project_id: Annotated[str | None, Query(pattern=IDENT)] = None, hub: Hub = Depends(get_hub),
               caller: Caller = Depends(require("read_statistics"))) -> dict[str, Any]:
    return release(hub, caller, oversight.statistics(hub, month, project_id).encode())


@router.get("/signals", tags=["oversight"],
            summary="围标串标预警: signals, not verdicts; each explained and listing the leaves it rests on")
def signals(project_id: Annotated[str | None, Query(pattern=IDENT)] = None, hub: Hub = Depends(get_hub),
            caller: Caller = Depends(require("read_statistics"))) -> list[dict[str, Any]]:
    return release(hub, caller, [signal.encode() for signal in oversight.signals(hub, project_id)])


@router.post("/subscriptions", tags=["supervision feed"], status_code=201,
             summary="Subscribe a supervisor's registered endpoint to every evidence event of a project")
def subscribe(body: SubscriptionIn, hub: Hub = Depends(get_hub),
              caller: Caller = Depends(require("subscribe"))) -> dict[str, Any]:
    return feed.subscribe(hub, body, caller)


@router.get("/subscriptions/{subscription_id}", tags=["supervision feed"])
def get_subscription(subscription_id: str, hub: Hub = Depends(get_hub),
                     caller: Caller = Depends(require("subscribe"))) -> dict[str, Any]:
    return release(hub, caller, feed.subscription(hub, subscription_id, caller))


@router.delete("/subscriptions/{subscription_id}", tags=["supervision feed"])
def unsubscribe(subscription_id: str, hub: Hub = Depends(get_hub),
                caller: Caller = Depends(require("subscribe"))) -> dict[str, Any]:
    return feed.unsubscribe(hub, subscription_id, caller)
