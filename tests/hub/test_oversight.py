"""Monthly statistics and bid-rigging signals: the hub's API for supervisors and `bidtrace stats` on an
extract compute the same figures from the same records; each signal fires on data that shows its pattern
and stays quiet on data that does not."""

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from notary.extract import build_extract
from tests.conftest import wait_until
from tests.hub.conftest import (
    BIDDER,
    MAIN,
    OTHER_BIDDER,
    OTHER_PROJECT,
    PROJECT,
    QD,
    SUPERVISOR,
    TENDERER,
    YT,
    Stack,
    experts,
    published,
)

CST = timezone(timedelta(hours=8))


def _venues(st: Stack) -> None:
    for venue, city in ((MAIN, "济南"), (QD, "青岛"), (YT, "烟台")):
        st.call("PUT", "/venues", {"venue_id": venue, "name": f"{city}评标中心", "city": city,
                                   "rooms": ["评标室 1", "评标室 2", "评标室 3"]})
    st.call("PUT", "/experts", {"experts": experts()})


def _session(st: Stack, session_id: str, day: int, project: str = PROJECT, **extra: Any) -> None:
    start = datetime(2026, 12, day, 9, 0, tzinfo=CST)
    st.call("POST", "/sessions", {"session_id": session_id, "project_id": project, "main_venue_id": MAIN,
                                  "room": "评标室 3", "slot_start": start.isoformat(),
                                  "slot_end": (start + timedelta(hours=8)).isoformat(), **extra}, 201)


def _offer(st: Stack, session_id: str, venue: str, answer: str) -> None:
    b = st.call("POST", f"/sessions/{session_id}/offers", {"venue_id": venue, "room": "评标室 1"}, 201)
    st.venue(venue).call("POST", f"/bookings/{b['booking_id']}/{answer}", {"reason": "场地检修"}
                         if answer == "decline" else {})


def _stats_cli(st: Stack, tmp_path: Path, month: str) -> dict[str, Any]:
    wait_until(lambda: st.notary.sealer.state.anchored_size >= st.notary.log.size, 20, "the log to be anchored")
    extract, roots = tmp_path / "extract.zip", tmp_path / "roots.json"
    extract.write_bytes(build_extract(st.notary.log, st.notary.ledger, PROJECT))
    roots.write_bytes(published(st).encode())
    env = {**os.environ, "BIDTRACE_TRUST_STORE": str(tmp_path / "no-store.json")}
    done = subprocess.run([sys.executable, "-m", "bidtrace", "stats", str(extract), "--trust", str(roots),
                           "--month", month, "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    # Without roots the user chose, nothing is counted: the verdict and its exit status instead.
    untrusted = subprocess.run([sys.executable, "-m", "bidtrace", "stats", str(extract)], capture_output=True,
                               text=True, env=env, timeout=300)
    assert untrusted.returncode == 3 and untrusted.stdout.startswith("UNTRUSTED")
    assert "computed only from an extract that verifies" in untrusted.stdout
    return result


def test_monthly_statistics_from_the_hub_are_reproduced_from_the_extract(stack: Stack, tmp_path: Path) -> None:
    st = stack
    _venues(st)
    month = datetime.now(CST).strftime("%Y-%m")  # records count in the month they happen, province time
    for i, (qd, yt) in enumerate((("confirm", "decline"), ("confirm", "confirm"), ("decline", "confirm"))):
        _session(st, f"S-{i + 1}", 1 + i)
        _offer(st, f"S-{i + 1}", QD, qd)
        _offer(st, f"S-{i + 1}", YT, yt)
    st.call("POST", "/sessions/S-1/incidents", {"venue_id": MAIN, "kind": "power_failure", "description": "停电",
                                                "started_at": "2026-12-01T10:00:00+08:00"}, 201)
    o = st.as_key(BIDDER).call("POST", "/sessions/S-1/objections", {"summary": "评分有误"}, 201)
    st.venue(MAIN).call("POST", f"/objections/{o['objection_id']}/relay",
                        {"to": [TENDERER.principal_id, SUPERVISOR.principal_id]})
    st.as_key(TENDERER).call("POST", f"/objections/{o['objection_id']}/answer", {"answer": "维持原结果"})
    st.as_key(BIDDER).call("POST", "/sessions/S-2/objections", {"summary": "另一异议"}, 201)
    st.as_key(BIDDER).call("POST", "/sessions/S-1/complaints", {"supervisor_id": SUPERVISOR.principal_id,
                                                                "summary": "投诉"}, 201)
    # Another project's session counts for the province, not for this project's figures.
    _session(st, "S-9", 9, OTHER_PROJECT)

    figures = st.as_key(SUPERVISOR).call("GET", f"/statistics?month={month}&project_id={PROJECT}")
    assert figures["sessions"] == 3 and figures["incidents"] == 1 and figures["complaints_filed"] == 1
    assert (figures["objections_filed"], figures["objections_relayed"], figures["objections_answered"]) == (2, 1, 1)
    assert figures["venues"] == [{"venue_id": QD, "offered": 3, "confirmed": 2, "declined": 1},
                                 {"venue_id": YT, "offered": 3, "confirmed": 2, "declined": 1}]
    assert st.call("GET", f"/statistics?month={month}")["sessions"] == 4
    assert st.call("GET", "/statistics?month=2025-01")["records"] == 0
    st.refused("GET", "/statistics?month=2026-13", None, 422, "month")
    st.venue(QD).refused("GET", f"/statistics?month={month}", None, 403, "may not read statistics")

    from_extract = _stats_cli(st, tmp_path, month)
    assert from_extract["project_id"] == PROJECT and from_extract["statistics"] == [figures]


def _draw(st: Stack, session_id: str, pool: list[str], selected: list[str], project: str = PROJECT) -> None:
    """A draw's commitment and result, written with the hub's key as its draws are, to shape the pattern."""
    at = datetime.now(CST).isoformat(timespec="seconds")
    base = {"project_id": project, "session_id": session_id, "venue_id": MAIN, "device_id": st.hub.key.submitter_id,
            "occurred_at": at, "attachments": []}
    draw_id = f"D-{session_id}-{hashlib.sha256(json.dumps(selected).encode()).hexdigest()[:6]}"
    commitment = {**base, "type": "draw_commitment", "payload": {
        "draw_id": draw_id, "pool": pool, "pool_digest": "0" * 64, "criteria": {"specialty": "房屋建筑工程"},
        "count": len(selected), "recusal_rules": [], "seed_commitment": "1" * 64}}
    leaf = st.hub.notary.submit(st.hub.key, [commitment])[0].leaf_index
    st.hub.notary.submit(st.hub.key, [{**base, "type": "draw_result", "payload": {
        "draw_id": draw_id, "commitment_leaf": leaf, "beacon": "2" * 64, "revealed_seed": "3" * 64,
        "excluded": [], "selected": selected}}])


def test_each_signal_fires_on_its_pattern_and_not_without_it(stack: Stack) -> None:
    st = stack
    _venues(st)
    pool = [f"E-{i:04d}" for i in range(1, 21)]
    # The tenderer of PROJECT: E-0007 drawn in 4 of its 4 draws, where each draw gives 2 in 20 (expected 0.4).
    for i in range(4):
        _session(st, f"S-{i + 1}", 1 + i, tenderer_id=TENDERER.principal_id)
        _draw(st, f"S-{i + 1}", pool, ["E-0007", f"E-00{11 + i}"])
    st.refused("POST", "/sessions", {"session_id": "S-X", "project_id": OTHER_PROJECT, "main_venue_id": MAIN,
                                     "room": "评标室 2", "slot_start": "2026-12-20T09:00:00+08:00",
                                     "slot_end": "2026-12-20T17:00:00+08:00", "tenderer_id": TENDERER.principal_id},
               422, "not a tenderer registered for project")
    # Another project, no tenderer named: E-0002 drawn 3 times in 12 draws of 5 in 20 (expected 3): no signal.
    for i in range(12):
        _session(st, f"T-{i + 1}", 10 + i, OTHER_PROJECT)
        chosen = ["E-0002"] if i < 3 else []
        _draw(st, f"T-{i + 1}", pool, chosen + [f"E-00{10 + (i + j) % 8}" for j in range(5 - len(chosen))],
              project=OTHER_PROJECT)
    # Bids: two bidders of one project from one machine; one bidder alone elsewhere from the same machine.
    document = hashlib.sha256(b"bid").hexdigest()
    bid = {"device_fingerprint": "MACHINE-7F3A-22C1", "network_address": "10.8.3.17"}
    st.as_key(BIDDER).call("POST", "/sessions/T-1/bids", {**bid, "document_sha256": document}, 201)
    st.as_key(OTHER_BIDDER).call("POST", "/sessions/T-1/bids", {
        **bid, "network_address": "10.9.1.4", "document_sha256": hashlib.sha256(b"other bid").hexdigest()}, 201)
    mine = st.as_key(BIDDER).call("POST", "/sessions/S-1/bids", {**bid, "document_sha256": document}, 201)
    st.as_key(OTHER_BIDDER).refused("POST", "/sessions/S-1/bids", {**bid, "document_sha256": document}, 403,
                                    f"not bound to project {PROJECT}")
    st.refused("POST", "/sessions/S-1/bids", {**bid, "document_sha256": document}, 403, "may not submit bid")
    record = st.admin.get(f"/v1/records/{mine['leaf_index']}")["entry"]["record"]
    assert "MACHINE-7F3A" not in json.dumps(record) and "10.8.3.17" not in json.dumps(record)
    # Declines: Yantai declines three of three offers; Qingdao declines one of four.
    for i in range(3):
        _offer(st, f"S-{i + 1}", YT, "decline")
    for i in range(4):
        _offer(st, f"S-{i + 1}", QD, "decline" if i == 0 else "confirm")

    size = st.notary.log.size
    wait_until(lambda: _tail_cursor(st) >= size - 1, 20, "the hub's mirror of the log")
    signals = st.as_key(SUPERVISOR).call("GET", "/signals")
    kinds = [(s["kind"], s["subject"]) for s in signals]
    assert kinds == [
        ("expert_favoured", f"E-0007 for tenderer {TENDERER.principal_id}"),
        ("repeated_declines", YT),
        ("shared_device", f"{OTHER_BIDDER.principal_id}, {BIDDER.principal_id} in project {OTHER_PROJECT}"),
    ], kinds
    favoured = signals[0]
    assert "drawn in 4 of the 4 draws" in favoured["explanation"] and "0.4 on average" in favoured["explanation"]
    assert len(favoured["leaves"]) == 8  # each draw's commitment and result
    for leaf in signals[1]["leaves"]:
        assert st.admin.get(f"/v1/records/{leaf}")["entry"]["record"]["payload"]["action"] == "declined"
    assert [s["kind"] for s in st.call("GET", f"/signals?project_id={PROJECT}")] == ["expert_favoured",
                                                                                    "repeated_declines"]
    st.as_key(TENDERER).refused("GET", "/signals", None, 403, "may not read statistics")


def _tail_cursor(st: Stack) -> int:
    from hub import db

    with st.hub.db() as s:
        row = s.get(db.State, "tail_cursor")
        return row.value if row is not None else -1
