"""Objections (异议/质疑), complaints (投诉) and the misconduct registry (不当行为信息记录专题库).

Objection: a bidder files it with its own key (or the province records one received on paper); the main
venue reviews it and relays it (反映) to the tenderer or its agency and to supervisors; they answer. Each
step is an `objection` record (`verifier.cases.ObjectionRecord`). A relay or an answer past its deadline
raises one alarm record each (see `hub.jobs`).
Complaint: a bidder complains to one supervisor, who accepts or rejects it and decides an accepted one,
each within its deadline (`complaint` records, alarms likewise).
Misconduct: recorded → verified → published → forwarded. The party is committed twice: afresh
(`subject_commitment`) and under the registry key (`linkage_commitment`), the same for every case of the
party; forwarding delivers the case document to the supervisor's registered endpoint and records its
signed receipt.
"""

import base64
import binascii
import hashlib
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import db
from hub.api.models import (
    ComplaintIn,
    ComplaintStepIn,
    MisconductIn,
    MisconductStepIn,
    ObjectionIn,
    ObjectionStepIn,
    RegistrySearchIn,
)
from hub.errors import Conflict, Forbidden, Invalid, NotDelivered, NotFound
from hub.linkage import party_of
from hub.service import Hub
from notary.access import Caller, Principal, Role
from verifier.cases import (
    COMPLAINT_OPEN,
    OBJECTION_OPEN,
    ComplaintRecord,
    Delivery,
    MisconductRecord,
    ObjectionRecord,
    RelayTarget,
    forward_document,
    receipt_message,
)
from verifier.errors import MalformedInput, SignatureError
from verifier.signatures import verify_signature
from verifier.times import format_time, parse_time

OPEN = OBJECTION_OPEN
_PLACEHOLDER = "c1:" + "0" * 64  # replaced by the commitment `Hub.write` makes


def _deadline(hub: Hub, given: str | None, hours: float) -> str:
    return given or format_time(hub.now() + timedelta(hours=hours))


def _epoch(value: str) -> float:
    return parse_time(value, "deadline").timestamp()


def _principal(caller: Caller) -> Principal | None:
    return caller.principal


def _check_bound(principal: Principal, project_id: str) -> None:
    if project_id not in principal.projects:
        raise Forbidden(f"{principal.describe()} is not bound to project {project_id}")


# ----- objections -----

def objection_view(o: db.Objection) -> dict[str, Any]:
    return {"objection_id": o.objection_id, "session_id": o.session_id, "status": o.status,
            "lead_venue_id": o.lead_venue_id, "summary": o.summary, "answer": o.answer, "deadline": o.deadline,
            "relay_deadline": o.relay_deadline, "relayed_to": o.relayed_to,
            "answers": [{k: a[k] for k in ("by", "role", "answer", "leaf")} for a in o.answers],
            "overdue": o.alarm_leaf is not None or o.relay_alarm_leaf is not None, "alarm_leaf": o.alarm_leaf,
            "relay_alarm_leaf": o.relay_alarm_leaf, "leaves": o.leaves}


def _objection_record(o: db.Objection, alarm: str | None = None, answer: str | None = None,
                      answered_by: str | None = None) -> dict[str, Any]:
    return ObjectionRecord(
        o.objection_id, o.status, o.filed_by_commitment or _PLACEHOLDER, o.summary, o.lead_venue_id, o.deadline,
        o.relay_deadline, tuple(RelayTarget(t["principal_id"], t["role"]) for t in o.relayed_to), answer,
        answered_by, alarm).encode()


def file_objection(hub: Hub, session_id: str, body: ObjectionIn, caller: Caller) -> dict[str, Any]:
    principal = _principal(caller)
    bidder = principal is not None and principal.role is Role.BIDDER
    if bidder and (body.filed_by or body.deadline or body.relay_deadline):
        raise Invalid("a bidder files as itself, under the rules' deadlines: leave out filed_by, deadline and "
                      "relay_deadline")
    if not bidder and not body.filed_by:
        raise Invalid("an objection the province records names who filed it (filed_by)")
    with hub.lock, hub.db() as s:
        session = hub.open_session(s, session_id)
        if bidder and principal is not None:
            _check_bound(principal, session.project_id)
        filed_by = principal.principal_id if bidder and principal is not None else str(body.filed_by)
        deadline = _deadline(hub, body.deadline, hub.config.objection_hours)
        relay_deadline = _deadline(hub, body.relay_deadline, hub.config.objection_relay_hours)
        o = db.Objection(objection_id=hub.next_id(s, "O"), session_id=session_id, status="received",
                         lead_venue_id=session.main_venue_id, filed_by=filed_by,
                         filed_by_principal=principal.principal_id if bidder and principal else None,
                         filed_by_commitment="", summary=body.summary, answer=None, deadline=deadline,
                         deadline_epoch=_epoch(deadline), relay_deadline=relay_deadline,
                         relay_deadline_epoch=_epoch(relay_deadline), relayed_to=[], answers=[], alarm_leaf=None,
                         relay_alarm_leaf=None, leaves=[])
        _write_filing(hub, s, session, "objection", o, _objection_record(o), filed_by)
        return objection_view(o)


def _write_filing(hub: Hub, s: Session, session: db.EvalSession, kind: str, case: db.Objection | db.Complaint,
                  payload: dict[str, Any], filed_by: str) -> None:
    """Log a filing with who filed it as a commitment (the opening goes to the notary only); keep the case."""
    payload.pop("filed_by_commitment")
    record, receipt = hub.write_with_record(s, session, kind, session.main_venue_id, payload,
                                            personal={"filed_by_commitment": filed_by})
    case.filed_by_commitment = record["payload"]["filed_by_commitment"]
    case.leaves = [receipt.leaf_index]
    s.add(case)
    s.commit()


def check_objection_party(hub: Hub, objection_id: str, caller: Caller) -> None:
    """A bidder follows the objections it filed, a tenderer those relayed to it; the province and the
    supervisors all of them."""
    p = caller.principal
    if p is None or p.role not in (Role.BIDDER, Role.TENDERER):
        return
    with hub.db() as s:
        o: db.Objection = hub.get(s, db.Objection, objection_id, "objection")
    if p.role is Role.BIDDER and o.filed_by_principal != p.principal_id:
        raise Forbidden(f"{p.describe()} did not file objection {objection_id}")
    if p.role is Role.TENDERER and p.principal_id not in {t["principal_id"] for t in o.relayed_to}:
        raise Forbidden(f"objection {objection_id} was not relayed to {p.describe()}")


def _relay_targets(hub: Hub, project_id: str, to: list[str]) -> list[dict[str, str]]:
    targets = []
    for pid in dict.fromkeys(to):
        p = hub.principals.get(pid)
        if p is None or p.role not in (Role.TENDERER, Role.SUPERVISOR):
            raise Invalid(f"{pid} is not a registered tenderer, agency or supervisor of this hub")
        if p.role is Role.TENDERER and project_id not in p.projects:
            raise Invalid(f"{p.describe()} is not the tenderer or agency of project {project_id}")
        targets.append({"principal_id": pid, "role": str(p.role)})
    roles = {t["role"] for t in targets}
    if roles != {"tenderer", "supervisor"}:
        raise Invalid("the lead venue relays an objection to the tenderer or its agency and to the supervisors "
                      "(反映): `to` names at least one of each")
    return targets


def step_objection(hub: Hub, objection_id: str, action: str, body: ObjectionStepIn,
                   caller: Caller) -> dict[str, Any]:
    """review and relay: the lead (main) venue; answer: a party it was relayed to; withdraw: the bidder that
    filed it, or the province."""
    p = caller.principal
    target = {"review": "under_review", "relay": "relayed", "answer": "answered", "withdraw": "withdrawn"}[action]
    allowed = {"review": ("received",), "relay": ("received", "under_review"), "answer": ("relayed", "answered"),
               "withdraw": OPEN}[action]
    with hub.lock, hub.db() as s:
        o: db.Objection = hub.get(s, db.Objection, objection_id, "objection")
        session = hub.open_session(s, o.session_id)
        venue = p.venue_id if p is not None and p.role is Role.VENUE_OPERATOR else None
        if action in ("review", "relay") and venue != o.lead_venue_id:
            raise Forbidden(f"objections of session {o.session_id} are led by the main venue {o.lead_venue_id}; "
                            f"{venue or caller.name} cannot {action} them")
        if action == "withdraw" and p is not None and p.role is Role.BIDDER and o.filed_by_principal != p.principal_id:
            raise Forbidden(f"{p.describe()} did not file objection {objection_id}")
        if o.status not in allowed:
            raise Conflict(f"objection {objection_id} is {o.status}; it cannot be {target.replace('_', ' ')}")
        answer: str | None = None
        answered_by: str | None = None
        if action == "relay":
            o.relayed_to = _relay_targets(hub, session.project_id, body.to)
        if action == "answer":
            if p is None or p.principal_id not in {t["principal_id"] for t in o.relayed_to}:
                raise Forbidden(f"objection {objection_id} was not relayed to {caller.name}; only "
                                f"{', '.join(t['principal_id'] for t in o.relayed_to)} answer it")
            if not body.answer:
                raise Invalid("an answer needs the answer text")
            if any(a["by"] == p.principal_id for a in o.answers):
                raise Conflict(f"{p.principal_id} has already answered objection {objection_id}")
            answer, answered_by = body.answer, p.principal_id
            if p.role is Role.TENDERER:
                o.answer = body.answer
            else:
                target = o.status  # a supervisor's opinion; the objection waits for the tenderer's answer
        o.status = target
        acting = venue or o.lead_venue_id
        receipt = hub.write(s, session, "objection", acting, _objection_record(o, None, answer, answered_by))
        if answered_by is not None and p is not None:
            o.answers = [*o.answers, {"by": answered_by, "role": str(p.role), "answer": answer,
                                      "leaf": receipt.leaf_index}]
        o.leaves = [*o.leaves, receipt.leaf_index]
        s.commit()
        return objection_view(o)


# ----- complaints -----

def complaint_view(c: db.Complaint) -> dict[str, Any]:
    return {"complaint_id": c.complaint_id, "session_id": c.session_id, "project_id": c.project_id,
            "status": c.status, "supervisor_id": c.supervisor_id, "summary": c.summary,
            "objection_id": c.objection_id, "accept_deadline": c.accept_deadline,
            "decision_deadline": c.decision_deadline, "reason": c.reason, "decision": c.decision,
            "alarms": c.alarm_leaves, "leaves": c.leaves}


def _complaint_record(c: db.Complaint, alarm: str | None = None) -> dict[str, Any]:
    return ComplaintRecord(c.complaint_id, c.status, c.filed_by_commitment or _PLACEHOLDER, c.supervisor_id,
                           c.summary, c.accept_deadline, c.objection_id, c.decision_deadline, c.reason, c.decision,
                           alarm).encode()


def file_complaint(hub: Hub, session_id: str, body: ComplaintIn, caller: Caller) -> dict[str, Any]:
    p = caller.principal
    if p is None or p.role is not Role.BIDDER:
        raise Forbidden("a complaint is filed by a bidder with its own key")
    supervisor = hub.principals.get(body.supervisor_id)
    if supervisor is None or supervisor.role is not Role.SUPERVISOR:
        raise Invalid(f"{body.supervisor_id} is not a supervisor registered with this hub")
    with hub.lock, hub.db() as s:
        session = hub.open_session(s, session_id)
        _check_bound(p, session.project_id)
        if body.objection_id is not None:
            o = s.get(db.Objection, body.objection_id)
            if o is None or o.session_id != session_id or o.filed_by_principal != p.principal_id:
                raise Invalid(f"objection {body.objection_id} is not one {p.principal_id} filed in session "
                              f"{session_id}")
        deadline = _deadline(hub, None, hub.config.complaint_accept_hours)
        c = db.Complaint(complaint_id=hub.next_id(s, "C"), session_id=session_id, project_id=session.project_id,
                         status="filed", filed_by_principal=p.principal_id, filed_by_commitment="",
                         supervisor_id=supervisor.principal_id, summary=body.summary, objection_id=body.objection_id,
                         accept_deadline=deadline, decision_deadline=None, due_epoch=_epoch(deadline), reason=None,
                         decision=None, alarm_leaves=[], leaves=[])
        _write_filing(hub, s, session, "complaint", c, _complaint_record(c), p.principal_id)
        return complaint_view(c)


def check_complaint_party(hub: Hub, complaint_id: str, caller: Caller) -> None:
    """A bidder follows its own complaints, a supervisor those addressed to it; the province all of them."""
    p = caller.principal
    if p is None or p.role not in (Role.BIDDER, Role.SUPERVISOR):
        return
    with hub.db() as s:
        c: db.Complaint = hub.get(s, db.Complaint, complaint_id, "complaint")
    if p.principal_id not in (c.filed_by_principal, c.supervisor_id):
        raise Forbidden(f"complaint {complaint_id} is between {c.filed_by_principal} and {c.supervisor_id}")


def step_complaint(hub: Hub, complaint_id: str, action: str, body: ComplaintStepIn,
                   caller: Caller) -> dict[str, Any]:
    """accept, reject, decide: the supervisor it is addressed to; withdraw: the bidder that filed it."""
    p = caller.principal
    target = {"accept": "accepted", "reject": "rejected", "decide": "decided", "withdraw": "withdrawn"}[action]
    allowed = {"accept": ("filed",), "reject": ("filed",), "decide": ("accepted",), "withdraw": COMPLAINT_OPEN}
    with hub.lock, hub.db() as s:
        c: db.Complaint = hub.get(s, db.Complaint, complaint_id, "complaint")
        session = hub.open_session(s, c.session_id)
        who = c.filed_by_principal if action == "withdraw" else c.supervisor_id
        if p is None or p.principal_id != who:
            raise Forbidden(f"complaint {complaint_id}: only {who} may {action} it")
        if c.status not in allowed[action]:
            raise Conflict(f"complaint {complaint_id} is {c.status}; it cannot be {target}")
        if action in ("reject", "decide") and not body.text:
            raise Invalid(f"to {action} a complaint, give the {'reason' if action == 'reject' else 'decision'} (text)")
        if action == "accept":
            c.decision_deadline = _deadline(hub, None, hub.config.complaint_decision_hours)
            c.due_epoch = _epoch(c.decision_deadline)
        if action == "reject":
            c.reason = body.text
        if action == "decide":
            c.decision = body.text
        c.status = target
        receipt = hub.write(s, session, "complaint", session.main_venue_id, _complaint_record(c))
        c.leaves = [*c.leaves, receipt.leaf_index]
        s.commit()
        return complaint_view(c)


# ----- deadlines -----

def check_deadlines(hub: Hub) -> list[str]:
    """Raise one alarm record for each relay, answer, acceptance or decision past its deadline; return the
    ids of the objections and complaints concerned."""
    raised = []
    now = hub.now().timestamp()
    with hub.lock, hub.db() as s:
        late_relays = s.scalars(select(db.Objection).where(
            db.Objection.status.in_(("received", "under_review")), db.Objection.relay_alarm_leaf.is_(None),
            db.Objection.relay_deadline_epoch < now)).all()
        for o in late_relays:
            o.relay_alarm_leaf = _alarm(hub, s, o.session_id, "objection", o.lead_venue_id,
                                        _objection_record(o, "relay_overdue"))
            o.leaves = [*o.leaves, o.relay_alarm_leaf]
            s.commit()
            raised.append(o.objection_id)
        late_answers = s.scalars(select(db.Objection).where(
            db.Objection.status.in_(OPEN), db.Objection.alarm_leaf.is_(None),
            db.Objection.deadline_epoch < now)).all()
        for o in late_answers:
            o.alarm_leaf = _alarm(hub, s, o.session_id, "objection", o.lead_venue_id,
                                  _objection_record(o, "deadline_missed"))
            o.leaves = [*o.leaves, o.alarm_leaf]
            s.commit()
            raised.append(o.objection_id)
        for c in s.scalars(select(db.Complaint).where(db.Complaint.status.in_(COMPLAINT_OPEN),
                                                      db.Complaint.due_epoch < now)).all():
            alarm = "acceptance_overdue" if c.status == "filed" else "decision_overdue"
            if any(a["alarm"] == alarm for a in c.alarm_leaves):
                continue
            session = s.get(db.EvalSession, c.session_id)
            leaf = _alarm(hub, s, c.session_id, "complaint", session.main_venue_id if session else c.supervisor_id,
                          _complaint_record(c, alarm))
            c.alarm_leaves = [*c.alarm_leaves, {"alarm": alarm, "leaf": leaf}]
            c.leaves = [*c.leaves, leaf]
            s.commit()
            raised.append(c.complaint_id)
    return raised


def _alarm(hub: Hub, s: Session, session_id: str, kind: str, venue_id: str, payload: dict[str, Any]) -> int:
    session = hub.get(s, db.EvalSession, session_id, "session")
    return hub.write(s, session, kind, venue_id, payload).leaf_index


def alarms(hub: Hub) -> list[dict[str, Any]]:
    with hub.db() as s:
        out = []
        for o in s.scalars(select(db.Objection).order_by(db.Objection.deadline_epoch)):
            if o.relay_alarm_leaf is not None:
                out.append({"kind": "objection_relay_overdue", "objection_id": o.objection_id,
                            "session_id": o.session_id, "deadline": o.relay_deadline, "status": o.status,
                            "leaf_index": o.relay_alarm_leaf})
            if o.alarm_leaf is not None:
                out.append({"kind": "objection_deadline_missed", "objection_id": o.objection_id,
                            "session_id": o.session_id, "deadline": o.deadline, "status": o.status,
                            "leaf_index": o.alarm_leaf})
        for c in s.scalars(select(db.Complaint).order_by(db.Complaint.complaint_id)):
            for a in c.alarm_leaves:
                out.append({"kind": f"complaint_{a['alarm']}", "complaint_id": c.complaint_id,
                            "session_id": c.session_id, "status": c.status, "leaf_index": a["leaf"],
                            "deadline": c.accept_deadline if a["alarm"] == "acceptance_overdue"
                            else c.decision_deadline})
        return out


# ----- misconduct -----

def misconduct_view(m: db.MisconductCase) -> dict[str, Any]:
    return {"case_id": m.case_id, "project_id": m.project_id, "session_id": m.session_id, "status": m.status,
            "subject_kind": m.subject_kind, "subject": m.subject_public, "description": m.description,
            "evidence": m.evidence, "linkage": m.linkage_commitment, "linkage_key": m.linkage_key,
            "forwarded_to": m.forwarded_to, "delivery": m.delivery, "leaves": m.leaves}


def public_case(m: db.MisconductCase) -> dict[str, Any]:
    """What the public sees of a published case: never the credit code or identity number."""
    return {"case_id": m.case_id, "project_id": m.project_id, "subject_kind": m.subject_kind,
            "subject": m.subject_public, "description": m.description, "evidence": m.evidence, "status": m.status,
            "linkage": m.linkage_commitment, "published_leaf": m.leaves[2] if len(m.leaves) > 2 else None}


def _case_record(m: db.MisconductCase) -> MisconductRecord:
    return MisconductRecord(
        m.case_id, m.status, m.subject_kind, m.subject_commitment or _PLACEHOLDER,
        m.linkage_commitment or _PLACEHOLDER, m.linkage_key, m.description, tuple(m.evidence), m.forwarded_to,
        Delivery(**m.delivery) if m.delivery else None)


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
        try:
            group, party = party_of(body.subject_kind, secret)
        except ValueError as exc:
            raise Invalid(f"subject_id: {exc}") from exc
        _check_evidence(hub, session.project_id, list(body.evidence))
        keys = hub.linkage_keys
        m = db.MisconductCase(
            case_id=hub.next_id(s, "M"), project_id=session.project_id, session_id=session.session_id,
            venue_id=session.main_venue_id, status="recorded", subject_kind=body.subject_kind, subject=party,
            subject_public=public, subject_commitment="", linkage_commitment="", linkage_key=keys.current,
            description=body.description, evidence=list(body.evidence), forwarded_to=None, delivery=None, leaves=[])
        payload = _case_record(m).encode()
        payload.pop("subject_commitment")
        payload.pop("linkage_commitment")
        record, receipt = hub.write_with_record(s, session, "misconduct", session.main_venue_id, payload,
                                                personal={"subject_commitment": party, "linkage_commitment": party},
                                                salts={"linkage_commitment": keys.salt(group, party)})
        written = record["payload"]
        m.subject_commitment, m.linkage_commitment = written["subject_commitment"], written["linkage_commitment"]
        m.leaves = [receipt.leaf_index]
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
        if action == "forward" and added:
            raise Invalid("a forward delivers the published case as it stands; add evidence before publishing")
        m.evidence = evidence
        if action == "forward":
            m.delivery, m.forwarded_to = _deliver(hub, s, m, body), body.supervisor
        m.status = target
        receipt = hub.write(s, session, "misconduct", m.venue_id, _case_record(m).encode())
        m.leaves = [*m.leaves, receipt.leaf_index]
        s.commit()
        return misconduct_view(m)


def _deliver(hub: Hub, s: Session, m: db.MisconductCase, body: MisconductStepIn) -> dict[str, Any]:
    """转送: POST the case document to the supervisor's registered endpoint and check its signed receipt.
    Only registered endpoints are ever called; nothing changes unless the receipt holds."""
    if not body.supervisor:
        raise Invalid("forwarding names the supervisor (行政监督部门) it goes to, by principal id")
    supervisor = hub.principals.get(body.supervisor)
    if supervisor is None or supervisor.role is not Role.SUPERVISOR:
        raise Invalid(f"{body.supervisor} is not a supervisor registered with this hub")
    if not supervisor.endpoints:
        raise Invalid(f"supervisor {supervisor.principal_id} has no registered endpoint to forward to")
    endpoint = body.endpoint or sorted(supervisor.endpoints)[0]
    if endpoint not in supervisor.endpoints:
        raise Forbidden(f"{endpoint[:200]} is not an endpoint registered for {supervisor.principal_id}")
    earlier = [(leaf, hub.get(s, db.EvidenceRow, leaf, "evidence leaf").leaf_hash) for leaf in m.leaves]
    document = forward_document(m.project_id, _case_record(m), earlier)
    digest = hashlib.sha256(document).hexdigest()
    try:
        with httpx.Client(timeout=hub.config.webhook_timeout, follow_redirects=False) as client:
            response = client.post(endpoint, content=document, headers={"Content-Type": "application/json"})
    except httpx.HTTPError as exc:
        raise NotDelivered(f"the case could not be delivered to {endpoint[:200]} ({type(exc).__name__}); "
                            "it stays published") from exc
    if not 200 <= response.status_code < 300:
        raise NotDelivered(f"{endpoint[:200]} answered {response.status_code}; the case stays published")
    try:
        receipt = response.json()
        delivery = Delivery.parse({"endpoint": endpoint, **{k: receipt[k] for k in
                                                            ("document_sha256", "receipt_id", "received_at",
                                                             "signature")}}, "receipt")
        if delivery.document_sha256 != digest:
            raise SignatureError(f"the receipt acknowledges document {delivery.document_sha256[:16]}…, "
                                 f"not the one delivered ({digest[:16]}…)")
        verify_signature(hub.principals.key_of(supervisor), base64.b64decode(delivery.signature, validate=True),
                         receipt_message(digest, delivery.receipt_id, delivery.received_at),
                         supervisor.principal_id)
    except (ValueError, KeyError, TypeError, binascii.Error, MalformedInput, SignatureError) as exc:
        raise NotDelivered(f"the receipt from {endpoint[:200]} does not hold ({str(exc)[:200]}); "
                            "the case stays published") from exc
    return delivery.encode()


def search_registry(hub: Hub, body: RegistrySearchIn, caller: Caller) -> list[dict[str, Any]]:
    """Every case of one party, across projects and registry key versions. Each read is recorded in the
    sessions of the cases found."""
    try:
        if body.subject_kind == "expert":
            with hub.db() as s:
                group, party = party_of("expert", hub.get(s, db.Expert, body.subject_id, "expert").identity_number)
        else:
            group, party = party_of(body.subject_kind, body.subject_id)
    except ValueError as exc:
        raise Invalid(f"subject_id: {exc}") from exc
    return _linked(hub, list(hub.linkage_keys.linkages(group, party).values()), caller)


def linked_cases(hub: Hub, case_id: str, caller: Caller) -> list[dict[str, Any]]:
    with hub.db() as s:
        m: db.MisconductCase = hub.get(s, db.MisconductCase, case_id, "misconduct case")
        linkage = m.linkage_commitment
    return _linked(hub, [linkage], caller)


def _linked(hub: Hub, linkages: list[str], caller: Caller) -> list[dict[str, Any]]:
    with hub.db() as s:
        found = s.scalars(select(db.MisconductCase).where(db.MisconductCase.linkage_commitment.in_(linkages))
                          .order_by(db.MisconductCase.case_id)).all()
    for session_id in dict.fromkeys(m.session_id for m in found):
        hub.record_access(session_id, caller, "search_misconduct_registry", "POST /misconduct/registry")
    return [misconduct_view(m) for m in found]


def published_cases(hub: Hub) -> list[dict[str, Any]]:
    with hub.db() as s:
        cases = s.scalars(select(db.MisconductCase).where(db.MisconductCase.status.in_(("published", "forwarded")))
                          .order_by(db.MisconductCase.case_id)).all()
        return [public_case(m) for m in cases]
