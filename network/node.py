"""Detached node processes with pid files, so that `down` stops exactly what `up` started.

A pid file records the pid and the process's start time (in clock ticks since boot, from /proc); a
process counts as ours only while that pid is alive with that start time, since pids are reused. The
command line is no identity: it is empty for a moment after fork, while the child is still in execve.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Node:
    name: str  # e.g. "peer-province", "orderer-jinan", "chaincode-qingdao"
    run_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            record = json.loads(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        pid = int(record["pid"])
        return pid if _alive(pid) and _start_time(pid) == record.get("started") else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> int:
        existing = self.pid()
        if existing is not None:
            return existing
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        record = {"pid": proc.pid, "started": _start_time(proc.pid), "argv": argv}
        self.pid_file.write_text(json.dumps(record))
        return proc.pid

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL after `timeout`; True if a process of ours was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap if it is our child
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != "Z"


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return []


def _start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    # Field 22 of stat(5), "starttime"; fields[0] here is field 3.
    return int(fields[19]) if len(fields) > 19 else None


def wait_for_port(host: str, port: int, timeout: float, node: Node | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if node is not None and not node.running():
                raise RuntimeError(f"{node.name} exited; last log lines:\n{node.log_tail()}") from None
            time.sleep(0.2)
    where = f"; last log lines of {node.name}:\n{node.log_tail()}" if node else ""
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s{where}")
