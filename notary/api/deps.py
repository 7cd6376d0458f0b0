"""Dependencies shared by the routers: the notary, admin authentication, metrics."""

import hmac
from collections.abc import Iterator

from fastapi import Header, HTTPException, Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from notary.service import Notary


# Async, though they do no I/O: FastAPI runs a sync dependency on a worker thread, a thread hop per request.
async def get_notary(request: Request) -> Notary:
    notary: Notary = request.app.state.notary
    return notary


async def get_metrics(request: Request) -> "Metrics":
    metrics: Metrics = request.app.state.metrics
    return metrics


def require_admin(request: Request, authorization: str = Header(default="")) -> None:
    token = request.app.state.notary.admin_token
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "this operation needs the notary's admin token (Authorization: Bearer …)")


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
        counts = self.notary.log.commits
        yield CounterMetricFamily(
            "bidtrace_append_commits", "Durable commits that appended submissions", value=counts.commits
        )
        yield CounterMetricFamily(
            "bidtrace_append_commit_submissions", "Submissions appended by those commits", value=counts.submissions
        )
