"""Serve a hub over real HTTP on a loopback port from a background thread (tests, demos)."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from hub.api import create_app
from hub.service import Hub
from notary.server import free_port


@contextmanager
def serving_hub(hub: Hub, start_jobs: bool = True) -> Iterator[str]:
    """Serve `hub` (and run its schedule) until the block ends; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(create_app(hub, start_jobs), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("hub HTTP server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
