"""Fixtures of the device tests: a real notary over HTTP (restartable on the same port and data), real
video files made with OpenCV, registered device keys."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import uvicorn

from notary.api import create_app
from notary.client import NotaryClient, SubmitterKey
from notary.server import free_port
from notary.service import Notary
from tests.conftest import ADMIN, device_bindings, make_config
from verifier.entry import LogEntry, parse_entry


def make_video(path: Path, frames: int, fps: float = 20.0, size: tuple[int, int] = (160, 120),
               codec: str = "MJPG") -> Path:
    """A synthetic video: a moving circle and square, and the frame number written on every frame."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*codec), fps, size)
    assert writer.isOpened(), f"cannot write {codec} to {path}"
    for i in range(frames):
        frame = np.full((height, width, 3), 40, np.uint8)
        x = int((i * 7) % width)
        cv2.circle(frame, (x, height // 3), 12, (0, 200, 255), -1)
        cv2.rectangle(frame, (width - x - 20, 2 * height // 3 - 10), (width - x, 2 * height // 3 + 10),
                      (255, 80, 0), -1)
        cv2.putText(frame, f"{i:05d}", (5, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
        writer.write(frame)
    writer.release()
    return path


class LiveNotary:
    """A notary served over HTTP on a fixed loopback port; it can be stopped and started again on the
    same data and port (the agents' view of a network cut)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.notary: Notary | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        assert self._server is None
        self.notary = Notary(make_config(self.data_dir))
        config = uvicorn.Config(create_app(self.notary), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("notary HTTP server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(timeout=15)
            assert not self._thread.is_alive(), "notary server did not stop"
            self._server = None
        if self.notary is not None:
            self.notary.close()
            self.notary = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def register(self, key: SubmitterKey, role: str = "device") -> None:
        client = NotaryClient(self.url, as_principal=ADMIN)
        try:
            client.register(key, role, *(device_bindings(key.principal_id) if role == "device" else ()))
        finally:
            client.close()

    def size(self) -> int:
        assert self.notary is not None
        return self.notary.log.size

    def entries(self) -> list[LogEntry]:
        """The evidence in the log: without the notary's own registry and access records."""
        assert self.notary is not None
        out: list[LogEntry] = []
        after = -1
        for _ in range(10_000):
            rows = self.notary.log.entries(after=after, limit=1000)
            if not rows:
                break
            out.extend(e for e in (parse_entry(data) for _, data in rows)
                       if e.record["type"] not in ("registry", "access"))
            after = rows[-1][0]
        return out


@pytest.fixture
def live_notary(tmp_path: Path) -> Iterator[LiveNotary]:
    n = LiveNotary(tmp_path / "notary")
    n.start()
    try:
        yield n
    finally:
        n.stop()


@contextmanager
def notary_down(n: LiveNotary) -> Iterator[None]:
    n.stop()
    try:
        yield
    finally:
        n.start()


def segments_of(entries: list[LogEntry], camera: str) -> list[LogEntry]:
    return [e for e in entries
            if e.record["type"] == "recording_segment" and e.record["payload"]["camera_id"] == camera]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
