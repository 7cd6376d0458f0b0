"""The alarms the consoles show, each from what the hub holds: a silent recorder and a recording gap, a venue
offline, anchor lag against the receipt's promise, and a notary that cannot be asked."""

import time
from datetime import UTC, datetime, timedelta

from hub import db
from hub.workflows.alarms import AnchorState, cameras, session_alarms
from notary.client import SubmitterKey
from tests.conftest import wait_until
from tests.hub.conftest import MAIN, PROJECT, YT, Stack, setup_session, slot_around_now


def _alarms(st: Stack, anchor: AnchorState | None) -> dict[str, list[str]]:
    with st.hub.db() as s:
        found = session_alarms(st.hub, s, st.hub.get(s, db.EvalSession, "S-1", "session"), anchor)
    out: dict[str, list[str]] = {}
    for a in found:
        out.setdefault(a.kind, []).append(f"{a.subject}: {a.detail}")
    return out


def test_a_camera_that_stopped_and_skipped_is_silent_and_has_a_gap(stack: Stack) -> None:
    st = stack
    setup_session(st, slot=slot_around_now())
    camera = SubmitterKey.generate(f"{MAIN}.cam1")
    st.admin.register(camera, "device", MAIN, "recorder")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    segments = []
    for i in (0, 1, 3):  # segment 2 never arrived; the last ended nine minutes ago
        segments.append({"type": "recording_segment", "project_id": PROJECT, "session_id": "S-1",
                         "venue_id": MAIN, "device_id": camera.submitter_id,
                         "occurred_at": (start + timedelta(seconds=10 * (i + 1))).isoformat(),
                         "payload": {"camera_id": "cam1", "segment_index": i,
                                     "start": (start + timedelta(seconds=10 * i)).isoformat(),
                                     "end": (start + timedelta(seconds=10 * (i + 1))).isoformat(),
                                     "frame_count": 250, "sha256": f"{i + 1:064x}", "previous_segment": None}})
    st.admin.submit(camera, segments)
    wait_until(lambda: _camera_segments(st) == 3, 20, "the hub to mirror the camera's segments")
    found = _alarms(st, AnchorState(10**6, 10**6, 60))
    assert found["recording_gap"] == [f"{camera.submitter_id} cam1: #1 → #3"]
    assert [x.split(": ")[0] for x in found["recorder_silent"]] == [f"{camera.submitter_id} cam1"]
    with st.hub.db() as s:
        (health,) = cameras(s, "S-1", MAIN)
    assert health.segments == 3 and health.delay_seconds is not None and health.delay_seconds > 500


def _camera_segments(st: Stack) -> int:
    with st.hub.db() as s:
        return sum(c.segments for c in cameras(s, "S-1"))


def test_an_outage_is_a_venue_offline_until_it_is_resolved(stack: Stack) -> None:
    st = stack
    setup_session(st)
    inc = st.call("POST", "/sessions/S-1/incidents", {"venue_id": YT, "kind": "network_failure",
                                                      "description": "政务外网中断",
                                                      "started_at": "2026-11-26T10:05:00+08:00"}, 201)
    assert _alarms(st, AnchorState(10**6, 10**6, 60))["venue_offline"] == [
        f"{YT}: network_failure 2026-11-26T10:05:00+08:00"]
    st.call("POST", f"/incidents/{inc['incident_id']}/resolve", {"ended_at": "2026-11-26T10:12:00+08:00"})
    assert "venue_offline" not in _alarms(st, AnchorState(10**6, 10**6, 60))


def test_a_leaf_unanchored_past_the_merge_delay_is_anchor_lag(stack: Stack) -> None:
    st = stack
    setup_session(st)
    with st.hub.db() as s:
        first = min(r.leaf_index for r in s.query(db.EvidenceRow).filter(db.EvidenceRow.session_id == "S-1"))
    assert "anchor_lag" not in _alarms(st, AnchorState(first + 50, first, 60))  # within the promise
    time.sleep(1.1)
    assert _alarms(st, AnchorState(first + 50, first, 1))["anchor_lag"][0].startswith(f"leaf {first}: ")
    assert "anchor_lag" not in _alarms(st, AnchorState(first + 50, first + 50, 1))  # all anchored
    assert "notary_unreachable" in _alarms(st, None)
