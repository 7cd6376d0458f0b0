"""Health and Prometheus metrics."""

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from notary.access import Caller
from notary.api.deps import Metrics, get_metrics, get_notary, require
from notary.api.models import Health
from notary.service import Notary

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(notary: Notary = Depends(get_notary)) -> JSONResponse:
    """ok; degraded while anchoring fails (records are still accepted) or after the database refused a
    write (until an append succeeds again); alarm if the log disagrees with the ledger (503)."""
    state = notary.status()
    last_error = notary.storage_error or state.last_error
    status = "alarm" if state.alarm else "degraded" if last_error else "ok"
    health = Health(
        status=status, size=notary.log.size, anchored_size=state.anchored_size,
        anchor_lag=notary.log.size - state.anchored_size, last_error=last_error, alarm=state.alarm,
    )
    return JSONResponse(health.model_dump(), status_code=503 if state.alarm else 200)


@router.get("/metrics", response_class=Response)
def metrics(m: Metrics = Depends(get_metrics), _: Caller = Depends(require("read_metrics"))) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
