"""Several HTTP worker processes append to one log: the database serialises them, nothing is lost or doubled."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from notary.access import SignedRequests
from notary.audit import audit_log
from notary.client import NotaryClient, NotaryError, SubmitterKey
from notary.server import free_port
from notary.service import Notary
from tests.conftest import ADMIN, CONFIGURED, admin_access, incident, make_config, run_concurrently, segment, wait_until
from verifier.receipt import Receipt


def test_concurrent_appends_through_several_workers(tmp_path: Path, database_url: str) -> None:
    data, port = tmp_path / "notary", free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bidtrace", "notary", "serve", "--data", str(data), "--port", str(port),
         "--workers", "3", "--seal-interval", "0.2", "--database-url", database_url],
        env={**os.environ, "BIDTRACE_ACCESS": str(admin_access(tmp_path))}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(url), 60, "the notary's workers")
        hubs = [SubmitterKey.generate(f"hub-{i}") for i in range(4)]
        admin = NotaryClient(url, as_principal=ADMIN)
        for hub in hubs:  # registered through whichever worker answers; used through the others
            admin.register(hub, "hub")
        receipts: list[Receipt] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def client(n: int) -> None:
            mine = NotaryClient(url)
            try:
                for round_ in range(12):
                    batch = [incident(1000 * n + 10 * round_ + k, project=f"P-{k % 3}") for k in range(1 + round_ % 7)]
                    got = mine.submit(hubs[n], batch)
                    again = mine.submit(hubs[n], batch[:1])  # a resend, possibly to another worker
                    assert again[0] == got[0]
                    with lock:
                        receipts.extend(got)
            except BaseException as exc:  # surfaced below
                errors.append(exc)
            finally:
                mine.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        leaves = sorted(r.leaf_index for r in receipts)
        # after the registry records of the administrator's binding and of the four hubs'
        first = CONFIGURED + 4
        assert leaves == list(range(first, first + len(leaves))), "leaf indexes must be unique and without gaps"
        wait_until(lambda: admin.get("/healthz")["anchor_lag"] == 0, 60, "anchoring of everything")
        revoked = admin._http.post("/v1/submitters/hub-0/revoke")
        assert revoked.status_code == 200
        for _ in range(6):  # every worker sees the revocation at once
            try:
                NotaryClient(url).submit(hubs[0], [incident(99_999)])
                raise AssertionError("a revoked key was accepted")
            except NotaryError as exc:
                assert exc.status == 401 and "revoked" in exc.detail
        admin.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    notary = Notary(make_config(data, database_url))
    try:
        for r in receipts:
            r.verify(notary.key.note_key, "province")
        for project in ("P-0", "P-1", "P-2"):
            seqs = [json.loads(e)["project_seq"] for _, e in notary.log.entries(limit=1000, project_id=project)]
            assert seqs == list(range(len(seqs)))
        assert audit_log(notary.log, notary.ledger) == []
    finally:
        notary.close()


def _commit_counts(url: str) -> dict[str, int]:
    text = httpx.get(f"{url}/metrics", auth=SignedRequests(ADMIN), timeout=30).text
    counts = {}
    for name in ("commits", "commit_submissions", "commits_across_workers"):
        found = re.search(rf"^bidtrace_append_{name}_total (\S+)$", text, re.M)
        assert found, f"bidtrace_append_{name}_total is missing from /metrics"
        counts[name] = int(float(found.group(1)))
    return counts


def test_submissions_at_two_workers_share_commits(tmp_path: Path, database_url: str) -> None:
    """One sequencer appends for both workers: a commit holds submissions that reached different workers,
    and the commit counts in /metrics are the notary's own, whichever worker answers."""
    clients, per_client = 32, 10
    data, port = tmp_path / "notary", free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bidtrace", "notary", "serve", "--data", str(data), "--port", str(port),
         "--workers", "2", "--seal-interval", "0.5", "--database-url", database_url],
        env={**os.environ, "BIDTRACE_ACCESS": str(admin_access(tmp_path))}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(url), 60, "the notary's workers")
        cameras = [SubmitterKey.generate(f"V-1.cam{c}") for c in range(clients)]
        admin = NotaryClient(url, as_principal=ADMIN)
        for camera in cameras:
            admin.register(camera, "device", "V-1", "recorder")
        admin.close()
        errors: list[BaseException] = []
        start = threading.Barrier(clients)

        def client(c: int) -> None:
            http = NotaryClient(url)  # a connection of its own: the kernel spreads them over the workers
            try:
                start.wait()
                for n in range(per_client):
                    http.submit(cameras[c], [segment(1000 * c + n, device=cameras[c].submitter_id)])
            except BaseException as exc:  # surfaced below
                errors.append(exc)
            finally:
                http.close()

        before = _commit_counts(url)
        run_concurrently(client, clients)
        assert not errors, errors[:3]
        after = _commit_counts(url)
        commits, submissions, across = (after[name] - before[name] for name in after)
        assert submissions == clients * per_client, "every submission is counted by the one sequencer"
        assert commits < submissions
        assert across > 0, f"none of {commits} commits held submissions from both workers"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        time.sleep(0.1)
        return False


def test_a_replay_is_refused_by_every_worker(tmp_path: Path) -> None:
    """Nonces are shared by the workers: a signed request replayed within its window is refused whichever
    worker the replay reaches (each replay opens a new connection, which the kernel spreads over them)."""
    data, port = tmp_path / "notary", free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bidtrace", "notary", "serve", "--data", str(data), "--port", str(port),
         "--workers", "2", "--seal-interval", "0.5"],
        env={**os.environ, "BIDTRACE_ACCESS": str(admin_access(tmp_path))}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(url), 60, "the notary's workers")
        request = httpx.Client().build_request("GET", url + "/v1/principals")
        SignedRequests(ADMIN).sign(request)
        assert httpx.Client(timeout=30).send(request).status_code == 200
        for _ in range(16):
            with httpx.Client(timeout=30) as fresh:  # a new connection: possibly another worker
                replayed = fresh.send(request)
            assert replayed.status_code == 401, replayed.text
            assert "replayed" in replayed.json()["detail"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
