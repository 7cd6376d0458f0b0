"""Serve a notary over real HTTP on a loopback port from a background thread (demo, tests, benchmarks)."""

import errno
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from notary.api import create_app
from notary.service import Notary, NotaryConfig


class PortInUse(Exception):
    """The address a server was asked to listen on is taken; said before any "listening" banner."""


def listen(host: str, port: int, *, shared: bool = False) -> socket.socket:
    """A listening TCP socket on (host, port), or PortInUse naming both.

    `shared` sets SO_REUSEPORT for the workers of one notary, which listen on one port together. The socket is
    IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without it a kept-alive
    connection waits 40 ms on delayed ACKs per answer.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"{host}:{port} is already in use by another program; stop it or choose --port") from exc
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def check_port_free(host: str, port: int) -> None:
    """PortInUse unless (host, port) is free now: before workers that will share it are started."""
    listen(host, port).close()


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
