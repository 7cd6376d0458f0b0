"""The consoles, served by the hub under /console: supervisors', venues', the court's upload, and the
public page (信息公开). Server-rendered (Jinja2, autoescaped) with a little plain JavaScript for live
updates (server-sent events); everything is served from the package.

The console is not a second way in: every page and form calls the same permission checks (`permit`,
`check_session`, `require_venue`) and the same workflow and API functions as the signed API, with the
caller taken from the server-side session (see `hub.web.login`). Reads that the API records are recorded
here too, with the purpose "web console".
"""

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData, UploadFile

from hub import db
from hub.api import sessions as session_api
from hub.api import steps as step_api
from hub.api.deps import acting_venue, allowed, check_session, get_caller, permit
from hub.api.models import IncidentIn, IncidentResolveIn
from hub.api.verify import check_extract
from hub.errors import Forbidden, HubError, NotFound
from hub.service import Hub
from hub.web import i18n, login
from hub.web.login import COOKIE, ConsoleSession, LoginRefused
from hub.workflows import alarms, bookings, cases, proofs, public
from notary.access import Role
from verifier.extract import Verdict
from verifier.report import LANGUAGES
from verifier.report import failures as report_failures

HERE = Path(__file__).resolve().parent
STREAM_SECONDS = 600.0  # a stream ends after this; the browser's EventSource reconnects where it left off
POLL_SECONDS = 0.5
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


class NotSignedIn(Exception):
    """A console page asked for without a live session."""


def _lang(request: Request) -> str:
    return i18n.pick(request.query_params.get("lang") or request.cookies.get("lang"))


def _session(request: Request) -> ConsoleSession | None:
    hub: Hub = request.app.state.hub
    return login.session_of(hub, request.cookies.get(COOKIE))


def _signed_in(request: Request) -> ConsoleSession:
    session = _session(request)
    if session is None:
        raise NotSignedIn()
    return session


def _render(request: Request, template: str, session: ConsoleSession | None, status: int = 200,
            **context: Any) -> HTMLResponse:
    lang = _lang(request)
    principal = session.caller.principal if session is not None else None
    html = _ENV.get_template(template).render(
        lang=lang, w=i18n.words(lang), alarm_names=i18n.alarm_names(lang), type_names=i18n.type_names(lang),
        session=session, principal=principal, role=str(principal.role) if principal else "public",
        venue_of_caller=principal.venue_id if principal else None, path=request.url.path,
        statistics_url=request.app.state.statistics_url, **context)
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="strict", httponly=True)
    return response


def fragment(template: str, lang: str, **context: Any) -> str:
    return _ENV.get_template(template).render(lang=lang, w=i18n.words(lang), alarm_names=i18n.alarm_names(lang),
                                              type_names=i18n.type_names(lang), **context)


async def _form(request: Request, session: ConsoleSession) -> FormData:
    """The posted form, refused unless it carries this session's CSRF token (and, when the browser says
    where it comes from, comes from here)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden(f"a form of this console must be posted from it, not from {origin[:80]}")
    form = await request.form()
    if not login.csrf_holds(session, form.get("csrf")):
        raise Forbidden("the form's CSRF token is missing or not this session's; reload the page and try again")
    return form


def _sse(event: str, data: str, event_id: str | None = None) -> bytes:
    lines = [f"event: {event}"] + ([f"id: {event_id}"] if event_id is not None else [])
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return ("\n".join(lines) + "\n\n").encode()


async def _stream(request: Request, step: Callable[[], Awaitable[list[bytes]]],
                  interval: float = POLL_SECONDS) -> AsyncIterator[bytes]:
    """Events from `step` until the browser goes away or the stream's time is up (it then reconnects)."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + STREAM_SECONDS
    yield b"retry: 2000\n\n"
    while loop.time() < ends and not await request.is_disconnected():
        for event in await step():
            yield event
        await asyncio.sleep(interval)


def create_console(hub: Hub, authenticator: Any) -> FastAPI:
    console = FastAPI(title="bidtrace console", docs_url=None, redoc_url=None, openapi_url=None)
    console.state.hub = hub
    console.state.authenticator = authenticator
    # The monthly statistics page lives in its own module; when it is served, its URL goes here and the
    # supervisors' navigation links it.
    console.state.statistics_url = None
    console.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @console.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        # Login codes travel in a URL once: no other site ever sees it as a referrer.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Content-Type-Options"] = "nosniff"
        if not request.url.path.startswith("/console/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @console.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _: NotSignedIn) -> Response:
        if request.headers.get("accept") == "text/event-stream":
            return Response("not signed in", status_code=401)
        return RedirectResponse(request.url_for("home"), status_code=303)

    def error(request: Request, status: int, message: str) -> HTMLResponse:
        return _render(request, "error.html.j2", _session(request), status, message=message, code=status)

    @console.exception_handler(HubError)
    async def hub_error(request: Request, exc: HubError) -> HTMLResponse:
        return error(request, exc.status, exc.message)

    @console.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> HTMLResponse:
        return error(request, exc.status_code, str(exc.detail))

    @console.exception_handler(LoginRefused)
    async def login_refused(request: Request, exc: LoginRefused) -> HTMLResponse:
        return error(request, 400, str(exc))

    @console.exception_handler(ValidationError)
    async def invalid(request: Request, exc: ValidationError) -> HTMLResponse:
        first = exc.errors()[0]
        return error(request, 422, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")

    # ----- signing in -----

    @console.get("/", name="home")
    def home(request: Request) -> Response:
        session = _session(request)
        if session is None:
            hub_url = str(request.base_url).rstrip("/").removesuffix("/console")
            return _render(request, "home.html.j2", None, hub_url=hub_url)
        p = session.caller.principal
        assert p is not None
        target = {Role.SUPERVISOR: "supervision", Role.HUB_OPERATOR: "supervision", Role.COURT: "verify_form"}
        if p.role is Role.VENUE_OPERATOR:
            return RedirectResponse(request.url_for("venue", venue_id=p.venue_id), status_code=303)
        if p.role in target:
            return RedirectResponse(request.url_for(target[p.role]), status_code=303)
        return _render(request, "home.html.j2", session, hub_url="")

    @console.post("/login-links", status_code=201)
    async def login_link(request: Request) -> JSONResponse:
        try:  # a command line asks: it is answered in JSON, as the API answers
            caller = await get_caller(request)
        except HTTPException as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        try:
            code, expires = login.issue_login(hub, caller)
        except LoginRefused as exc:
            return JSONResponse({"detail": str(exc)}, status_code=401 if caller.principal is None else 403)
        url = f"{request.url_for('login_page')}?code={code}"
        return JSONResponse({"url": url, "expires_at": datetime.fromtimestamp(expires, hub.tz).isoformat(
            timespec="seconds")}, status_code=201)

    @console.get("/login", name="login_page")
    def login_page(request: Request, code: str = "") -> HTMLResponse:
        principal = login.pending_login(hub, code)
        return _render(request, "login.html.j2", _session(request), pending=principal, code=code)

    @console.post("/login")
    async def login_post(request: Request) -> Response:
        form = await request.form()
        code = form.get("code")
        token, _ = login.redeem_login(hub, code if isinstance(code, str) else "")
        response = RedirectResponse(request.url_for("home"), status_code=303)
        response.set_cookie(COOKIE, token, max_age=login.SESSION_SECONDS, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/console")
        return response

    @console.post("/logout", name="logout")
    async def logout(request: Request) -> Response:
        session = _signed_in(request)
        await _form(request, session)
        login.end_session(hub, session)
        response = RedirectResponse(request.url_for("home"), status_code=303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    # ----- the supervisors' console -----

    def session_rows(lang: str) -> str:
        anchor = alarms.anchor_state(hub)
        with hub.db() as s:
            rows = [(x, alarms.session_alarms(hub, s, x, anchor))
                    for x in s.scalars(select(db.EvalSession).where(db.EvalSession.session_id != "registry")
                                       .order_by(db.EvalSession.slot_start.desc(), db.EvalSession.session_id))]
        return fragment("_session_rows.html.j2", lang, rows=rows)

    @console.get("/supervision", name="supervision")
    def supervision(request: Request) -> HTMLResponse:
        session = _signed_in(request)
        permit(session.caller, "read_cases")
        return _render(request, "supervision.html.j2", session, rows_html=session_rows(_lang(request)))

    @console.get("/supervision/stream", name="supervision_stream")
    async def supervision_stream(request: Request) -> StreamingResponse:
        session = _signed_in(request)
        permit(session.caller, "read_cases")
        lang, last = _lang(request), [""]

        async def step() -> list[bytes]:
            rows = await asyncio.to_thread(session_rows, lang)
            digest = hashlib.sha256(rows.encode()).hexdigest()
            if digest == last[0]:
                return []
            last[0] = digest
            return [_sse("rows", rows)]
        return StreamingResponse(_stream(request, step, 2.0), media_type="text/event-stream")

    def timeline_rows(session_id: str, after: int) -> list[db.EvidenceRow]:
        with hub.db() as s:
            return list(s.scalars(select(db.EvidenceRow).where(db.EvidenceRow.session_id == session_id,
                                                                db.EvidenceRow.leaf_index > after)
                                  .order_by(db.EvidenceRow.leaf_index).limit(500)))

    @console.get("/sessions/{session_id}", name="session")
    def session_page(request: Request, session_id: str) -> HTMLResponse:
        session = _signed_in(request)
        permit(session.caller, "read_session")
        with hub.db() as s:
            check_session(session.caller, s, hub.get(s, db.EvalSession, session_id, "session"))
        hub.record_access(session_id, session.caller, "read_timeline", f"GET /console/sessions/{session_id}")
        anchor = alarms.anchor_state(hub)
        with hub.db() as s:
            evaluation = hub.get(s, db.EvalSession, session_id, "session")
            context: dict[str, Any] = {
                "evaluation": evaluation, "venues": bookings.venues_of(s, evaluation),
                "bookings": list(s.scalars(select(db.Booking).where(db.Booking.session_id == session_id)
                                           .order_by(db.Booking.booking_id))),
                "cameras": alarms.cameras(s, session_id), "cases_visible": False,
                "alarms": [], "objections": [], "misconduct": [], "incidents": []}
            if allowed(session.caller, "read_cases"):
                context.update(cases_visible=True, alarms=alarms.session_alarms(hub, s, evaluation, anchor),
                               objections=_of_session(s, db.Objection, session_id),
                               misconduct=_of_session(s, db.MisconductCase, session_id),
                               incidents=_of_session(s, db.Incident, session_id))
        rows = timeline_rows(session_id, -1)
        return _render(request, "session.html.j2", session, rows=rows, last=rows[-1].leaf_index if rows else -1,
                       **context)

    @console.get("/sessions/{session_id}/stream", name="session_stream")
    async def session_stream(request: Request, session_id: str, after: int = -1) -> StreamingResponse:
        session = _signed_in(request)
        permit(session.caller, "read_session")
        with hub.db() as s:
            check_session(session.caller, s, hub.get(s, db.EvalSession, session_id, "session"))
        hub.record_access(session_id, session.caller, "watch_timeline", f"GET /console/sessions/{session_id}/stream")
        last_id = request.headers.get("last-event-id", "")
        cursor = [int(last_id) if last_id.isdigit() else after]
        lang = _lang(request)

        async def step() -> list[bytes]:
            rows = await asyncio.to_thread(timeline_rows, session_id, cursor[0])
            if rows:
                cursor[0] = rows[-1].leaf_index
            return [_sse("record", fragment("_timeline_row.html.j2", lang, row=row), str(row.leaf_index))
                    for row in rows]
        return StreamingResponse(_stream(request, step), media_type="text/event-stream")

    @console.get("/proof/{leaf_index}", name="proof")
    def proof_page(request: Request, leaf_index: int) -> HTMLResponse:
        session = _signed_in(request)
        permit(session.caller, "read_session")
        with hub.db() as s:
            row = s.get(db.EvidenceRow, leaf_index)
            if row is None:
                raise NotFound(f"leaf {leaf_index} belongs to no session this hub coordinates")
            check_session(session.caller, s, hub.get(s, db.EvalSession, row.session_id, "session"))
        hub.record_access(row.session_id, session.caller, "read_record", f"GET /console/proof/{leaf_index}")
        proof = proofs.prove(hub, leaf_index, row.leaf_hash, row.receipt, row.record)
        return _render(request, "proof.html.j2", session, row=row, proof=proof, public_view=False)

    @console.get("/cases", name="cases")
    def cases_page(request: Request) -> HTMLResponse:
        session = _signed_in(request)
        permit(session.caller, "read_cases")
        now = hub.now().timestamp()
        with hub.db() as s:
            objections = list(s.scalars(select(db.Objection).order_by(db.Objection.deadline_epoch)))
            misconduct = list(s.scalars(select(db.MisconductCase).order_by(db.MisconductCase.case_id)))
            incidents = list(s.scalars(select(db.Incident).order_by(db.Incident.incident_id)))
        return _render(request, "cases.html.j2", session, objections=objections, misconduct=misconduct,
                       incidents=incidents, now=now, open_states=cases.OPEN)

    @console.get("/verify", name="verify_form")
    def verify_form(request: Request) -> HTMLResponse:
        session = _signed_in(request)
        permit(session.caller, "verify_extract")
        return _render(request, "verify.html.j2", session, roots=_roots(), checked=None)

    @console.post("/verify")
    async def verify_upload(request: Request) -> HTMLResponse:
        session = _signed_in(request)
        permit(session.caller, "verify_extract")
        form = await _form(request, session)
        upload = form.get("extract")
        if not isinstance(upload, UploadFile):
            raise HubError("choose an audit extract file (.zip) to upload")
        data = await upload.read()
        lang = _lang(request)
        checked = await asyncio.to_thread(check_extract, hub, data, upload.filename or "extract.zip", lang)
        return _render(request, "verify.html.j2", session, roots=_roots(), checked=checked,
                       verdict_ok=checked.report.verdict is Verdict.VERIFIED,
                       failures=report_failures(checked.report, lang))

    def _roots() -> list[str]:
        roots = proofs.trust_roots(hub.config.trust)
        return roots.describe() if roots is not None else []

    # ----- the venues' console -----

    def own_venue(session: ConsoleSession, venue_id: str) -> str:
        """A venue operator acts only as the venue of its credential; another venue's console is refused."""
        permit(session.caller, "answer_booking")
        mine = acting_venue(session.caller)
        if mine != venue_id:
            p = session.caller.principal
            raise Forbidden(f"{p.describe() if p else 'this caller'} acts only as venue {mine}; "
                            f"the console of {venue_id} is not its own")
        return mine

    @console.get("/venues/{venue_id}", name="venue")
    def venue_page(request: Request, venue_id: str) -> HTMLResponse:
        session = _signed_in(request)
        own_venue(session, venue_id)
        today = hub.now().date()
        with hub.db() as s:
            venue = hub.get(s, db.Venue, venue_id, "venue")
            mine = list(s.scalars(select(db.Booking).where(db.Booking.venue_id == venue_id).order_by(
                db.Booking.slot_start)))
            shown = [b for b in mine if b.status == "offered" or _on(b.slot_start, today)]
            taking_part = [x for x in s.scalars(select(db.EvalSession).where(
                db.EvalSession.status == "open", db.EvalSession.session_id != "registry").order_by(
                db.EvalSession.slot_start)) if venue_id in bookings.venues_of(s, x)]
        sessions_view = []
        for evaluation in taking_part:
            # Rosters, check-ins and recordings come from the session's evidence: a read recorded as the
            # timeline's is.
            with hub.db() as s:
                check_session(session.caller, s, evaluation)
            hub.record_access(evaluation.session_id, session.caller, "read_venue_console",
                              f"GET /console/venues/{venue_id}")
            with hub.db() as s:
                sessions_view.append({
                    "evaluation": evaluation,
                    "checkins": list(s.scalars(select(db.CheckIn).where(
                        db.CheckIn.session_id == evaluation.session_id, db.CheckIn.venue_id == venue_id)
                        .order_by(db.CheckIn.id))),
                    "expected": list(s.scalars(select(db.Selection).where(
                        db.Selection.session_id == evaluation.session_id, db.Selection.venue_id == venue_id,
                        db.Selection.status == "selected").order_by(db.Selection.id))),
                    "cameras": alarms.cameras(s, evaluation.session_id, venue_id),
                    "incidents": list(s.scalars(select(db.Incident).where(
                        db.Incident.session_id == evaluation.session_id, db.Incident.venue_id == venue_id)
                        .order_by(db.Incident.incident_id))),
                })
        return _render(request, "venue.html.j2", session, venue=venue, bookings=shown, sessions=sessions_view,
                       incident_kinds=("power_failure", "network_failure", "device_failure", "other"))

    @console.post("/venues/{venue_id}/bookings/{booking_id}/{action}", name="venue_booking")
    async def venue_booking(request: Request, venue_id: str, booking_id: str, action: str) -> Response:
        session = _signed_in(request)
        own_venue(session, venue_id)
        await _form(request, session)
        if action not in ("confirm", "decline"):
            raise NotFound(f"a venue confirms or declines a booking; {action[:20]!r} is neither")
        step_api.booking_action(booking_id, action, None, hub, session.caller)  # type: ignore[arg-type]
        return RedirectResponse(request.url_for("venue", venue_id=venue_id), status_code=303)

    @console.post("/venues/{venue_id}/incidents", name="venue_incident")
    async def venue_incident(request: Request, venue_id: str) -> Response:
        session = _signed_in(request)
        own_venue(session, venue_id)
        form = await _form(request, session)
        permit(session.caller, "report_incident")
        body = IncidentIn(venue_id=venue_id, kind=str(form.get("kind", "")),  # type: ignore[arg-type]
                          description=str(form.get("description", "")), started_at=hub.stamp())
        session_api.incident(str(form.get("session_id", "")), body, hub, session.caller)
        return RedirectResponse(request.url_for("venue", venue_id=venue_id), status_code=303)

    @console.post("/venues/{venue_id}/incidents/{incident_id}/resolve", name="venue_resolve")
    async def venue_resolve(request: Request, venue_id: str, incident_id: str) -> Response:
        session = _signed_in(request)
        own_venue(session, venue_id)
        await _form(request, session)
        permit(session.caller, "report_incident")
        step_api.resolve_incident(incident_id, IncidentResolveIn(ended_at=hub.stamp()), hub, session.caller)
        return RedirectResponse(request.url_for("venue", venue_id=venue_id), status_code=303)

    # ----- 信息公开 -----

    @console.get("/public", name="public")
    def public_page(request: Request) -> HTMLResponse:
        with hub.db() as s:
            projects = sorted(hub.projects(s) - {"registry"})
        return _render(request, "public.html.j2", _session(request),
                       projects=[public.disclosure(hub, p) for p in projects])

    @console.get("/public/proof/{leaf_index}", name="public_proof")
    def public_proof(request: Request, leaf_index: int) -> HTMLResponse:
        with hub.db() as s:
            row = s.get(db.EvidenceRow, leaf_index)
        if row is None or leaf_index not in _public_leaves(public.disclosure(hub, row.project_id)):
            raise NotFound(f"leaf {leaf_index} is not among the published items of any project")
        proof = proofs.prove(hub, leaf_index, row.leaf_hash)
        return _render(request, "proof.html.j2", _session(request), row=row, proof=proof, public_view=True)

    return console


def _on(stamp: str, day: date) -> bool:
    try:
        return datetime.fromisoformat(stamp).date() == day
    except ValueError:
        return False


def _of_session(s: Any, model: Any, session_id: str) -> list[Any]:
    key = next(iter(model.__table__.primary_key.columns)).name
    return list(s.scalars(select(model).where(model.session_id == session_id).order_by(getattr(model, key))))


def _public_leaves(disclosure: dict[str, Any]) -> set[int]:
    """Every leaf the public disclosure names: bookings, draws, archives, published misconduct."""
    leaves: set[int] = set()
    for x in disclosure["sessions"]:
        leaves.update(leaf for b in x["bookings"] for leaf in b["leaves"])
        leaves.update(d[k] for d in x["draws"] for k in ("commitment_leaf", "result_leaf") if d.get(k) is not None)
        if x["archive_leaf"] is not None:
            leaves.add(x["archive_leaf"])
    for m in disclosure["misconduct"]:
        if m["published_leaf"] is not None:
            leaves.add(m["published_leaf"])
    return leaves
