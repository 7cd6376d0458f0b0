"""The hub checks the notary kept the promise of every receipt it holds: each leaf in a later signed
checkpoint, on one history. A real notary over HTTP, stopped and restored from a backup taken before it
acknowledged a record: the record is lost, and the hub says which leaf and which receipt."""

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from hub import db
from hub.config import HubConfig
from hub.server import serving_hub
from hub.service import Hub
from hub.workflows.alarms import Alarm, anchor_state, session_alarms
from hub.workflows.inclusion import confirm_receipts, unconfirmed
from notary.access import SignedRequests
from notary.client import NotaryClient
from tests.conftest import ADMIN, incident, wait_until
from tests.devices.conftest import LiveNotary
from tests.hub.conftest import OPERATOR, YT, Stack, hub_access, setup_session


def _checks(st: Stack, session_id: str = "S-1") -> dict[int, str]:
    with st.hub.db() as s:
        rows = s.execute(select(db.EvidenceRow.leaf_index, db.InclusionCheck.status)
                         .outerjoin(db.InclusionCheck, db.InclusionCheck.leaf_index == db.EvidenceRow.leaf_index)
                         .where(db.EvidenceRow.session_id == session_id))
        return {leaf: status or "unconfirmed" for leaf, status in rows}


def _alarms(hub: Hub, kind: str) -> list[Alarm]:
    anchor = anchor_state(hub)
    with hub.db() as s:
        return [a for a in session_alarms(hub, s, hub.get(s, db.EvalSession, "S-1", "session"), anchor)
                if a.kind == kind]


def test_the_hubs_job_confirms_receipts_once_the_notary_seals_them(stack: Stack) -> None:
    st = stack
    setup_session(st)
    leaves = sorted(_checks(st))
    assert leaves
    wait_until(lambda: set(_checks(st).values()) == {"confirmed"}, 30, "the inclusion job to confirm every receipt")
    with st.hub.db() as s:
        checks = list(s.scalars(select(db.InclusionCheck)))
        kept = s.scalars(select(db.SeenCheckpoint)).one()
    assert all(leaves[0] < c.checkpoint_size <= kept.size for c in checks if c.leaf_index in leaves)
    assert all(c.leaf_index < c.checkpoint_size for c in checks)  # each in a checkpoint that covers it
    assert not _alarms(st.hub, "receipt_not_included") and not _alarms(st.hub, "receipt_unconfirmed")


@pytest.fixture
def restorable(tmp_path: Path) -> Iterator[tuple[LiveNotary, Stack]]:
    live = LiveNotary(tmp_path / "notary")
    live.start()
    hub = Hub(HubConfig(data_dir=tmp_path / "hub", notary_url=live.url, access=hub_access(tmp_path / "hub.json"),
                        tail_interval=0.1, inclusion_interval=3600))  # the test runs the rounds itself
    admin = NotaryClient(live.url, as_principal=ADMIN)
    admin.register(hub.key, "hub")
    try:
        with serving_hub(hub) as url, httpx.Client(base_url=url, timeout=60, auth=SignedRequests(OPERATOR)) as api:
            assert live.notary is not None
            yield live, Stack(live.notary, live.url, hub, url, api, admin)
    finally:
        admin.close()
        hub.close()
        live.stop()


def _sealed(live: LiveNotary, leaf: int) -> None:
    wait_until(lambda: live.notary is not None and live.notary.sealer.state.anchored_size > leaf, 30,
               f"a checkpoint covering leaf {leaf}")


def test_a_notary_that_lost_an_acknowledged_record_is_caught_and_named(restorable: tuple[LiveNotary, Stack],
                                                                        tmp_path: Path) -> None:
    live, st = restorable
    setup_session(st)
    _sealed(live, max(_checks(st)))
    assert confirm_receipts(st.hub) > 0 and set(_checks(st).values()) == {"confirmed"}

    live.stop()  # a backup of the notary, taken now
    shutil.copytree(live.data_dir, tmp_path / "backup")
    live.start()
    st.call("POST", "/sessions/S-1/incidents", {"venue_id": YT, "kind": "other", "description": "投影仪故障",
                                                "started_at": "2026-11-26T10:05:00+08:00"}, 201)
    [lost] = [leaf for leaf, status in _checks(st).items() if status == "unconfirmed"]

    live.stop()  # the notary is restored from the backup: the acknowledged incident is gone
    shutil.rmtree(live.data_dir)
    shutil.copytree(tmp_path / "backup", live.data_dir)
    live.start()
    assert live.size() <= lost
    assert confirm_receipts(st.hub) == 0  # not in a checkpoint yet: a promise still open
    with st.hub.db() as s:
        assert [r.leaf_index for r in unconfirmed(s)] == [lost]
    anchor = anchor_state(st.hub)
    assert anchor is not None
    with st.hub.db() as s:
        session = st.hub.get(s, db.EvalSession, "S-1", "session")
        within = session_alarms(st.hub, s, session, replace(anchor, max_merge_delay=3600))
        overdue = session_alarms(st.hub, s, session, replace(anchor, max_merge_delay=0))
    assert [a.kind for a in within if a.kind.startswith("receipt_")] == []
    [late] = [a for a in overdue if a.kind == "receipt_unconfirmed"]
    assert late.leaf_index == lost and "maximum merge delay" in late.detail

    other = NotaryClient(live.url)
    other.submit(st.hub.key, [incident(900 + i) for i in range(3)])  # the log grows past the lost leaf
    other.close()
    _sealed(live, lost)
    assert confirm_receipts(st.hub) == 0
    assert _checks(st)[lost] == "broken"
    [alarm] = _alarms(st.hub, "receipt_not_included")
    assert alarm.leaf_index == lost and alarm.subject == f"leaf {lost}"
    with st.hub.db() as s:
        row = s.get(db.EvidenceRow, lost)
        assert row is not None  # the receipt is kept: the notary's signed promise
    assert row.leaf_hash in alarm.detail and row.receipt["received_at"] in alarm.detail
    assert f"leaf {lost} of the receipt is not in the notary's checkpoint" in alarm.detail



def test_a_notary_showing_a_history_that_forks_from_the_one_seen_is_an_alarm(restorable: tuple[LiveNotary, Stack],
                                                                            tmp_path: Path) -> None:
    live, st = restorable
    live.stop()  # a backup of the notary, taken before the session's evidence
    shutil.copytree(live.data_dir, tmp_path / "backup")
    live.start()
    setup_session(st)
    _sealed(live, max(_checks(st)))
    assert confirm_receipts(st.hub) > 0 and set(_checks(st).values()) == {"confirmed"}

    live.stop()  # restored: the hub's checkpoint of the session is on a history the notary no longer shows
    shutil.rmtree(live.data_dir)
    shutil.copytree(tmp_path / "backup", live.data_dir)
    live.start()
    other = NotaryClient(live.url)
    other.submit(st.hub.key, [incident(900 + i) for i in range(40)])
    other.close()
    st.call("POST", "/sessions/S-1/incidents", {"venue_id": YT, "kind": "other", "description": "投影仪故障",
                                                "started_at": "2026-11-26T10:05:00+08:00"}, 201)
    [after] = [leaf for leaf, status in _checks(st).items() if status == "unconfirmed"]
    _sealed(live, after)
    assert confirm_receipts(st.hub) == 0
    assert _checks(st)[after] == "broken"
    [alarm] = _alarms(st.hub, "receipt_not_included")
    assert alarm.leaf_index == after and "is not consistent with the one of size" in alarm.detail
