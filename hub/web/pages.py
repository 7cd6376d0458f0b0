"""What every console page shares: the signed-in caller, the language, rendering, posted forms (CSRF) and
server-sent event streams."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from hub.api.deps import get_hub
from hub.errors import Forbidden
from hub.web import i18n, login
from hub.web.login import COOKIE, ConsoleSession
from verifier.report import LANGUAGES

HERE = Path(__file__).resolve().parent
STREAM_SECONDS = 600.0  # a stream ends after this; the browser's EventSource reconnects where it left off
POLL_SECONDS = 0.5

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


class NotSignedIn(Exception):
    """A console page asked for without a live session."""


def language(request: Request) -> str:
    return i18n.pick(request.query_params.get("lang") or request.cookies.get("lang"))


def current_session(request: Request) -> ConsoleSession | None:
    return login.session_of(get_hub(request), request.cookies.get(COOKIE))


def signed_in(request: Request) -> ConsoleSession:
    session = current_session(request)
    if session is None:
        raise NotSignedIn()
    return session


def _words(lang: str) -> dict[str, Any]:
    return {"lang": lang, "w": i18n.words(lang), "alarm_names": i18n.alarm_names(lang),
            "type_names": i18n.type_names(lang), "st": i18n.status_names(lang)}


def render(request: Request, template: str, session: ConsoleSession | None, status: int = 200,
           **context: Any) -> HTMLResponse:
    lang = language(request)
    principal = session.caller.principal if session is not None else None
    html = _ENV.get_template(template).render(
        **_words(lang), session=session, principal=principal,
        role=str(principal.role) if principal else "public",
        venue_of_caller=principal.venue_id if principal else None, path=request.url.path,
        statistics_url=request.app.state.statistics_url, **context)
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="strict", httponly=True)
    return response


def fragment(template: str, lang: str, **context: Any) -> str:
    """A piece of a page (a table's rows) for a live update, rendered as the page renders it."""
    return _ENV.get_template(template).render(**_words(lang), **context)


def check_origin(request: Request) -> None:
    """A form whose browser names its origin must come from this console."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden(f"a form of this console must be posted from it, not from {origin[:80]}")


async def posted_form(request: Request, session: ConsoleSession) -> FormData:
    """The posted form, refused unless it comes from here and carries this session's CSRF token."""
    check_origin(request)
    form = await request.form()
    if not login.csrf_holds(session, form.get("csrf")):
        raise Forbidden("the form's CSRF token is missing or not this session's; reload the page and try again")
    return form


def sse_event(event: str, data: str, event_id: str | None = None) -> bytes:
    lines = [f"event: {event}"] + ([f"id: {event_id}"] if event_id is not None else [])
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return ("\n".join(lines) + "\n\n").encode()


async def event_stream(request: Request, step: Callable[[], Awaitable[list[bytes]]],
                       interval: float = POLL_SECONDS) -> AsyncIterator[bytes]:
    """Events from `step` until the browser goes away or the stream's time is up (it then reconnects)."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + STREAM_SECONDS
    yield b"retry: 2000\n\n"
    while loop.time() < ends and not await request.is_disconnected():
        for event in await step():
            yield event
        await asyncio.sleep(interval)
