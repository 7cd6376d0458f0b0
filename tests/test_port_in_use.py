"""A port already in use is said before any "listening" banner, by the notary (one worker or several) and the hub."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from notary.server import free_port


@pytest.mark.parametrize("command", [
    ["notary", "serve", "--insecure-local"],
    ["notary", "serve", "--insecure-local", "--workers", "2"],
    ["hub", "serve", "--insecure-local"],
], ids=["notary", "notary-workers", "hub"])
def test_port_in_use_is_refused_before_the_banner(tmp_path: Path, command: list[str]) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        done = subprocess.run(
            [sys.executable, "-m", "bidtrace", *command, "--data", str(tmp_path / "data"), "--port", str(port)],
            capture_output=True, text=True, timeout=120,
        )
    assert done.returncode == 2, done.stderr
    assert f"127.0.0.1:{port} is already in use" in done.stderr
    assert "on http://" not in done.stdout


def test_a_free_port_is_served(tmp_path: Path) -> None:
    """The same command on a free port prints its banner and answers (the refusal above is about the port)."""
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bidtrace", "hub", "serve", "--insecure-local", "--data", str(tmp_path / "data"),
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert f"on http://127.0.0.1:{port}" in banner
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        else:
            pytest.fail("hub did not answer after its banner")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
