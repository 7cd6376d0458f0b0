"""A device keeps each record and its receipt until it sees the notary kept the promise: the leaf in a later
signed checkpoint, on the history it saw before. A real notary over HTTP, restored from a backup taken
before it acknowledged two records: the device names the broken promise and keeps the evidence."""

import shutil
from pathlib import Path

from typer.testing import CliRunner

from devices.cli import app, queue_path
from devices.queue import EvidenceQueue
from notary.client import NotaryClient, SubmitterKey
from tests.conftest import incident, wait_until
from tests.devices.conftest import LiveNotary

DEVICE = "V-1.cam1"


def _sealed(live: LiveNotary, leaf: int) -> None:
    wait_until(lambda: live.notary is not None and live.notary.sealer.state.anchored_size > leaf, 30,
               f"a checkpoint covering leaf {leaf}")


def _restore(live: LiveNotary, backup: Path) -> None:
    live.stop()
    shutil.rmtree(live.data_dir)
    shutil.copytree(backup, live.data_dir)
    live.start()


def _device(live: LiveNotary, folder: Path) -> tuple[SubmitterKey, Path, EvidenceQueue]:
    """A registered device and its queue, checking receipts whenever it talks to the notary."""
    key = SubmitterKey.load_or_create(folder / f"{DEVICE}.key", DEVICE)
    live.register(key)
    path = queue_path(folder, DEVICE)
    return key, path, EvidenceQueue(path, key, NotaryClient(live.url), confirm_interval=0)


def test_the_queue_confirms_receipts_and_names_the_ones_a_restored_notary_lost(live_notary: LiveNotary,
                                                                               tmp_path: Path) -> None:
    key, path, queue = _device(live_notary, tmp_path)
    queue.enqueue([incident(n, device=DEVICE) for n in range(2)])
    assert queue.send_pending().sent == 2
    last = queue.status().last_receipt
    assert last is not None
    _sealed(live_notary, last.leaf_index)
    assert queue.send_pending().sent == 0  # talking to the notary again re-checks the pending receipts
    assert (queue.status().unconfirmed, queue.status().broken) == (0, 0)

    live_notary.stop()  # a backup of the notary, taken now
    shutil.copytree(live_notary.data_dir, tmp_path / "backup")
    live_notary.start()
    queue.close()
    queue = EvidenceQueue(path, key, NotaryClient(live_notary.url), confirm_interval=3600)  # sends, checks later
    queue.enqueue([incident(n, device=DEVICE) for n in range(2, 4)])
    assert queue.send_pending().sent == 2
    assert queue.status().unconfirmed == 2  # acknowledged, not yet seen in a checkpoint
    lost = [rc.leaf_index for _, _, _, rc in queue.records() if rc][2:]
    queue.close()

    _restore(live_notary, tmp_path / "backup")  # the acknowledged incidents 2 and 3 are gone
    other = NotaryClient(live_notary.url)
    other.submit(key, [incident(n, device=DEVICE) for n in range(900, 903)])  # the log grows past them
    other.close()
    _sealed(live_notary, max(lost))
    # The device restarts: the checkpoint it saw before is kept in its queue, so a fresh client still holds
    # the notary to that history.
    queue = EvidenceQueue(path, key, NotaryClient(live_notary.url), confirm_interval=0)
    assert queue.send_pending().sent == 0
    status = queue.status()
    assert (status.sent, status.unconfirmed, status.broken) == (4, 0, 2)
    assert status.first_broken is not None and status.first_broken.receipt.leaf_index == lost[0]
    assert f"for leaf {lost[0]}" in str(status.first_broken) and "broke its promise" in str(status.first_broken)
    assert f"leaf {lost[0]} of the receipt is not in the notary's checkpoint" in status.first_broken.detail
    assert [b.receipt.leaf_index for b in queue.broken()] == lost
    # The evidence stays: both records with the notary's signed receipts, and nothing was sent again.
    kept = [(r["payload"]["incident_id"], rc) for _, state, r, rc in queue.records() if state == "sent"]
    assert [i for i, _ in kept] == [f"I-{n}" for n in range(4)] and all(rc is not None for _, rc in kept)
    assert [e.record["payload"]["incident_id"] for e in live_notary.entries()] == ["I-0", "I-1", "I-900", "I-901",
                                                                                    "I-902"]
    queue.close()
    result = CliRunner().invoke(app, ["status", "--device-id", DEVICE, "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "BROKEN PROMISE (2 records kept with their receipts): the notary broke its promise for queued record " \
           "#3: receipt of" in result.output and f"for leaf {lost[0]}" in result.output


def test_a_notary_showing_a_history_that_forks_from_the_one_seen_is_named(live_notary: LiveNotary,
                                                                           tmp_path: Path) -> None:
    key, path, queue = _device(live_notary, tmp_path)
    queue.enqueue([incident(n, device=DEVICE) for n in range(2)])
    queue.send_pending()
    live_notary.stop()
    shutil.copytree(live_notary.data_dir, tmp_path / "backup")
    live_notary.start()
    queue.enqueue([incident(n, device=DEVICE) for n in range(2, 4)])
    queue.send_pending()
    last = queue.status().last_receipt
    assert last is not None
    _sealed(live_notary, last.leaf_index)
    queue.send_pending()
    assert (queue.status().sent, queue.status().unconfirmed) == (4, 0)  # seen in a checkpoint of that history
    queue.close()

    _restore(live_notary, tmp_path / "backup")  # the same notary, now on a history without incidents 2 and 3
    other = NotaryClient(live_notary.url)
    other.submit(key, [incident(n, device=DEVICE) for n in range(900, 905)])
    other.close()
    queue = EvidenceQueue(path, key, NotaryClient(live_notary.url), confirm_interval=0)
    queue.enqueue([incident(4, device=DEVICE)])
    assert queue.send_pending().sent == 1
    _sealed(live_notary, live_notary.size() - 1)
    queue.send_pending()
    [broken] = queue.broken()
    assert broken.seq == 5 and "is not consistent with the one of size" in broken.detail
    assert queue.status().broken == 1 and queue.status().unconfirmed == 0
    queue.close()
