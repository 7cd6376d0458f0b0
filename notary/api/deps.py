"""Dependencies shared by the routers: the notary, who is calling and what they may do, metrics.

The permission matrix (role × action) is `PERMISSIONS`; README.md shows it, and a test walks it over HTTP.
Reading what is not public is itself evidence: `record_access` appends an access record (who, what, when,
why) to the log before the answer is sent, and a read that cannot be recorded is not served.
"""

from collections.abc import Iterator
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from notary import access
from notary.access import PUBLIC, AccessDenied, Caller, Permissions, Role
from notary.log import RecordRejected, Submission
from notary.service import Notary

R = Role
T = TypeVar("T")
PERMISSIONS: dict[str, frozenset[str]] = {
    "read_public": frozenset({PUBLIC, *R}),  # checkpoints, proofs, anchors, the log's keys, health, submitters
    "submit_records": frozenset({R.HUB_OPERATOR, R.DEVICE}),
    "read_records": frozenset({R.HUB_OPERATOR, R.SUPERVISOR, R.COURT, R.NOTARY_ADMIN}),
    "read_extract": frozenset({R.SUPERVISOR, R.COURT, R.NOTARY_ADMIN}),
    "read_disclosures": frozenset({R.COURT, R.NOTARY_ADMIN}),
    "list_principals": frozenset({R.NOTARY_ADMIN, R.NODE_OPERATOR}),
    "manage_principals": frozenset({R.NOTARY_ADMIN}),
    "read_metrics": frozenset({R.NOTARY_ADMIN, R.NODE_OPERATOR}),
}
# The hub mirrors the log of the projects it coordinates continuously; its own users' reads are recorded
# at the hub. Recording its reads here would also feed back: each access record is a new leaf it reads.
UNRECORDED_READERS = frozenset({R.HUB_OPERATOR})
NOT_PROJECT = "log"  # project_id of access records for reads that span the whole log


# Async, though they do no I/O: FastAPI runs a sync dependency on a worker thread, a thread hop per request.
async def get_notary(request: Request) -> Notary:
    notary: Notary = request.app.state.notary
    return notary


async def get_metrics(request: Request) -> "Metrics":
    metrics: Metrics = request.app.state.metrics
    return metrics


# One enforcement for both services (notary.access.Permissions), over this service's matrix.
guard = Permissions(PERMISSIONS)
get_caller = guard.caller  # the authenticated principal, or the public when the request carries no signature
allowed = guard.allowed
require = guard.require


def check_project(caller: Caller, project_id: str) -> None:
    """A court or complainant reads only the projects it was granted."""
    p = caller.principal
    if p is not None and p.role is Role.COURT and project_id not in p.projects:
        raise HTTPException(403, f"{p.describe()} was not granted project {project_id}")


def check_standing(notary: Notary, caller: Caller) -> None:
    """Refuse a caller whose principal was revoked (or bound otherwise) since its request was authenticated."""
    try:
        access.check_standing(notary.principals, caller)
    except AccessDenied as exc:
        raise HTTPException(exc.status, str(exc)) from exc


def release(notary: Notary, caller: Caller, value: T) -> T:
    """What is not public, as it is handed out: only if its reader still stands, checked again at that
    moment, so a read authorised before a revocation does not complete after it."""
    check_standing(notary, caller)
    return value


def record_access(notary: Notary, caller: Caller, action: str, project_id: str, resource: str) -> None:
    """Append the access record of a read of what is not public, before it is served (by a principal that
    still stands: one revoked since its request was authenticated is refused, and nothing is recorded)."""
    check_standing(notary, caller)
    if caller.principal is not None and caller.principal.role in UNRECORDED_READERS:
        return
    payload: dict[str, Any] = {"principal_id": caller.name if not caller.local else "local",
                                  "role": caller.role, "action": action, "resource": resource[:400]}
    if caller.purpose:
        payload["purpose"] = caller.purpose[:200]
    from verifier.times import now_utc

    record = {"type": "access", "project_id": project_id, "session_id": "access", "venue_id": notary.config.org,
              "device_id": notary.recorder_key.principal_id, "occurred_at": now_utc(),
              "payload": payload, "attachments": []}
    key = notary.recorder_key
    try:
        notary.log.submit(Submission(key.principal_id, [record], key.sign_batch([record])))
    except RecordRejected as exc:
        raise HTTPException(exc.status if exc.status < 500 else 503, f"the read cannot be recorded: {exc}") from exc


class Metrics:
    def __init__(self, notary: Notary) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.appended = Counter("bidtrace_records_appended_total", "Records appended to the log", registry=r)
        self.duplicates = Counter("bidtrace_records_duplicate_total", "Resubmitted records", registry=r)
        self.rejected = Counter(
            "bidtrace_submissions_rejected_total", "Refused submissions", ["status"], registry=r
        )
        self.submit_seconds = Histogram(
            "bidtrace_submit_seconds", "Time to check and durably append a batch", registry=r
        )
        r.register(_GroupCommits(notary))
        self.in_flight = 0  # submissions this worker is checking or holding for their commit (notary.api.intake)
        Gauge("bidtrace_submissions_in_flight", "Submissions being checked or awaiting their commit",
              registry=r).set_function(lambda: self.in_flight)
        Gauge("bidtrace_log_size", "Leaves in the log", registry=r).set_function(lambda: notary.log.size)
        Gauge("bidtrace_anchored_size", "Size of the newest anchored checkpoint", registry=r).set_function(
            lambda: notary.status().anchored_size
        )
        Gauge("bidtrace_anchor_failures", "Consecutive failed anchoring attempts", registry=r).set_function(
            lambda: notary.status().failures
        )


class _GroupCommits(Collector):
    """The log's own commit counts: submissions per commit shows how well concurrent ones are grouped."""

    def __init__(self, notary: Notary) -> None:
        self.notary = notary

    def collect(self) -> Iterator[CounterMetricFamily]:
        counts = self.notary.log.commit_counts()
        yield CounterMetricFamily(
            "bidtrace_append_commits", "Durable commits that appended submissions", value=counts.commits
        )
        yield CounterMetricFamily(
            "bidtrace_append_commit_submissions", "Submissions appended by those commits", value=counts.submissions
        )
        yield CounterMetricFamily(
            "bidtrace_append_commits_across_workers", "Commits that held submissions from several worker processes",
            value=counts.across_workers,
        )
