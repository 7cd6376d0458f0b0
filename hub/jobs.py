"""The hub's schedule (APScheduler): tail the notary log and fan out, deliver webhooks, check deadlines,
commit and run scheduled draws (专家预约抽取) when they are due, and check that the notary kept the promise of
every receipt the hub holds."""

import logging
from typing import Any

import httpx
from apscheduler.schedulers.background import BackgroundScheduler

from hub.errors import HubError
from hub.service import Hub

log = logging.getLogger("bidtrace.hub.jobs")


def _guard(name: str, job: Any) -> Any:
    def run() -> None:
        try:
            job()
        except HubError as exc:
            log.warning("%s: %s", name, exc.message)
        except Exception:  # a job must survive anything and try again at its next run
            log.exception("%s failed", name)
    return run


class Jobs:
    def __init__(self, scheduler: BackgroundScheduler, client: httpx.Client) -> None:
        self.scheduler, self.client = scheduler, client

    def shutdown(self, wait: bool = True) -> None:
        self.scheduler.shutdown(wait=wait)
        self.client.close()


def start_scheduler(hub: Hub) -> Jobs:
    from hub.workflows import cases, draws, feed, inclusion

    client = httpx.Client(timeout=hub.config.webhook_timeout, follow_redirects=False)
    scheduler = BackgroundScheduler(daemon=True, job_defaults={"coalesce": True, "max_instances": 1,
                                                               "misfire_grace_time": 30})
    scheduler.add_job(_guard("tail", lambda: feed.tail(hub)), "interval", seconds=hub.config.tail_interval,
                      id="tail")
    scheduler.add_job(_guard("deliver", lambda: feed.deliver(hub, client)), "interval",
                      seconds=hub.config.deliver_interval, id="deliver")
    scheduler.add_job(_guard("deadlines", lambda: cases.check_deadlines(hub)), "interval",
                      seconds=hub.config.deadline_interval, id="deadlines")
    scheduler.add_job(_guard("scheduled draws", lambda: draws.run_scheduled(hub)), "interval",
                      seconds=hub.config.schedule_interval, id="scheduled draws")
    scheduler.add_job(_guard("inclusion", lambda: inclusion.confirm_receipts(hub)), "interval",
                      seconds=hub.config.inclusion_interval, id="inclusion")
    scheduler.start()
    return Jobs(scheduler, client)
