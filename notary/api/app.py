"""Application factory: routers per resource, the notary as a dependency, errors as clear 4xx."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from notary.access import Authenticator, DatabaseNonces
from notary.api import admin, ops, proofs, records
from notary.api.deps import Metrics
from notary.api.guard import BodyGuard
from notary.api.intake import Intake
from notary.log import RecordRejected
from notary.service import Notary


def create_app(notary: Notary, start_sealer: bool = True) -> FastAPI:
    notary.check_access_configured()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start_sealer:
            notary.start()
        try:
            yield
        finally:
            if start_sealer:
                notary.sealer.stop()

    app = FastAPI(
        title="bidtrace notary",
        version="1",
        summary="Tamper-evident evidence log for remote bid evaluation, anchored on a ledger.",
        lifespan=lifespan,
    )
    app.state.notary = notary
    app.state.metrics = Metrics(notary)
    # Nonces live in the database so that a replay to another worker process is caught too.
    app.state.authenticator = Authenticator(notary.principals, DatabaseNonces(notary.engine))
    app.state.insecure_local = notary.config.access is None and notary.config.insecure_local
    # Added first, so inside BodyGuard: it takes the body BodyGuard has read, limited and parsed.
    app.add_middleware(Intake, max_in_flight=notary.config.max_in_flight)
    app.add_middleware(BodyGuard, max_body_bytes=notary.config.max_body_bytes)

    @app.exception_handler(DBAPIError)
    async def storage_refused(_: Request, exc: DBAPIError) -> JSONResponse:
        # The database refused (read-only, disk full, unreachable): nothing was acknowledged, so the caller
        # may retry the same signed submission; /healthz reports it until an append succeeds again.
        reason = str(exc.orig).splitlines()[0][:200] if exc.orig is not None else type(exc).__name__
        notary.storage_error = f"the evidence database refused a write: {reason}"
        app.state.metrics.rejected.labels(status="503").inc()
        return JSONResponse({"detail": f"{notary.storage_error}; nothing was appended, retry later"},
                            status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer repeats each invalid input whole: a key, personal data or a megabyte of the
        # caller's text would come back in the 422 (and in any log of it). Name the place and the rule only.
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        where = ".".join(str(p) for p in first["loc"])
        return JSONResponse({"detail": f"{where}: {first['msg']}{more}"}, status_code=422)

    @app.exception_handler(RecordRejected)
    async def rejected(_: Request, exc: RecordRejected) -> JSONResponse:
        if exc.status == 503:  # the group's commit was refused by the database: /healthz says so until one succeeds
            notary.storage_error = str(exc)
        app.state.metrics.rejected.labels(status=str(exc.status)).inc()
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    for router in (records.router, proofs.router, admin.router, ops.router):
        app.include_router(router)
    return app
