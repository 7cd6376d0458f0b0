"""Serve a notary over real HTTP on a loopback port from a background thread (demo, tests, benchmarks)."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from notary.api import create_app
from notary.service import Notary, NotaryConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving_app(app: FastAPI, what: str = "HTTP server") -> Iterator[str]:
    """Serve an ASGI app on a free loopback port from a background thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serving(notary: Notary, start_sealer: bool = True) -> Iterator[str]:
    """Serve `notary` until the block ends; yields its base URL."""
    with serving_app(create_app(notary, start_sealer), "notary HTTP server") as url:
        yield url


@contextmanager
def running_notary(config: NotaryConfig) -> Iterator[tuple[Notary, str]]:
    notary = Notary(config)
    try:
        with serving(notary) as url:
            yield notary, url
    finally:
        notary.close()
