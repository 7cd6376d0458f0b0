"""`POST /v1/records` served in front of the framework: the per-request path of ingestion, kept short.

A well-formed submission (a JSON body that `BodyGuard` already parsed and that validates as `SubmissionIn`)
is authenticated by the route's own dependency, `require("submit_records")`, answered by the route's own
`accept_submission`, and refused through the application's own exception handlers, so the answers are the
route's; what the framework adds per request (routing, dependency solving, response classes) is skipped.
Anything else (another route, a malformed or invalid body, another media type) goes to the framework
untouched, which answers it as it always has, after authenticating as it always does.

Admission control: at most `max_in_flight` submissions of this worker are checked or wait for their
commit at once; beyond that the answer is 503 with Retry-After, before any work, so latency stays bounded
under any number of clients and nothing of a refused request is appended.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from notary.api.deps import Metrics, require
from notary.api.guard import PARSED_BODY
from notary.api.models import SubmissionIn
from notary.api.records import accept_submission

ROUTE = "/v1/records"
RETRY_AFTER = 1  # seconds: about what a worker takes to commit the submissions it has in flight
_JSON = [(b"content-type", b"application/json")]


def _json_media(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the framework would parse this body as JSON and nothing else: Content-Type application/json."""
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/json"
    return False


class Intake:
    """ASGI middleware of the notary's application (see the module's docstring)."""

    def __init__(self, app: ASGIApp, max_in_flight: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self._caller = require("submit_records")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["path"] != ROUTE or scope["method"] != "POST"
                or PARSED_BODY not in scope or not _json_media(scope["headers"])):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        metrics: Metrics = state.metrics
        if metrics.in_flight >= self.max_in_flight:
            metrics.rejected.labels(status="503").inc()
            busy = JSONResponse({"detail": f"this notary worker has {metrics.in_flight} submissions in flight, the "
                                           f"most it takes; nothing was appended: send the same request again "
                                           f"in {RETRY_AFTER} s"}, 503, {"Retry-After": str(RETRY_AFTER)})
            await busy(scope, receive, send)
            return
        try:
            body = SubmissionIn.model_validate(scope[PARSED_BODY])
        except ValidationError:
            await self.app(scope, receive, send)  # the framework names what is wrong, as it always has
            return
        metrics.in_flight += 1
        try:
            request = Request(scope, receive)
            try:
                caller = await self._caller(request)
                content = await accept_submission(body, state.notary, metrics, caller)
            except Exception as exc:
                handler = _handler(scope["app"].exception_handlers, exc)
                if handler is None:
                    raise
                await (await handler(request, exc))(scope, receive, send)
                return
            await send({"type": "http.response.start", "status": 200,
                        "headers": [*_JSON, (b"content-length", str(len(content)).encode())]})
            await send({"type": "http.response.body", "body": content})
        finally:
            metrics.in_flight -= 1


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _handler(handlers: dict[Any, Handler], exc: Exception) -> Handler | None:
    """The application's handler of `exc`, looked up as Starlette does: by the exception's classes in order."""
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None

