"""Sealing rounds never overlap, and a round longer than the interval is not a warning."""

import logging
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from anchors.embedded import EmbeddedLedger
from notary import store
from notary.log import Submission
from notary.service import Notary
from tests.conftest import Participants, incident, make_config, wait_until
from verifier.anchor import Anchor


class SlowLedger(EmbeddedLedger):
    """The embedded ledger taking as long per anchor as Fabric does (about half a second)."""

    in_flight = 0
    most_in_flight = 0

    def anchor_checkpoint(self, log_id: str, checkpoint: str, consistency_proof: list[bytes]) -> Anchor:
        type(self).in_flight += 1
        type(self).most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(0.5)
            return super().anchor_checkpoint(log_id, checkpoint, consistency_proof)
        finally:
            type(self).in_flight -= 1


def test_rounds_longer_than_the_interval_do_not_overlap_or_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path / "n", seal_interval=0.1)
    config.data_dir.mkdir(parents=True)
    notary = Notary(config)
    notary.ledger.close()
    notary.ledger = SlowLedger(config.data_dir / "ledger", config.org, config.org, notary.key.public_pem().encode())
    notary.sealer.ledger = notary.ledger
    people = Participants(notary)
    caplog.set_level(logging.DEBUG, logger="apscheduler")
    notary.start()
    try:
        deadline = time.monotonic() + 2.5
        n = 0
        while time.monotonic() < deadline:
            records = [incident(n)]
            notary.log.submit(Submission("hub-1", records, people.hub.sign_batch(records)))
            n += 1
            time.sleep(0.05)
        size = notary.log.size
        wait_until(lambda: notary.sealer.state.anchored_size >= size, 10, "the backlog anchored")
    finally:
        notary.close()
    with notary.engine.connect() as conn:
        rounds = conn.execute(select(func.count()).select_from(store.anchors)).scalar()
    assert rounds is not None and rounds >= 3  # rounds kept coming, each after the previous one ended
    assert SlowLedger.most_in_flight == 1
    noisy = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == []
