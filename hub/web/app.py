"""The consoles, served by the hub under /console: supervisors', venues', the court's upload, and the
public page (信息公开). Server-rendered (Jinja2, autoescaped) with a little plain JavaScript for live
updates (server-sent events); everything is served from the package.

The console is not a second way in: every page and form calls the same permission checks (`permit`,
`check_session`, `require_venue`) and the same workflow and API functions as the signed API, with the
caller taken from the server-side session (see `hub.web.login`). Reads that the API records are recorded
here too, with the purpose "web console".
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from hub.errors import HubError
from hub.service import Hub
from hub.web import disclosure, signin, statistics, supervision, venues
from hub.web.login import LoginRefused
from hub.web.pages import HERE, NotSignedIn, current_session, render

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")


def create_console(hub: Hub, authenticator: Any) -> FastAPI:
    console = FastAPI(title="bidtrace console", docs_url=None, redoc_url=None, openapi_url=None)
    console.state.hub = hub
    console.state.authenticator = authenticator  # the API's: a login link is asked for with a signed request
    console.state.statistics_url = "/console/statistics"  # the supervisors' navigation links it
    console.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in (signin.router, supervision.router, statistics.router, venues.router, disclosure.router):
        console.include_router(router)

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
        return render(request, "error.html.j2", current_session(request), status, message=message, code=status)

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

    return console
