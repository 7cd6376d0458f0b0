"""Group commit: concurrent submissions share one durable commit, and each is acknowledged after it."""

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from notary.access import Role, SignedRequests
from notary.audit import audit_log
from notary.client import NotaryClient, NotaryError, SubmitterKey
from notary.log import Submission, _GroupCommit
from notary.server import serving
from notary.service import Notary
from tests.conftest import ADMIN, CONFIGURED, Participants, entry_of, incident, make_config, run_concurrently, segment
from verifier.canonical import canonical_bytes
from verifier.entry import parse_entry
from verifier.receipt import Receipt


def _commit_counts(url: str) -> tuple[int, int]:
    text = httpx.get(f"{url}/metrics", auth=SignedRequests(ADMIN)).text  # metrics are the operators'

    commits = re.search(r"^bidtrace_append_commits_total (\S+)$", text, re.M)
    submissions = re.search(r"^bidtrace_append_commit_submissions_total (\S+)$", text, re.M)
    assert commits and submissions, "the commit counters are missing from /metrics"
    return int(float(commits.group(1))), int(float(submissions.group(1)))


def test_concurrent_submissions_share_commits_and_every_ack_is_present(tmp_path: Path, database_url: str) -> None:
    clients, per_client = 48, 15
    notary = Notary(make_config(tmp_path / "notary", database_url))
    cameras = [SubmitterKey.generate(f"V-1.cam{c}") for c in range(clients)]
    for camera in cameras:
        principal = camera.principal(Role.DEVICE, "V-1", "recorder")
        notary.principals.bind(principal)
        notary.register_submitter_of(principal)
    # A disk that takes 50 ms per commit (a spinning disk, a busy SAN), so that whether the crowd shares
    # commits does not hang on how fast this host's disk is against its request handling, nor on how busy
    # its CPUs are: without sharing, every submission is a commit of its own.
    group = notary.log._group
    assert isinstance(group, _GroupCommit)  # a notary serving in one process commits its own groups
    real_append = group._append

    def slow_disk(pending: list[Any]) -> Any:
        time.sleep(0.05)
        return real_append(pending)

    group._append = slow_disk
    acked: dict[int, tuple[int, dict[str, Any]]] = {}  # leaf -> (client, record)
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)
    try:
        with serving(notary, start_sealer=False) as url:

            def client(c: int) -> None:
                http = NotaryClient(url)
                try:
                    start.wait()
                    for n in range(per_client):  # one record per POST, the next only after the ack
                        record = segment(1000 * c + n, device=cameras[c].submitter_id)
                        (receipt,) = http.submit(cameras[c], [record])
                        receipt.verify(notary.key.note_key, "province")
                        with lock:
                            acked[receipt.leaf_index] = (c, record)
                except BaseException as exc:  # surfaced below
                    errors.append(exc)
                finally:
                    http.close()

            commits_before, submissions_before = _commit_counts(url)  # the access file's registry record
            run_concurrently(client, clients)
            assert not errors, errors[:3]
            commits, submissions = (n - before for n, before in zip(
                _commit_counts(url), (commits_before, submissions_before), strict=True))
        assert submissions == clients * per_client
        assert commits <= submissions // 2, f"{submissions} submissions took {commits} commits"
        assert sorted(acked) == list(range(CONFIGURED, CONFIGURED + clients * per_client)), "every ack, without gaps"
        for leaf, (_, record) in acked.items():
            assert canonical_bytes(parse_entry(entry_of(notary, leaf)).record) == canonical_bytes(record)
        for c in range(clients):  # each client's records in the order it was acknowledged
            mine = [acked[leaf][1]["payload"]["segment_index"] for leaf in sorted(acked) if acked[leaf][0] == c]
            assert mine == [1000 * c + n for n in range(per_client)]
        notary.sealer.seal()
        assert audit_log(notary.log, notary.ledger) == []
    finally:
        notary.close()


def test_a_lone_submitter_gets_a_commit_per_submission(sqlite_notary: Notary) -> None:
    people = Participants(sqlite_notary)
    with serving(sqlite_notary, start_sealer=False) as url:
        client = NotaryClient(url)
        commits, submissions = _commit_counts(url)  # the access file's registry record
        for i in range(5):
            client.submit(people.hub, [incident(i)])
        client.close()
        assert _commit_counts(url) == (commits + 5, submissions + 5)  # nothing waited for company


def test_a_revoked_key_is_refused_inside_the_group_without_failing_the_others(sqlite_notary: Notary) -> None:
    people = Participants(sqlite_notary)
    log = sqlite_notary.log
    log.submit(Submission("hub-1", [incident(0)], people.hub.sign_batch([incident(0)])))  # hub-1 is now cached
    log.revoke_submitter("hub-1")
    with serving(sqlite_notary, start_sealer=False) as url:
        client = NotaryClient(url)
        try:
            client.submit(people.hub, [incident(1)])
            raise AssertionError("a revoked key was accepted")
        except NotaryError as exc:
            assert exc.status == 403 and "revoked" in exc.detail
        (receipt,) = client.submit(people.camera, [segment(1)])
        client.close()
    assert receipt.leaf_index == CONFIGURED + 1 and log.size == CONFIGURED + 2


def test_resubmissions_within_one_group_append_once(sqlite_notary: Notary) -> None:
    people = Participants(sqlite_notary)
    batch = [incident(i) for i in range(3)]
    body = Submission("hub-1", batch, people.hub.sign_batch(batch))
    results: list[list[Receipt]] = []
    threads = [threading.Thread(target=lambda: results.append(sqlite_notary.log.submit(body).receipts))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 8 and sqlite_notary.log.size == CONFIGURED + 3
    leaves = {tuple(r.leaf_index for r in receipts) for receipts in results}
    assert leaves == {(CONFIGURED, CONFIGURED + 1, CONFIGURED + 2)}


def test_a_failing_database_answers_503_and_a_resubmission_then_appends(sqlite_notary: Notary) -> None:
    people = Participants(sqlite_notary)
    with serving(sqlite_notary, start_sealer=False) as url:
        client = NotaryClient(url)
        with sqlite_notary.engine.begin() as conn:  # the log's table goes missing under the notary
            conn.exec_driver_sql("ALTER TABLE leaves RENAME TO leaves_away")
        try:
            client.submit(people.hub, [incident(0)])
            raise AssertionError("an append that could not be written was acknowledged")
        except NotaryError as exc:
            assert exc.status == 503 and "no such table: leaves" in exc.detail and "resubmitting is safe" in exc.detail
        with sqlite_notary.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE leaves_away RENAME TO leaves")
        (receipt,) = client.submit(people.hub, [incident(0)])
        client.close()
    assert receipt.leaf_index == CONFIGURED and sqlite_notary.log.size == CONFIGURED + 1
