"""Objections (异议/质疑), led by the main venue, with deadlines; misconduct records (不当行为).

Objection: received → under_review → answered (or withdrawn while open). An open objection past its
deadline raises an alarm once: an `objection` record with `alarm: deadline_missed` (see `hub.jobs`).
Misconduct: recorded → verified → published → forwarded to the supervisor; a published record names
its evidence leaves; each step is evidence.
"""

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from hub import db
from hub.api.models import MisconductIn, MisconductStepIn, ObjectionIn, ObjectionStepIn
from hub.errors import Conflict, Forbidden, Invalid, NotFound
from hub.service import Hub
from verifier.times import format_time, parse_time

OPEN = ("received", "under_review")


def objection_view(o: db.Objection, now: float | None = None) -> dict[str, Any]:
    return {"objection_id": o.objection_id, "session_id": o.session_id, "status": o.status,
            "lead_venue_id": o.lead_venue_id, "summary": o.summary, "answer": o.answer, "deadline": o.deadline,
            "overdue": o.alarm_leaf is not None, "alarm_leaf": o.alarm_leaf, "leaves": o.leaves}


def _objection_payload(o: db.Objection, alarm: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {"objection_id": o.objection_id, "status": o.status,
                               "filed_by_commitment": o.filed_by_commitment, "summary": o.summary,
                               "deadline": o.deadline, "lead_venue_id": o.lead_venue_id}
    if o.answer:
        payload["answer"] = o.answer
    if alarm:
        payload["alarm"] = "deadline_missed"
    return payload


def file_objection(hub: Hub, session_id: str, body: ObjectionIn) -> dict[str, Any]:
    with hub.lock, hub.db() as s:
        session = hub.open_session(s, session_id)
        deadline = body.deadline or format_time(hub.now() + timedelta(hours=hub.config.objection_hours))
        o = db.Objection(objection_id=hub.next_id(s, "O"), session_id=session_id, status="received",
                         lead_venue_id=session.main_venue_id, filed_by=body.filed_by, filed_by_commitment="",
                         summary=body.summary, answer=None, deadline=deadline,
                         deadline_epoch=parse_time(deadline, "deadline").timestamp(), alarm_leaf=None, leaves=[])
        payload = _objection_payload(o)
        payload.pop("filed_by_commitment")
        receipt = hub.write(s, session, "objection", session.main_venue_id, payload,
                            personal={"filed_by_commitment": body.filed_by})
        o.filed_by_commitment = receipt["record"]["payload"]["filed_by_commitment"]
        o.leaves = [receipt["leaf_index"]]
        s.add(o)
        s.commit()
        return objection_view(o)


def step_objection(hub: Hub, objection_id: str, action: str, body: ObjectionStepIn,
                   by_venue: str | None) -> dict[str, Any]:
    """review / answer / withdraw. Review and answer are the lead (main) venue's; `by_venue` is the venue of
    the authenticated caller (None: the province, which records a withdrawal)."""
    target = {"review": "under_review", "answer": "answered", "withdraw": "withdrawn"}[action]
    allowed = {"review": ("received",), "answer": ("under_review",), "withdraw": OPEN}[action]
    with hub.lock, hub.db() as s:
        o: db.Objection = hub.get(s, db.Objection, objection_id, "objection")
        session = hub.open_session(s, o.session_id)
        if action != "withdraw" and by_venue != o.lead_venue_id:
            raise Forbidden(f"objections of session {o.session_id} are led by the main venue {o.lead_venue_id}; "
                            f"{by_venue or 'the province'} cannot {action} them")
        if o.status not in allowed:
            hint = " it must be under review before it is answered" if action == "answer" and o.status == "received" \
                else ""
            raise Conflict(f"objection {objection_id} is {o.status}; it cannot be {target.replace('_', ' ')}.{hint}")
        if action == "answer":
            if not body.answer:
                raise Invalid("an answer needs the answer text")
            o.answer = body.answer
        o.status = target
        receipt = hub.write(s, session, "objection", by_venue or o.lead_venue_id, _objection_payload(o))
        o.leaves = [*o.leaves, receipt["leaf_index"]]
        s.commit()
        return objection_view(o)


def check_deadlines(hub: Hub) -> list[str]:
    """Raise one alarm record for each open objection past its deadline; return their ids."""
    raised = []
    with hub.lock, hub.db() as s:
        due = s.scalars(select(db.Objection).where(db.Objection.status.in_(OPEN), db.Objection.alarm_leaf.is_(None),
                                                   db.Objection.deadline_epoch < hub.now().timestamp())).all()
        for o in due:
            session = s.get(db.EvalSession, o.session_id)
            if session is None:
                continue
            receipt = hub.write(s, session, "objection", o.lead_venue_id, _objection_payload(o, alarm=True))
            o.alarm_leaf = receipt["leaf_index"]
            o.leaves = [*o.leaves, receipt["leaf_index"]]
            s.commit()
            raised.append(o.objection_id)
    return raised


def alarms(hub: Hub) -> list[dict[str, Any]]:
    with hub.db() as s:
        rows = s.scalars(select(db.Objection).where(db.Objection.alarm_leaf.is_not(None))
                         .order_by(db.Objection.deadline_epoch)).all()
        return [{"kind": "objection_deadline_missed", "objection_id": o.objection_id, "session_id": o.session_id,
                 "deadline": o.deadline, "status": o.status, "leaf_index": o.alarm_leaf} for o in rows]


# ----- misconduct -----

def misconduct_view(m: db.MisconductCase) -> dict[str, Any]:
    return {"case_id": m.case_id, "project_id": m.project_id, "session_id": m.session_id, "status": m.status,
            "subject_kind": m.subject_kind, "subject": m.subject_public, "description": m.description,
            "evidence": m.evidence, "forwarded_to": m.forwarded_to, "leaves": m.leaves}


def _misconduct_payload(m: db.MisconductCase) -> dict[str, Any]:
    payload: dict[str, Any] = {"case_id": m.case_id, "status": m.status, "subject_kind": m.subject_kind,
                               "subject_commitment": m.subject_commitment, "description": m.description,
                               "evidence": m.evidence}
    if m.forwarded_to:
        payload["forwarded_to"] = m.forwarded_to
    return payload


def _check_evidence(hub: Hub, project_id: str, leaves: list[int]) -> None:
    for leaf in leaves:
        try:
            found = hub.notary_get(f"/v1/records/{leaf}")
        except NotFound as exc:
            raise Invalid(f"evidence leaf {leaf} is not in the notary's log") from exc
        if found["entry"]["record"].get("project_id") != project_id:
            raise Invalid(f"evidence leaf {leaf} belongs to project {found['entry']['record'].get('project_id')}, "
                          f"not {project_id}")


def record_misconduct(hub: Hub, body: MisconductIn) -> dict[str, Any]:
    with hub.lock, hub.db() as s:
        session: db.EvalSession = hub.get(s, db.EvalSession, body.session_id, "session")
        if body.subject_kind == "expert":
            expert: db.Expert = hub.get(s, db.Expert, body.subject_id, "expert")
            secret, public = expert.identity_number, expert.expert_id
        else:
            if not body.subject_name:
                raise Invalid(f"a misconduct record about a {body.subject_kind} names it (subject_name)")
            secret, public = body.subject_id, body.subject_name
        _check_evidence(hub, session.project_id, list(body.evidence))
        m = db.MisconductCase(
            case_id=hub.next_id(s, "M"), project_id=session.project_id, session_id=session.session_id,
            venue_id=session.main_venue_id, status="recorded", subject_kind=body.subject_kind, subject=body.subject_id,
            subject_public=public, subject_commitment="", description=body.description, evidence=list(body.evidence),
            forwarded_to=None, leaves=[])
        payload = _misconduct_payload(m)
        payload.pop("subject_commitment")
        receipt = hub.write(s, session, "misconduct", session.main_venue_id, payload,
                            personal={"subject_commitment": secret})
        m.subject_commitment = receipt["record"]["payload"]["subject_commitment"]
        m.leaves = [receipt["leaf_index"]]
        s.add(m)
        s.commit()
        return misconduct_view(m)


def step_misconduct(hub: Hub, case_id: str, action: str, body: MisconductStepIn) -> dict[str, Any]:
    """verify / publish / forward, strictly in that order."""
    target, before = {"verify": ("verified", "recorded"), "publish": ("published", "verified"),
                      "forward": ("forwarded", "published")}[action]
    with hub.lock, hub.db() as s:
        m: db.MisconductCase = hub.get(s, db.MisconductCase, case_id, "misconduct case")
        session: db.EvalSession = hub.get(s, db.EvalSession, m.session_id, "session")
        if m.status != before:
            raise Conflict(f"misconduct case {case_id} is {m.status}, not {before}; it cannot be {target}")
        added = [leaf for leaf in body.evidence if leaf not in m.evidence]
        _check_evidence(hub, m.project_id, added)
        evidence = [*m.evidence, *added]
        if action == "publish" and not evidence:
            raise Conflict(f"misconduct case {case_id} names no evidence; a published record names its evidence leaves")
        if action == "forward":
            if not body.supervisor:
                raise Invalid("forwarding names the supervisor (行政监督部门) it goes to")
            m.forwarded_to = body.supervisor
        m.evidence, m.status = evidence, target
        receipt = hub.write(s, session, "misconduct", m.venue_id, _misconduct_payload(m))
        m.leaves = [*m.leaves, receipt["leaf_index"]]
        s.commit()
        return misconduct_view(m)
