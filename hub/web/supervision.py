"""The supervisors' console: sessions across the province with their alarms, a session's live timeline,
"prove it" for each leaf, objections and misconduct with their deadlines, and verify-by-upload."""

import asyncio
import hashlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from hub import db
from hub.api.deps import allowed, check_session, get_hub, permit
from hub.api.verify import check_extract
from hub.errors import HubError, NotFound
from hub.service import Hub
from hub.web.login import ConsoleSession
from hub.web.pages import event_stream, fragment, language, posted_form, render, signed_in, sse_event
from hub.workflows import alarms, bookings, cases, proofs
from verifier.extract import Verdict
from verifier.report import failures

router = APIRouter()


def _session_rows(hub: Hub, lang: str) -> str:
    anchor = alarms.anchor_state(hub)
    with hub.db() as s:
        rows = [(x, alarms.session_alarms(hub, s, x, anchor))
                for x in s.scalars(select(db.EvalSession).where(db.EvalSession.session_id != "registry")
                                   .order_by(db.EvalSession.slot_start.desc(), db.EvalSession.session_id))]
    return fragment("_session_rows.html.j2", lang, rows=rows)


@router.get("/supervision", name="supervision")
def supervision(request: Request) -> HTMLResponse:
    session = signed_in(request)
    permit(session.caller, "read_cases")
    return render(request, "supervision.html.j2", session, rows_html=_session_rows(get_hub(request),
                                                                                     language(request)))


@router.get("/supervision/stream", name="supervision_stream")
async def supervision_stream(request: Request) -> StreamingResponse:
    """The session list again whenever it changed (checked every two seconds)."""
    session = signed_in(request)
    permit(session.caller, "read_cases")
    hub, lang, last = get_hub(request), language(request), [""]

    async def step() -> list[bytes]:
        rows = await asyncio.to_thread(_session_rows, hub, lang)
        digest = hashlib.sha256(rows.encode()).hexdigest()
        if digest == last[0]:
            return []
        last[0] = digest
        return [sse_event("rows", rows)]
    return StreamingResponse(event_stream(request, step, 2.0), media_type="text/event-stream")


def _timeline_rows(hub: Hub, session_id: str, after: int) -> list[db.EvidenceRow]:
    with hub.db() as s:
        return list(s.scalars(select(db.EvidenceRow).where(db.EvidenceRow.session_id == session_id,
                                                            db.EvidenceRow.leaf_index > after)
                              .order_by(db.EvidenceRow.leaf_index).limit(500)))


def _of_session(s: Session, model: Any, session_id: str) -> list[Any]:
    key = next(iter(model.__table__.primary_key.columns)).name
    return list(s.scalars(select(model).where(model.session_id == session_id).order_by(getattr(model, key))))


def read_recorded(request: Request, session_id: str, action: str) -> tuple[ConsoleSession, Hub]:
    """A read of one session's evidence: the API's checks (read_session, the session's own rule), then the
    read recorded before anything is shown."""
    session = signed_in(request)
    permit(session.caller, "read_session")
    hub = get_hub(request)
    with hub.db() as s:
        check_session(session.caller, s, hub.get(s, db.EvalSession, session_id, "session"))
    hub.record_access(session_id, session.caller, action, f"GET {request.url.path}")
    return session, hub


@router.get("/sessions/{session_id}", name="session")
def session_page(request: Request, session_id: str) -> HTMLResponse:
    session, hub = read_recorded(request, session_id, "read_timeline")
    anchor = alarms.anchor_state(hub)
    with hub.db() as s:
        evaluation = hub.get(s, db.EvalSession, session_id, "session")
        context: dict[str, Any] = {
            "evaluation": evaluation, "venues": bookings.venues_of(s, evaluation),
            "bookings": list(s.scalars(select(db.Booking).where(db.Booking.session_id == session_id)
                                       .order_by(db.Booking.booking_id))),
            "cameras": alarms.cameras(s, session_id), "cases_visible": False, "now": hub.now().timestamp(),
            "alarms": [], "objections": [], "misconduct": [], "incidents": []}
        if allowed(session.caller, "read_cases"):
            context.update(cases_visible=True, alarms=alarms.session_alarms(hub, s, evaluation, anchor),
                           objections=_of_session(s, db.Objection, session_id),
                           misconduct=_of_session(s, db.MisconductCase, session_id),
                           incidents=_of_session(s, db.Incident, session_id))
    rows = _timeline_rows(hub, session_id, -1)
    return render(request, "session.html.j2", session, rows=rows, last=rows[-1].leaf_index if rows else -1,
                  **context)


@router.get("/sessions/{session_id}/stream", name="session_stream")
async def session_stream(request: Request, session_id: str, after: int = -1) -> StreamingResponse:
    """Each new leaf of the session as the hub sees it, one event per leaf (its id the leaf index, so a
    reconnecting browser resumes after the last one it has)."""
    _, hub = read_recorded(request, session_id, "watch_timeline")
    last_id = request.headers.get("last-event-id", "")
    cursor = [int(last_id) if last_id.isdigit() else after]
    lang = language(request)

    async def step() -> list[bytes]:
        rows = await asyncio.to_thread(_timeline_rows, hub, session_id, cursor[0])
        if rows:
            cursor[0] = rows[-1].leaf_index
        return [sse_event("record", fragment("_timeline_row.html.j2", lang, row=row), str(row.leaf_index))
                for row in rows]
    return StreamingResponse(event_stream(request, step), media_type="text/event-stream")


@router.get("/proof/{leaf_index}", name="proof")
def proof_page(request: Request, leaf_index: int) -> HTMLResponse:
    signed_in(request)  # before anything, even whether the leaf exists, is told
    with get_hub(request).db() as s:
        row = s.get(db.EvidenceRow, leaf_index)
    if row is None:
        raise NotFound(f"leaf {leaf_index} belongs to no session this hub coordinates")
    session, hub = read_recorded(request, row.session_id, "read_record")
    proof = proofs.prove(hub, leaf_index, row.leaf_hash, row.receipt, row.record)
    return render(request, "proof.html.j2", session, row=row, proof=proof, public_view=False)


@router.get("/cases", name="cases")
def cases_page(request: Request) -> HTMLResponse:
    session = signed_in(request)
    permit(session.caller, "read_cases")
    hub = get_hub(request)
    with hub.db() as s:
        objections = list(s.scalars(select(db.Objection).order_by(db.Objection.deadline_epoch)))
        misconduct = list(s.scalars(select(db.MisconductCase).order_by(db.MisconductCase.case_id)))
        incidents = list(s.scalars(select(db.Incident).order_by(db.Incident.incident_id)))
    return render(request, "cases.html.j2", session, objections=objections, misconduct=misconduct,
                  incidents=incidents, now=hub.now().timestamp(), open_states=cases.OPEN)


def _roots(hub: Hub) -> list[str]:
    roots = proofs.trust_roots(hub.config.trust)
    return roots.describe() if roots is not None else []


@router.get("/verify", name="verify_form")
def verify_form(request: Request) -> HTMLResponse:
    session = signed_in(request)
    permit(session.caller, "verify_extract")
    return render(request, "verify.html.j2", session, roots=_roots(get_hub(request)), checked=None)


@router.post("/verify")
async def verify_upload(request: Request) -> HTMLResponse:
    """The uploaded extract checked by `verifier` (as `POST /extracts/verify`), its report shown."""
    session = signed_in(request)
    permit(session.caller, "verify_extract")
    hub = get_hub(request)
    form = await posted_form(request, session)
    upload = form.get("extract")
    if not isinstance(upload, UploadFile):
        raise HubError("choose an audit extract file (.zip) to upload")
    data = await upload.read()
    lang = language(request)
    checked = await asyncio.to_thread(check_extract, hub, data, upload.filename or "extract.zip", lang)
    return render(request, "verify.html.j2", session, roots=_roots(hub), checked=checked,
                  verdict_ok=checked.report.verdict is Verdict.VERIFIED, failures=failures(checked.report, lang))
