"""Signing in and out of the console (see `hub.web.login` for the design), and the landing page per role."""

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from hub.api.deps import get_caller, get_hub
from hub.web import login
from hub.web.login import COOKIE, LoginRefused
from hub.web.pages import check_origin, current_session, posted_form, render, signed_in
from notary.access import Role

router = APIRouter()
LANDING = {Role.SUPERVISOR: "supervision", Role.HUB_OPERATOR: "supervision", Role.COURT: "verify_form"}


@router.get("/", name="home")
def home(request: Request) -> Response:
    session = current_session(request)
    if session is None:
        hub_url = str(request.base_url).rstrip("/").removesuffix("/console")
        return render(request, "home.html.j2", None, hub_url=hub_url)
    p = session.caller.principal
    assert p is not None
    if p.role is Role.VENUE_OPERATOR:
        return RedirectResponse(request.url_for("venue", venue_id=p.venue_id), status_code=303)
    if p.role in LANDING:
        return RedirectResponse(request.url_for(LANDING[p.role]), status_code=303)
    return render(request, "home.html.j2", session, hub_url="")


@router.post("/login-links", status_code=201)
async def login_link(request: Request) -> JSONResponse:
    """A one-time login link for the principal that signed this request (`bidtrace hub login`)."""
    hub = get_hub(request)
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


@router.get("/login", name="login_page")
def login_page(request: Request, code: str = "") -> HTMLResponse:
    """Who the link would sign in; confirming is a POST, so that a link preview cannot use the code."""
    principal = login.pending_login(get_hub(request), code)
    return render(request, "login.html.j2", current_session(request), pending=principal, code=code)


@router.post("/login")
async def login_post(request: Request) -> Response:
    check_origin(request)
    form = await request.form()
    code = form.get("code")
    token, _ = login.redeem_login(get_hub(request), code if isinstance(code, str) else "")
    response = RedirectResponse(request.url_for("home"), status_code=303)
    response.set_cookie(COOKIE, token, max_age=login.SESSION_SECONDS, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/console")
    return response


@router.post("/logout", name="logout")
async def logout(request: Request) -> Response:
    session = signed_in(request)
    await posted_form(request, session)
    login.end_session(get_hub(request), session)
    response = RedirectResponse(request.url_for("home"), status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response
