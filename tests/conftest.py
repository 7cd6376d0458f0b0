"""Shared fixtures: real databases (SQLite files and a PostgreSQL server), notaries, participants."""

import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from notary.access import Role, write_access_config
from notary.client import SubmitterKey
from notary.server import free_port
from notary.service import Notary, NotaryConfig

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _pg_tool(name: str) -> str:
    for d in PG_BIN_DIRS:
        if (d / name).exists():
            return str(d / name)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"PostgreSQL's {name} is not installed; run .ci/run or set BIDTRACE_TEST_POSTGRES_URL")
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for the session: BIDTRACE_TEST_POSTGRES_URL, or a throwaway cluster started here."""
    url = os.environ.get("BIDTRACE_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    base = Path(tempfile.mkdtemp(prefix="bidtrace-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    subprocess.run(_as_postgres([initdb, "-D", str(data), "-A", "trust", "-U", "bidtrace"]), check=True,
                   capture_output=True)
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                      f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=on", "start"]),
        check=True, capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://bidtrace@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL server."""
    import sqlalchemy

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    base, _, _ = postgres_server.rpartition("/")
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'notary.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


ADMIN = SubmitterKey.generate("notary-admin-1")
# Leaves a notary of `make_config` starts with: the registry record of ADMIN's binding from its access file.
CONFIGURED = 1


def make_config(data_dir: Path, database_url: str | None = None, **kw: Any) -> NotaryConfig:
    """A notary configuration whose access configuration names one notary administrator, `ADMIN`."""
    access = data_dir.parent / f"{data_dir.name}-access.json"
    if not access.exists():
        write_access_config(access, [ADMIN.principal(Role.NOTARY_ADMIN)])
    return NotaryConfig(data_dir=data_dir, database_url=database_url, access=access, **kw)


def admin_access(folder: Path) -> Path:
    """An access configuration naming `ADMIN` only, for a notary started from the command line."""
    path = folder / "access.json"
    write_access_config(path, [ADMIN.principal(Role.NOTARY_ADMIN)])
    return path


def device_bindings(device_id: str) -> tuple[str, str]:
    """Venue and function of a test device, from its id: `<venue>.<cam1|checkin|pad>`."""
    venue, _, name = device_id.partition(".")
    return venue, "checkin" if name.startswith("checkin") else "signing_pad" if name.startswith("pad") else "recorder"


@pytest.fixture
def notary(tmp_path: Path, database_url: str) -> Iterator[Notary]:
    n = Notary(make_config(tmp_path / "notary", database_url))
    yield n
    n.close()


@pytest.fixture
def sqlite_notary(tmp_path: Path) -> Iterator[Notary]:
    n = Notary(make_config(tmp_path / "notary"))
    yield n
    n.close()


class Participants:
    """A hub and two devices, registered with a notary."""

    def __init__(self, notary: Notary) -> None:
        self.hub = SubmitterKey.generate("hub-1")
        self.camera = SubmitterKey.generate("V-1.cam1")
        self.station = SubmitterKey.generate("V-1.checkin", "ed25519")
        for principal in (self.hub.principal(Role.HUB_OPERATOR), self.camera.principal(Role.DEVICE, "V-1", "recorder"),
                          self.station.principal(Role.DEVICE, "V-1", "checkin")):
            notary.principals.bind(principal)
            notary.register_submitter_of(principal)
        self.keys = {k.principal_id: k for k in (self.hub, self.camera, self.station)}


def segment(n: int, device: str = "V-1.cam1", project: str = "P-1", previous: str | None = None) -> dict[str, Any]:
    digest = f"{n:064x}"
    return {
        "type": "recording_segment", "project_id": project, "session_id": "S-1", "venue_id": "V-1",
        "device_id": device, "occurred_at": f"2026-11-26T10:{n // 60 % 60:02d}:{n % 60:02d}+08:00",
        "payload": {"camera_id": "cam1", "segment_index": n, "start": "2026-11-26T10:00:00+08:00",
                    "end": "2026-11-26T10:00:10+08:00", "frame_count": 250, "sha256": digest,
                    "previous_segment": previous},
    }


START = datetime(2026, 11, 26, 10, 0, tzinfo=timezone(timedelta(hours=8)))


def recording(first: int, count: int, previous: str | None = None) -> list[dict[str, Any]]:
    """Segments first..first+count-1 of one camera, hash-chained, each ten seconds long."""
    segments = []
    for i in range(first, first + count):
        seg = segment(i, previous=previous)
        seg["payload"]["start"] = (START + timedelta(seconds=10 * i)).isoformat()
        seg["payload"]["end"] = (START + timedelta(seconds=10 * (i + 1))).isoformat()
        previous = seg["payload"]["sha256"]
        segments.append(seg)
    return segments


def incident(n: int, project: str = "P-1", device: str = "hub-1") -> dict[str, Any]:
    return {
        "type": "incident", "project_id": project, "session_id": "S-1", "venue_id": "V-1", "device_id": device,
        "occurred_at": "2026-11-26T10:00:00+08:00",
        "payload": {"incident_id": f"I-{n}", "kind": "network_failure", "description": f"link down #{n}",
                    "started_at": "2026-11-26T10:00:00+08:00"},
    }


def entry_of(notary: Notary, seq: int) -> bytes:
    data = notary.log.entry(seq)
    assert data is not None, f"leaf {seq} is not in the log"
    return data


def run_concurrently(client: Callable[[int], None], count: int, timeout: float = 300) -> None:
    """Run `client(0)` … `client(count - 1)`, each in a thread of its own, and wait for all of them."""
    threads = [threading.Thread(target=client, args=(c,)) for c in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)


def wait_until(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def send_signed(case: Any, base_url: str, key: SubmitterKey | Any) -> Any:
    """Send a schemathesis case as an RFC 9421 signed request of `key` (what a registered principal sends)."""
    import httpx

    from notary.access import SignedRequests

    kw = case.as_transport_kwargs(base_url=base_url)
    headers = {k: v for k, v in kw["headers"].items() if k.lower() not in ("connection", "accept-encoding")}
    body: dict[str, Any] = {"json": kw["json"]} if "json" in kw else {"content": kw["data"]} if "data" in kw else {}
    return httpx.request(kw["method"], kw["url"], params=kw.get("params"), headers=headers,
                         auth=SignedRequests(key), timeout=30, **body)
