"""Application factory: routers per resource, the hub as a dependency, errors as clear 4xx with a message."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from hub.api import principals, public, sessions, steps, venues, verify
from hub.errors import HubError
from hub.service import Hub
from notary.access import Authenticator, DatabaseNonces
from notary.api.guard import BodyGuard


def _where(loc: tuple[object, ...]) -> str:
    return ".".join(str(p) for p in loc)


def create_app(hub: Hub, start_jobs: bool = True) -> FastAPI:
    hub.check_access_configured()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:  # the access configuration's principals, bound once their registry records are in the log
            hub.record_configuration()
        except HubError as exc:
            logging.getLogger("bidtrace.hub").warning(
                "the access configuration's bindings are not yet recorded (retried at their first request): %s",
                exc.message)
        if start_jobs:
            hub.start()
        try:
            yield
        finally:
            if start_jobs:
                hub.stop()

    app = FastAPI(title="bidtrace hub (省协调系统)", version="1", lifespan=lifespan,
                  summary="Bookings, verifiable expert draws, check-ins, signatures, fees, objections, misconduct, "
                          "incidents and the supervision feed; every state change is evidence in the notary's log.")
    app.state.hub = hub
    app.state.authenticator = Authenticator(hub.principals, DatabaseNonces(hub.engine))
    app.state.insecure_local = hub.config.access is None and hub.config.insecure_local
    app.add_middleware(BodyGuard, max_body_bytes=hub.config.max_body_bytes)

    @app.exception_handler(DBAPIError)
    async def storage_refused(_: Request, exc: DBAPIError) -> JSONResponse:
        reason = str(exc.orig).splitlines()[0][:200] if exc.orig is not None else type(exc).__name__
        hub.storage_error = f"the hub's database refused a write: {reason}"
        return JSONResponse({"detail": f"{hub.storage_error}; nothing was changed, retry later"}, status_code=503,
                            headers={"Retry-After": "5"})

    @app.exception_handler(HubError)
    async def hub_error(_: Request, exc: HubError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return JSONResponse({"detail": f"{_where(tuple(first['loc']))}: {first['msg']}{more}"}, status_code=422)

    for router in (venues.router, sessions.router, steps.router, public.router, verify.router, principals.router):
        app.include_router(router)
    from hub.web.app import create_console

    app.mount("/console", create_console(hub, app.state.authenticator))
    return app
