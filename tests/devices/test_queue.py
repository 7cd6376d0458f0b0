"""The store-and-forward queue against a real notary over HTTP."""

import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from devices.cli import app, queue_path
from devices.queue import EvidenceQueue, QueueError
from notary.client import NotaryClient, SubmitterKey
from tests.conftest import CONFIGURED, incident
from tests.devices.conftest import LiveNotary
from verifier.receipt import Receipt

DEVICE = "V-1.cam1"


def incidents(first: int, count: int, device: str = DEVICE) -> list[dict[str, Any]]:
    return [incident(n, device=device) for n in range(first, first + count)]


def test_refused_record_is_kept_and_blocks_what_follows(live_notary: LiveNotary, tmp_path: Path) -> None:
    key = SubmitterKey.generate(DEVICE)
    live_notary.register(key)
    base = live_notary.size()  # the registry record of the device's binding comes first
    queue = EvidenceQueue(tmp_path / "q.db", key, NotaryClient(live_notary.url), batch_size=10)
    records = incidents(0, 2) + incidents(2, 1, device="V-1.other") + incidents(3, 2)
    queue.enqueue(records)
    report = queue.send_pending()
    assert report.sent == 2 and report.refusal is not None
    assert report.refusal.status == 403 and "may not submit for device V-1.other" in report.refusal.detail
    assert [st for _, st, _, _ in queue.records()] == ["sent", "sent", "refused", "pending", "pending"]
    assert queue.status().refusal is not None and queue.status().pending == 2
    assert queue.send_pending().sent == 0  # stays stopped until an operator decides
    assert live_notary.size() == base + 2
    assert queue.set_aside_refused() == 1
    assert queue.send_pending().sent == 2
    assert [st for _, st, _, _ in queue.records()] == ["sent", "sent", "set_aside", "sent", "sent"]
    assert [rc.leaf_index for _, _, _, rc in queue.records() if rc] == [base + i for i in range(4)]
    queue.close()


def test_unregistered_device_waits_for_registration(live_notary: LiveNotary, tmp_path: Path) -> None:
    key = SubmitterKey.generate(DEVICE)
    queue = EvidenceQueue(tmp_path / "q.db", key, NotaryClient(live_notary.url))
    queue.enqueue(incidents(0, 3))
    report = queue.send_pending()
    assert report.refusal is not None and report.refusal.status == 401 and "not registered" in report.refusal.detail
    assert queue.status().refused == 1 and queue.status().pending == 2
    live_notary.register(key)
    assert queue.retry_refused() == 1
    assert queue.send_pending().sent == 3
    assert queue.status().pending == 0
    queue.close()


class CrashAfterSubmit(NotaryClient):
    """Submits for real, then 'dies' before the queue can mark the records sent."""

    def submit(self, key: SubmitterKey, records: list[dict[str, Any]],
               disclosures: list[dict[str, Any]] | None = None) -> list[Receipt]:
        super().submit(key, records, disclosures)
        raise httpx.ReadTimeout("lost the answer")


def test_resending_after_a_lost_answer_makes_no_second_leaf(live_notary: LiveNotary, tmp_path: Path) -> None:
    key = SubmitterKey.generate(DEVICE)
    live_notary.register(key)
    base = live_notary.size()
    client = NotaryClient(live_notary.url)
    queue = EvidenceQueue(tmp_path / "q.db", key, CrashAfterSubmit(live_notary.url))
    queue.enqueue(incidents(0, 4))
    report = queue.send_pending()
    assert report.sent == 0 and report.error and "unreachable" in report.error
    assert live_notary.size() == base + 4
    queue.close()
    queue = EvidenceQueue(tmp_path / "q.db", key, client)  # the restarted agent
    assert queue.status().pending == 4
    assert queue.send_pending().sent == 4
    assert live_notary.size() == base + 4
    assert [rc.leaf_index for _, _, _, rc in queue.records() if rc] == [base + i for i in range(4)]
    queue.close()


def test_unreachable_notary_keeps_everything_in_order(tmp_path: Path) -> None:
    nothing_here = NotaryClient("http://127.0.0.1:9", timeout=1)  # discard port: connection refused
    key = SubmitterKey.generate(DEVICE)
    queue = EvidenceQueue(tmp_path / "q.db", key, nothing_here, backoff_initial=0.01, backoff_max=0.05)
    queue.enqueue(incidents(0, 5))
    report = queue.drain(timeout=0.3)
    assert report.sent == 0 and report.error and "unreachable" in report.error
    assert queue.status().pending == 5
    assert [r["payload"]["incident_id"] for _, _, r, _ in queue.records()] == [f"I-{i}" for i in range(5)]
    queue.close()


def test_one_sender_per_queue(tmp_path: Path) -> None:
    key = SubmitterKey.generate(DEVICE)
    a = EvidenceQueue(tmp_path / "q.db", key, NotaryClient("http://127.0.0.1:9", timeout=1))
    b = EvidenceQueue(tmp_path / "q.db", key, NotaryClient("http://127.0.0.1:9", timeout=1))
    a.start()
    with pytest.raises(QueueError, match="another process is sending"):
        b.send_pending()
    a.close()
    b.close()


def test_disclosures_travel_with_their_record_and_are_erased_once_sent(live_notary: LiveNotary,
                                                                       tmp_path: Path) -> None:
    from verifier.commitments import commit

    key = SubmitterKey.generate("V-1.checkin")
    live_notary.register(key)
    queue = EvidenceQueue(tmp_path / "q.db", key, NotaryClient(live_notary.url))
    salt = bytes(range(32))
    records, disclosures = [], []
    for i in range(3):
        rec = {"type": "checkin", "project_id": "P-1", "session_id": "S-1", "venue_id": "V-1",
               "device_id": "V-1.checkin", "occurred_at": "2026-11-26T10:00:00+08:00",
               "payload": {"expert_commitment": commit(salt, f"ID-{i}"), "method": "card", "result": "unverified"}}
        records.append(rec)
        disclosures.append([{"field": "expert_commitment", "salt": salt.hex(), "value": f"ID-{i}"}] if i else [])
    queue.enqueue(records, disclosures)
    assert queue.send_pending().sent == 3
    assert live_notary.notary is not None
    first = live_notary.size() - 3  # after the registry record of the station's binding
    assert live_notary.notary.log.disclosures(first) == []
    assert [d["value"] for d in live_notary.notary.log.disclosures(first + 2)] == ["ID-2"]
    queue.close()
    assert b"ID-2" not in (tmp_path / "q.db").read_bytes()  # erased (secure_delete) once acknowledged


def test_status_command(live_notary: LiveNotary, tmp_path: Path) -> None:
    key = SubmitterKey.load_or_create(tmp_path / f"{DEVICE}.key", DEVICE)
    assert stat.S_IMODE((tmp_path / f"{DEVICE}.key").stat().st_mode) == 0o600
    live_notary.register(key)
    queue = EvidenceQueue(queue_path(tmp_path, DEVICE), key, NotaryClient(live_notary.url))
    queue.enqueue(incidents(0, 2))
    queue.send_pending()
    queue.enqueue(incidents(2, 1))
    queue.close()
    runner = CliRunner()
    result = runner.invoke(app, ["status", "--device-id", DEVICE, "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 pending, 2 sent, 0 refused" in result.output and f"leaf {CONFIGURED + 2} of log province" in result.output
    result = runner.invoke(app, ["flush", "--device-id", DEVICE, "--state-dir", str(tmp_path),
                                 "--notary", live_notary.url, "--drain-timeout", "10"])
    assert result.exit_code == 0, result.output
    # after the access file's and the device's registry records
    assert f"all 3 queued records acknowledged; last leaf {CONFIGURED + 3}" in result.output
