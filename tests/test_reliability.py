"""What must hold when things break: kill -9 of the notary, an unavailable ledger, a tampered database."""

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from notary.audit import audit_log
from notary.client import NotaryClient, NotaryError, SubmitterKey
from notary.log import Submission
from notary.server import free_port, serving
from notary.service import Notary
from tests.conftest import (
    ADMIN,
    CONFIGURED,
    Participants,
    admin_access,
    entry_of,
    incident,
    make_config,
    segment,
    wait_until,
)
from verifier.canonical import canonical_bytes
from verifier.entry import parse_entry
from verifier.heads import ordered


def _start_server(data: Path, port: int, database_url: str, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BIDTRACE_ACCESS": str(admin_access(data.parent))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bidtrace", "notary", "serve", "--data", str(data), "--port", str(port),
         "--seal-interval", "0.2", "--database-url", database_url, "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if workers > 1 else subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"notary exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code in (200, 503):
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("notary did not start within 60s")


class _Camera:
    """One concurrent submitter: its batch in flight survives a kill and is resent to the next server."""

    def __init__(self, n: int, rng: random.Random) -> None:
        self.key = SubmitterKey.generate(f"V-1.cam{n}")
        self.first = 100_000 * n
        self.counter = 0
        self.rng = rng
        self.pending: list[dict[str, Any]] | None = None
        self.acked: dict[int, dict[str, Any]] = {}  # leaf index -> record

    def run(self, client: NotaryClient, stop: threading.Event) -> None:
        while not stop.is_set():
            if self.pending is None:
                size = self.rng.choice([1, 1, 1, 1, 5, 50])
                self.pending = [segment(self.first + self.counter + i, device=self.key.submitter_id)
                                for i in range(size)]
                self.counter += size
            try:
                receipts = client.submit(self.key, self.pending)
            except (httpx.HTTPError, NotaryError):
                return
            for record, receipt in zip(self.pending, receipts, strict=True):
                self.acked[receipt.leaf_index] = record
            self.pending = None


def _processes(parent: int) -> list[int]:
    """The live processes whose parent is `parent` (a notary's workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _listening(port: int) -> int:
    """How many sockets listen on 127.0.0.1:`port` (each worker has its own, SO_REUSEPORT)."""
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return sum(1 for row in rows if row[1] == f"0100007F:{port:04X}" and row[3] == "0A")


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.slow
def test_acknowledged_records_survive_kill_9(tmp_path: Path, database_url: str) -> None:
    """kill -9 at random moments while many clients' submissions are being group-committed, 20 times."""
    data, port = tmp_path / "notary", free_port()

    def kill(proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return _start_server(data, port, database_url)

    _survives_kills(data, port, database_url, 1, kill)


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["sequencer", "worker"])
def test_acknowledged_records_survive_kill_9_with_two_workers(tmp_path: Path, database_url: str, victim: str) -> None:
    """The same with `--workers 2`: kill -9 the supervising process (which runs the sequencer: its workers
    answer 503 and stop, and the notary is started again), or one worker (its supervisor starts another)."""
    data, port = tmp_path / "notary", free_port()

    def kill(proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        workers = _processes(proc.pid)
        assert workers, "the notary has no worker processes"
        if victim == "worker":
            os.kill(random.Random(len(workers)).choice(workers), signal.SIGKILL)
            wait_until(lambda: _listening(port) == 2, 60, "the supervisor to start another worker")
            return proc
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        wait_until(lambda: all(_gone(pid) for pid in workers), 60, "the workers to stop without their sequencer")
        return _start_server(data, port, database_url, workers=2)

    _survives_kills(data, port, database_url, 2, kill)


def _survives_kills(data: Path, port: int, database_url: str, workers: int,
                    kill: Callable[[subprocess.Popen[bytes]], subprocess.Popen[bytes]]) -> None:
    rng = random.Random(9)
    cameras = [_Camera(n, random.Random(n)) for n in range(12)]
    proc = _start_server(data, port, database_url, workers)
    url = f"http://127.0.0.1:{port}"
    admin = NotaryClient(url, as_principal=ADMIN, timeout=5)
    try:
        for camera in cameras:
            admin.register(camera.key, "device", "V-1", "recorder")
        for _ in range(20):
            stop = threading.Event()
            clients = [NotaryClient(url, timeout=5) for _ in cameras]
            threads = [threading.Thread(target=c.run, args=(client, stop))
                       for c, client in zip(cameras, clients, strict=True)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.05, 0.6))
            proc = kill(proc)
            stop.set()
            for t in threads:
                t.join(timeout=30)
            for client in clients:
                client.close()
        # The batches in flight at the last kill are resent: each appends once, or returns its receipts.
        for camera in cameras:
            if camera.pending is not None:
                for record, receipt in zip(camera.pending, admin.submit(camera.key, camera.pending), strict=True):
                    camera.acked[receipt.leaf_index] = record
        wait_until(lambda: admin.get("/healthz")["anchor_lag"] == 0, 60, "the backlog to be anchored")
        health = admin.get("/healthz")
    finally:
        with contextlib.suppress(ProcessLookupError):  # the current server, or the orphans of a killed one
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        admin.close()
    acked = {leaf: record for camera in cameras for leaf, record in camera.acked.items()}
    assert len(acked) == sum(len(c.acked) for c in cameras), "two acknowledgements named one leaf"
    assert len(acked) > 200
    notary = Notary(make_config(data, database_url))
    try:
        assert notary.log.size == health["size"] == health["anchored_size"]
        for leaf, record in acked.items():  # present, at the index its receipt named
            assert canonical_bytes(parse_entry(entry_of(notary, leaf)).record) == canonical_bytes(record)
        for camera in cameras:  # each camera's records in the order they were acknowledged
            indexes = [camera.acked[leaf]["payload"]["segment_index"] for leaf in sorted(camera.acked)]
            assert indexes == sorted(indexes)
        assert audit_log(notary.log, notary.ledger) == []
    finally:
        notary.close()


def test_submissions_keep_succeeding_while_the_ledger_is_down(sqlite_notary: Notary) -> None:
    notary = sqlite_notary
    notary.sealer.interval = 0.1
    people = Participants(notary)
    with serving(notary) as url:
        client = NotaryClient(url, as_principal=people.hub)
        client.submit(people.hub, [incident(0)])
        wait_until(lambda: notary.sealer.state.anchored_size == CONFIGURED + 1, 10, "first anchor")
        blocker = sqlite3.connect(notary.config.data_dir / "ledger" / "ledger.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the ledger: writes time out
        try:
            for i in range(1, 60):
                client.submit(people.hub, [incident(i)])
                time.sleep(0.02)
            wait_until(lambda: notary.sealer.state.failures >= 1, 20, "an anchoring failure")
            health = client.get("/healthz")
            assert health["status"] == "degraded" and health["anchored_size"] == CONFIGURED + 1
            assert "database is locked" in health["last_error"]
            assert notary.log.size == CONFIGURED + 60
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        wait_until(lambda: notary.sealer.state.anchored_size == CONFIGURED + 60, 60, "the backlog to be anchored")
        assert client.get("/healthz")["status"] == "ok"
        bundle = client.get("/v1/proof/bundle/42")
        assert bundle["anchor"]["size"] == CONFIGURED + 60
        client.close()


def _filled(notary: Notary, n: int = 40) -> Participants:
    people = Participants(notary)
    for start in range(0, n, 10):
        batch = [incident(i) for i in range(start, start + 10)]
        notary.log.submit(Submission("hub-1", batch, people.hub.sign_batch(batch)))
        notary.sealer.seal()
    assert audit_log(notary.log, notary.ledger) == []
    return people


def _sql(notary: Notary, statement: str, **params: Any) -> None:
    with notary.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_changed_row_is_detected(notary: Notary) -> None:
    _filled(notary)
    leaf = CONFIGURED + 7  # incident 7
    entry = entry_of(notary, leaf).replace(b"link down #7", b"link down #8")
    _sql(notary, f"UPDATE leaves SET entry = :e WHERE seq = {leaf}", e=entry)
    problems = audit_log(notary.log, notary.ledger)
    assert any(f"leaf {leaf}: stored leaf hash is not the hash of its entry" in p for p in problems)


def test_changed_row_with_recomputed_hash_is_detected(notary: Notary) -> None:
    _filled(notary)
    from verifier.merkle import leaf_hash
    leaf = CONFIGURED + 7  # incident 7
    entry = entry_of(notary, leaf).replace(b"link down #7", b"link down #8")
    _sql(notary, f"UPDATE leaves SET entry = :e, leaf_hash = :h WHERE seq = {leaf}", e=entry, h=leaf_hash(entry))
    problems = audit_log(notary.log, notary.ledger)
    assert any(f"leaf {leaf}: signature by hub-1 does not verify" in p for p in problems)
    assert any(f"tree node (1, {leaf // 2})" in p for p in problems)
    assert any("differs from the ledger's anchor" in p for p in problems)


def test_deleted_row_is_detected(notary: Notary) -> None:
    _filled(notary)
    _sql(notary, "DELETE FROM leaves WHERE seq = 12")
    problems = audit_log(notary.log, notary.ledger)
    assert any("leaves 12..12 are missing" in p for p in problems)


def test_swapped_rows_are_detected(notary: Notary) -> None:
    _filled(notary)
    a, b = entry_of(notary, 3), entry_of(notary, 4)
    _sql(notary, "UPDATE leaves SET entry = :e WHERE seq = 3", e=b)
    _sql(notary, "UPDATE leaves SET entry = :e WHERE seq = 4", e=a)
    problems = audit_log(notary.log, notary.ledger)
    assert any("leaf 3: its entry says it is leaf 4" in p for p in problems)


def test_inserted_row_is_detected(notary: Notary) -> None:
    _filled(notary)
    last = CONFIGURED + 39  # incident 39
    forged = entry_of(notary, last).replace(f'"leaf_index":{last}'.encode(),
                                            f'"leaf_index":{last + 1}'.encode()).replace(b"#39", b"#40")
    from verifier.merkle import leaf_hash
    _sql(notary, "INSERT INTO leaves (seq, record_hash, leaf_hash, entry, project_id, project_seq, batch_start, "
         f"batch_size) VALUES ({last + 1}, :r, :h, :e, 'P-1', 40, {last + 1}, 1)", r=b"\x01" * 32,
         h=leaf_hash(forged), e=forged)
    problems = audit_log(notary.log, notary.ledger)
    assert any(f"leaf {last + 1}" in p and "signature" in p for p in problems)


def test_changed_project_head_is_detected(notary: Notary) -> None:
    # The heads table is what checkpoints commit to: a head restated to hide a project's last record, or a
    # head for a project without leaves, must not pass the audit.
    _filled(notary)
    _sql(notary, "UPDATE project_heads SET records = records - 1, last_leaf = last_leaf - 1 WHERE project_id = 'P-1'")
    _sql(notary, "INSERT INTO project_heads (project_id, records, last_leaf) VALUES ('P-9', 1, 3)")
    problems = audit_log(notary.log, notary.ledger)
    assert any(p.startswith("project P-1: stored head says 39 records") and "give 40 records" in p for p in problems)
    assert any(p.startswith("project P-9: stored head says 1 records, last leaf 3") for p in problems), problems


def test_project_heads_kept_by_appends_are_the_ones_the_leaves_give(notary: Notary) -> None:
    _filled(notary)
    size, stored = notary.log.stored_heads()
    assert ordered(stored) == ordered(notary.log.project_heads(size))
    assert {h.project_id for h in stored} >= {"P-1"}


def test_a_log_without_kept_project_heads_counts_them_when_opened(notary: Notary) -> None:
    # A log written before the appends kept its project heads.
    _filled(notary)
    _sql(notary, "DELETE FROM project_heads")
    assert notary.log.stored_heads()[1] == []
    reopened = Notary(notary.config, ledger=notary.ledger)
    try:
        size, stored = reopened.log.stored_heads()
        assert stored and ordered(stored) == ordered(reopened.log.project_heads(size))
        assert audit_log(reopened.log, reopened.ledger) == []
    finally:
        reopened.log.close()
        reopened.engine.dispose()


def test_truncated_log_raises_the_alarm_and_stops_sealing(notary: Notary) -> None:
    _filled(notary)
    _sql(notary, "DELETE FROM leaves WHERE seq >= 30")
    reopened = Notary(notary.config, ledger=notary.ledger)
    try:
        reopened.sealer.seal()
        assert "truncated" in (reopened.sealer.state.alarm or "")
        assert any("truncated" in p for p in audit_log(reopened.log, reopened.ledger))
    finally:
        reopened.engine.dispose()


def test_enough_waiting_records_are_sealed_before_the_interval(tmp_path: Path) -> None:
    notary = Notary(make_config(tmp_path / "n", seal_interval=3600, seal_records=10))
    people = Participants(notary)
    try:
        with serving(notary) as url:
            client = NotaryClient(url)
            client.submit(people.hub, [incident(i) for i in range(3)])
            time.sleep(0.5)
            assert notary.sealer.state.anchored_size == 0  # fewer than 10 waiting: the hourly round decides
            client.submit(people.hub, [incident(i) for i in range(3, 12)])
            wait_until(lambda: notary.sealer.state.anchored_size == CONFIGURED + 12, 10,
                       "sealing triggered by 10 waiting records")
            client.close()
    finally:
        notary.close()
