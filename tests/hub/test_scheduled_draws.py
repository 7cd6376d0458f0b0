"""专家预约抽取: a draw announced for a time is committed then by the hub's scheduler and run once anchored; the
verifier holds the schedule to its time, its terms and its single commitment."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.forgery_kit import Project, commitment, messages, record, verify
from tests.hub.conftest import MAIN, QD, Stack, published, setup_session
from tests.hub.test_evaluation import _extract
from verifier.extract import verify_extract


def _at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def test_a_scheduled_draw_runs_at_its_time_and_verifies(stack: Stack, tmp_path: Path) -> None:
    st = stack
    setup_session(st)
    terms = {"criteria": {"specialty": "房屋建筑工程", "level": "高级"},
             "venues": [{"venue_id": MAIN, "count": 3}, {"venue_id": QD, "count": 2}]}
    st.refused("POST", "/sessions/S-1/draw-schedules", {**terms, "draw_at": _at(-5)}, 422, "not in the future")
    st.refused("POST", "/sessions/S-1/draw-schedules", {**terms, "draw_at": _at(91 * 86400)}, 422, "90 days")
    st.refused("POST", "/sessions/S-1/draw-schedules", {**terms, "draw_at": "2026-11-27 10:00"}, 422, "draw_at")
    draw_at = _at(3)
    scheduled = st.call("POST", "/sessions/S-1/draw-schedules", {**terms, "draw_at": draw_at}, 201)
    assert scheduled["status"] == "scheduled" and scheduled["draw_id"] is None
    # A venue operator of the session sees the schedule; nobody commits it by hand.
    [seen] = st.venue(QD).call("GET", "/sessions/S-1/draw-schedules")
    assert seen["schedule_id"] == scheduled["schedule_id"]

    def drawn() -> bool:
        [row] = st.call("GET", "/sessions/S-1/draw-schedules")
        assert row["status"] != "failed", row["error"]
        return bool(row["status"] == "drawn")

    wait_until(drawn, 60, "the scheduled draw to be committed and run")
    [row] = st.call("GET", "/sessions/S-1/draw-schedules")
    result = st.call("GET", f"/draws/{row['draw_id']}")
    assert result["status"] == "drawn" and len(result["selected"]) == 5
    assert set(result["assignments"]) == {MAIN, QD}

    report = verify_extract(_extract(st, tmp_path, "scheduled.zip"), published(st))
    assert report.ok, messages(report)
    [kept] = [s for s in report.sessions if s.name.startswith("scheduled draw")]
    assert kept.ok and "after its time" in kept.detail
    commitment_entry = next(e for e in report.entries.values() if e.record["type"] == "draw_commitment")
    assert commitment_entry.record["payload"]["schedule_id"] == scheduled["schedule_id"]
    assert datetime.fromisoformat(commitment_entry.received_at) >= datetime.fromisoformat(draw_at)


def _schedule(schedule_id: str, draw_at: str, count: int = 5) -> dict[str, Any]:
    return record("draw_schedule", {"schedule_id": schedule_id, "draw_at": draw_at,
                                    "criteria": {"specialty": "civil"}, "count": count})


def _carrying(draw_id: str, schedule_id: str, count: int = 5) -> dict[str, Any]:
    committed = commitment(draw_id)
    committed["payload"].update(schedule_id=schedule_id, count=count)
    return committed


def _session_failures(tmp_path: Path, project: Project) -> str:
    genuine = project.finish()
    report = verify(tmp_path, genuine.data, genuine.roots)
    failed = "\n".join(f"{s.name}: {s.detail}" for s in report.sessions
                       if not s.ok and ("scheduled" in s.name or "names schedule" in s.detail))
    if failed:
        assert not report.ok
    return failed


def _resolve(project: Project, draw_id: str) -> None:
    """Publish the draw's cancellation so that only the schedule checks can fail."""
    project.submit("hub-1", [record("draw_cancellation", {"draw_id": draw_id, "reason": "test of the schedule"})])


@pytest.mark.parametrize(("draw_at", "count", "expected"), [
    (3600, 5, "before its scheduled time"),  # committed an hour early: the operator chose the moment
    (-3600, 5, "more than 10 minutes after"),  # committed long after: the moment was chosen again
    (-5, 4, "other count"),  # terms changed since the announcement
], ids=["early", "late", "other-terms"])
def test_a_commitment_that_breaks_its_schedule_fails(tmp_path: Path, draw_at: float, count: int,
                                                     expected: str) -> None:
    project = Project(tmp_path)
    project.submit("hub-1", [_schedule("DS-1", _at(draw_at))])
    project.submit("hub-1", [_carrying("D-9", "DS-1", count)])
    _resolve(project, "D-9")
    assert expected in _session_failures(tmp_path, project)


def test_a_schedule_kept_passes_and_a_missed_one_fails(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.submit("hub-1", [_schedule("DS-1", _at(-2)), _schedule("DS-2", _at(-3600)), _schedule("DS-3", _at(3600))])
    project.submit("hub-1", [_carrying("D-9", "DS-1")])
    _resolve(project, "D-9")
    genuine = project.finish()
    report = verify(tmp_path, genuine.data, genuine.roots)
    by_id = {s.name.split()[2]: s for s in report.sessions if s.name.startswith("scheduled draw")}
    assert by_id["DS-1"].ok, by_id["DS-1"].detail
    assert not by_id["DS-2"].ok and "never committed" in by_id["DS-2"].detail
    assert by_id["DS-3"].ok and by_id["DS-3"].detail.startswith("pending")
    assert not report.ok


def test_a_schedule_committed_twice_or_a_commitment_naming_no_schedule_fails(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.submit("hub-1", [_schedule("DS-1", _at(-2))])
    project.submit("hub-1", [_carrying("D-8", "DS-1"), _carrying("D-9", "DS-1"), _carrying("D-7", "DS-404")])
    for draw_id in ("D-7", "D-8", "D-9"):
        _resolve(project, draw_id)
    failed = _session_failures(tmp_path, project)
    assert "committed more than once" in failed
    assert "names schedule DS-404, which is not in the extract" in failed
