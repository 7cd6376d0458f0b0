"""Serve a hub over real HTTP on a loopback port from a background thread (tests, demos)."""

from collections.abc import Iterator
from contextlib import contextmanager

from hub.api import create_app
from hub.service import Hub
from notary.server import serving_app


@contextmanager
def serving_hub(hub: Hub, start_jobs: bool = True) -> Iterator[str]:
    """Serve `hub` (and run its schedule) until the block ends; yields its base URL."""
    with serving_app(create_app(hub, start_jobs), "hub HTTP server") as url:
        yield url
