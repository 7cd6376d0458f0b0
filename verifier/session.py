"""Checks over a session's records as a whole: is each camera's recording complete, is each draw reproducible.

A recording is complete when, per venue and camera, segment numbers run from 0 without a gap, each
segment names the hash of the one before it, and each starts when the previous one ended. A draw is
reproducible when re-running `verifier.draw` from its commitment, revealed seed and anchored beacon
selects exactly the published experts, and any recusal it applies was fixed by the commitment. A session's
recording is complete when every camera its venues' inventories name recorded the whole booked slot.
"""

import bisect
import json
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from verifier.draw import verify_draw
from verifier.entry import LogEntry
from verifier.errors import MalformedInput, VerificationError
from verifier.findings import Finding
from verifier.inventory import CameraInventory
from verifier.times import parse_time

SessionCheck = Finding


def recording_continuity(entries: list[LogEntry]) -> list[SessionCheck]:
    cameras: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        if e.record.get("type") == "recording_segment":
            payload = e.record.get("payload", {})
            cameras[(str(e.record.get("venue_id")), str(payload.get("camera_id")))].append(payload)
    checks = []
    for (venue, camera), segments in sorted(cameras.items()):
        problems = _chain_problems(sorted(segments, key=lambda p: int(p.get("segment_index", -1))))
        name = f"recording {venue}/{camera}"
        if problems:
            checks.append(SessionCheck(name, False, "; ".join(problems[:3])))
        else:
            first, last = segments[0], segments[-1]
            checks.append(SessionCheck(name, True, f"{len(segments)} segments, no gap from {first.get('start')} "
                                                   f"to {last.get('end')}"))
    return checks


def _chain_problems(segments: list[dict[str, Any]]) -> list[str]:
    problems = []
    previous: dict[str, Any] | None = None
    for expected, seg in enumerate(segments):
        index = seg.get("segment_index")
        if index != expected:
            problems.append(f"segment {expected} is missing (next present is {index})")
            break
        if previous is None:
            if seg.get("previous_segment") is not None:
                problems.append("segment 0 names a predecessor: the recording's start is missing")
        else:
            if seg.get("previous_segment") != previous.get("sha256"):
                problems.append(f"segment {index} does not chain to segment {index - 1}")
            if _time(seg.get("start")) != _time(previous.get("end")):
                problems.append(f"time gap between segment {index - 1} (ends {previous.get('end')}) "
                                f"and {index} (starts {seg.get('start')})")
        previous = seg
    return problems


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value, "time")
    except MalformedInput:
        return None


BeaconCheck = Callable[[int, bytes], str]
_MAX_CHAIN = 100


def draw_reproducibility(entries: list[LogEntry], beacon_check: BeaconCheck) -> list[SessionCheck]:
    """Re-run every draw result in `entries` (see `verifier.draw` for the algorithm, the venue assignment
    and how a replacement draw is re-run with the earlier selections of its chain excluded).

    `beacon_check(commitment_leaf, beacon)` must prove the beacon is an anchored root covering the leaf.
    """
    by_leaf = {e.leaf_index: e for e in entries}
    results: dict[str, list[LogEntry]] = defaultdict(list)
    for e in entries:
        if e.record.get("type") == "draw_result":
            results[str(e.record.get("payload", {}).get("draw_id"))].append(e)
    checks = []
    for e in entries:
        if e.record.get("type") != "draw_result":
            continue
        result = e.record.get("payload", {})
        name = f"draw {result.get('draw_id')}"
        try:
            commitment = _commitment_of(by_leaf, e)
            c = commitment.record["payload"]
            beacon = bytes.fromhex(str(result.get("beacon")))
            where = beacon_check(commitment.leaf_index, beacon)
            earlier, chain = _earlier_selections(by_leaf, results, commitment)
            if c.get("excluded_digest") is None and result.get("excluded"):
                # Recusals chosen once the beacon is known are a grinding lever: every different set reshuffles
                # the candidates, so the drawer could try sets until the outcome suited it.
                raise VerificationError(f"the result recuses {', '.join(sorted(map(str, result['excluded']))[:5])}, "
                                        "but the commitment fixed no recusals (excluded_digest) before the beacon "
                                        "existed")
            venues = c.get("venues")
            verify_draw(list(c["pool"]), str(c["pool_digest"]), str(c["seed_commitment"]), int(c["count"]),
                        bytes.fromhex(str(result["revealed_seed"])), beacon, list(result["excluded"]),
                        list(result["selected"]), excluded_digest=c.get("excluded_digest"), earlier=earlier,
                        venues=None if venues is None else [(str(q["venue_id"]), int(q["count"])) for q in venues],
                        assignments=result.get("assignments"))
            published = results[str(result.get("draw_id"))]
            # not all of them: n results, n² work
            others = [o.leaf_index for o in published[:6] if o.leaf_index != e.leaf_index][:5]
            if others:
                raise VerificationError(f"draw {result.get('draw_id')} has another published result at leaf "
                                        f"{', '.join(map(str, others))}")
            replaced = f"; replaces {', '.join(c['replaced_experts'])} of {' ← '.join(chain)}" if chain else ""
            checks.append(SessionCheck(name, True, f"{c['count']} of {len(c['pool'])} re-drawn and identical; "
                                                   f"beacon {where}{replaced}"))
        except (VerificationError, KeyError, TypeError, ValueError, AttributeError) as exc:
            checks.append(SessionCheck(name, False, f"not reproducible: {exc}"))
    return checks


def _commitment_of(by_leaf: dict[int, LogEntry], result_entry: LogEntry) -> LogEntry:
    result = result_entry.record["payload"]
    commitment = by_leaf.get(result.get("commitment_leaf"))
    if commitment is None or commitment.record.get("type") != "draw_commitment":
        raise VerificationError(f"its commitment (leaf {result.get('commitment_leaf')}) is not in the extract")
    if commitment.record["payload"].get("draw_id") != result.get("draw_id"):
        raise VerificationError(
            f"leaf {commitment.leaf_index} commits to draw {commitment.record['payload'].get('draw_id')}")
    if commitment.leaf_index >= result_entry.leaf_index:
        raise VerificationError("the result was logged before its commitment")
    if commitment.record["payload"].get("replaces_draw") != result.get("replaces"):
        raise VerificationError(f"the result says it replaces {result.get('replaces')!r}, its commitment says "
                                f"{commitment.record['payload'].get('replaces_draw')!r}")
    return commitment


def _earlier_selections(
    by_leaf: dict[int, LogEntry], results: dict[str, list[LogEntry]], commitment: LogEntry
) -> tuple[set[str], list[str]]:
    """For a replacement draw: every expert selected by the earlier draws of its chain, and the chain's ids."""
    c = commitment.record["payload"]
    earlier: set[str] = set()
    chain: list[str] = []
    previous = c.get("replaces_draw")
    while previous is not None:
        if previous in chain or len(chain) >= _MAX_CHAIN:
            raise VerificationError(f"the replacement chain of draw {c.get('draw_id')} loops or is too long")
        found = results.get(str(previous), [])
        if len(found) != 1:
            raise VerificationError(f"draw {previous}, which this draw replaces experts of, has "
                                    f"{len(found)} results in the extract")
        if found[0].leaf_index >= commitment.leaf_index:
            raise VerificationError(f"the result of draw {previous} was logged after this replacement's commitment")
        earlier_commitment = _commitment_of(by_leaf, found[0])
        if earlier_commitment.record["payload"].get("pool_digest") != c.get("pool_digest"):
            raise VerificationError(f"draw {previous} drew from another pool")
        earlier |= set(found[0].record["payload"]["selected"])
        chain.append(str(previous))
        previous = earlier_commitment.record["payload"].get("replaces_draw")
    missing = set(c.get("replaced_experts") or []) - earlier
    if missing:
        raise VerificationError(f"it replaces {', '.join(sorted(missing))}, whom no earlier draw of its chain selected")
    return earlier, chain


def draw_commitments_resolved(entries: list[LogEntry]) -> list[SessionCheck]:
    """Every committed draw was drawn, or cancelled by its committer with a reason. A committer who could
    keep a commitment quiet after seeing its beacon could commit several draws and publish the one it liked.

    So a draw id is committed once, and a commitment is resolved only by a result naming its own leaf: a
    result "for the draw id" would also have resolved a second commitment under the same id."""
    drawn = {e.record.get("payload", {}).get("commitment_leaf")
             for e in entries if e.record.get("type") == "draw_result"}
    commitments: dict[str, list[int]] = defaultdict(list)
    for e in entries:
        if e.record.get("type") == "draw_commitment":
            commitments[_draw_id(e)].append(e.leaf_index)
    cancellations: dict[str, list[LogEntry]] = defaultdict(list)
    for e in entries:
        if e.record.get("type") == "draw_cancellation":
            cancellations[_draw_id(e)].append(e)
    checks = []
    for e in entries:
        if e.record.get("type") != "draw_commitment":
            continue
        draw_id = _draw_id(e)
        name = f"draw {draw_id} committed at leaf {e.leaf_index}"
        if len(commitments[draw_id]) > 1:
            checks.append(SessionCheck(name, False, f"draw {draw_id} is committed more than once (leaves "
                                                    f"{', '.join(map(str, commitments[draw_id][:5]))}): "
                                                    "its committer could publish the outcome it liked"))
            continue
        if e.leaf_index in drawn:
            continue
        valid = [c for c in cancellations.get(draw_id, []) if c.submitter == e.submitter and c.leaf_index > e.leaf_index
                 and isinstance(c.record.get("payload", {}).get("reason"), str)
                 and c.record["payload"]["reason"].strip()]
        if valid:
            checks.append(SessionCheck(name, True, f"cancelled at leaf {valid[0].leaf_index} by {valid[0].submitter}: "
                                                   f"{valid[0].record['payload']['reason']}"))
        else:
            checks.append(SessionCheck(name, False, "has no result and no reasoned cancellation signed by its "
                                                    f"committer {e.submitter}: an outcome may have been withheld"))
    return checks


SCHEDULE_GRACE = timedelta(minutes=10)  # a scheduled draw is committed within this after its time


def draw_schedules_kept(entries: list[LogEntry]) -> list[SessionCheck]:
    """专家预约抽取: each scheduled draw was committed once, by the scheduler that announced it, with the
    announced criteria, count and venue quotas, no earlier than its time and within SCHEDULE_GRACE after it
    (by the notary's receipt time, not the hub's own clock). A commitment naming a schedule that is not in the
    extract fails; a schedule not yet due when the extract's last record was received is said to be pending."""
    schedules: dict[str, list[LogEntry]] = defaultdict(list)
    carried: dict[str, list[LogEntry]] = defaultdict(list)
    for e in entries:
        payload = e.record.get("payload", {})
        if e.record.get("type") == "draw_schedule":
            schedules[_text(payload.get("schedule_id"))].append(e)
        elif e.record.get("type") == "draw_commitment" and "schedule_id" in payload:
            carried[_text(payload.get("schedule_id"))].append(e)
    latest = max((t for t in (_time(e.received_at) for e in entries) if t is not None), default=None)
    checks = []
    for schedule_id, announced in schedules.items():
        schedule = announced[0]
        name = f"scheduled draw {schedule_id} (leaf {schedule.leaf_index})"
        if len(announced) > 1:
            checks.append(SessionCheck(name, False, f"scheduled more than once (leaves "
                                                    f"{', '.join(str(a.leaf_index) for a in announced[:5])})"))
            continue
        payload = schedule.record["payload"]
        draw_at = _time(payload.get("draw_at"))
        if draw_at is None or draw_at.tzinfo is None:
            checks.append(SessionCheck(name, False, f"draw_at {payload.get('draw_at')!r:.40} is not a time"))
            continue
        commitments = carried.pop(schedule_id, [])
        if not commitments:
            due = draw_at + SCHEDULE_GRACE
            if latest is not None and latest < due:
                checks.append(SessionCheck(name, True, f"pending: due at {payload['draw_at']}, after the extract's "
                                                       f"last record ({latest.isoformat()})"))
            else:
                checks.append(SessionCheck(name, False, f"due at {payload['draw_at']} but never committed"))
            continue
        if len(commitments) > 1:
            checks.append(SessionCheck(name, False, "committed more than once (leaves "
                                                    f"{', '.join(str(c.leaf_index) for c in commitments[:5])}): its "
                                                    "committer could publish the outcome it liked"))
            continue
        checks.append(SessionCheck(name, *_schedule_kept(schedule, draw_at, commitments[0])))
    for schedule_id, commitments in carried.items():
        for c in commitments:
            checks.append(SessionCheck(f"draw committed at leaf {c.leaf_index}", False,
                                       f"names schedule {schedule_id}, which is not in the extract"))
    return checks


def _schedule_kept(schedule: LogEntry, draw_at: datetime, commitment: LogEntry) -> tuple[bool, str]:
    announced, committed = schedule.record["payload"], commitment.record["payload"]
    received = _time(commitment.received_at)
    where = f"commitment at leaf {commitment.leaf_index}"
    if commitment.leaf_index < schedule.leaf_index:
        return False, f"{where} comes before the schedule it names"
    if commitment.submitter != schedule.submitter:
        return False, f"{where} was submitted by {commitment.submitter}, the schedule by {schedule.submitter}"
    if commitment.record.get("session_id") != schedule.record.get("session_id"):
        return False, f"{where} is for another session than the schedule"
    for field in ("criteria", "count", "venues"):
        if _key(committed.get(field)) != _key(announced.get(field)):
            return False, f"{where} has other {field} than the schedule announced"
    if received is None or received.tzinfo is None:
        return False, f"{where} has no receipt time"
    if received < draw_at:
        return False, (f"{where} was received at {commitment.received_at}, before its scheduled time "
                       f"{announced['draw_at']}")
    if received > draw_at + SCHEDULE_GRACE:
        return False, (f"{where} was received at {commitment.received_at}, more than "
                       f"{int(SCHEDULE_GRACE.total_seconds() // 60)} minutes after its scheduled time "
                       f"{announced['draw_at']}")
    return True, (f"committed at leaf {commitment.leaf_index}, "
                  f"{(received - draw_at).total_seconds():.1f} s after its time")


def _text(value: object) -> str:
    """An id as text; any other JSON value is kept apart from every text id (7 is not "7")."""
    return value if isinstance(value, str) else f"<not text: {json.dumps(value)[:40]}>"


def _draw_id(entry: LogEntry) -> str:
    """A draw's id as text; any other JSON value is kept apart from every text id (7 is not "7")."""
    return _text(entry.record.get("payload", {}).get("draw_id"))


def _key(value: Any) -> str:
    """A JSON value as a dictionary key that keeps values of different types apart ("1" is not 1)."""
    return json.dumps(value, sort_keys=True)


def archive_completeness(entries: list[LogEntry], leaf_hashes: dict[int, bytes]) -> list[SessionCheck]:
    """Each session's archive lists every record of the session before it, with its leaf hash, and nothing of
    the session comes after it. `leaf_hashes` are the extract's (already proven) leaf hashes by leaf index."""
    checks = []
    # Grouped once: a hub can log many archives, and a scan of the whole extract per archive made an extract
    # of a few hundred thousand records take hours to verify.
    by_session: dict[str, list[LogEntry]] = defaultdict(list)
    for e in entries:
        by_session[_key(e.record.get("session_id"))].append(e)
    seqs = {session: [e.leaf_index for e in found] for session, found in by_session.items()}  # in leaf order
    for archive in (e for e in entries if e.record.get("type") == "archive"):
        session = archive.record.get("session_id")
        payload = archive.record.get("payload", {})
        name = f"archive {payload.get('archive_id')} of session {session}"
        leaves, hashes = payload.get("leaves"), payload.get("leaf_hashes")
        if not isinstance(leaves, list) or not isinstance(hashes, list) or len(leaves) != len(hashes):
            checks.append(SessionCheck(name, False, "archive lists leaves and leaf hashes of different lengths"))
            continue
        problems = []
        listed = dict(zip(leaves, hashes, strict=True))
        for leaf, digest in listed.items():
            have = leaf_hashes.get(leaf) if isinstance(leaf, int) else None
            if have is None:
                problems.append(f"archived leaf {leaf} is not in the extract")
            elif have.hex() != digest:
                problems.append(f"leaf {leaf} is not the record that was archived")
        of_session = by_session.get(_key(session), [])
        after = bisect.bisect_right(seqs.get(_key(session), []), archive.leaf_index)
        late = len(of_session) - after  # counted, not sliced: a slice per archive is quadratic again
        if not late:
            # Only a session's last archive has nothing of the session after it, so this scan runs once per
            # session (every earlier archive fails below without it).
            unlisted = [e.leaf_index for e in of_session[:after]
                        if e.leaf_index != archive.leaf_index and e.leaf_index not in listed]
            if unlisted:
                problems.append(f"records {', '.join(map(str, unlisted[:5]))} of the session are missing from "
                                "its archive")
        else:
            first = of_session[after]
            problems.append(f"{late} record(s) of the session were logged after its archive "
                            f"(first: leaf {first.leaf_index}, {first.record.get('type')})")
        if problems:
            checks.append(SessionCheck(name, False, "; ".join(problems[:4])))
        else:
            checks.append(SessionCheck(name, True, f"lists all {len(listed)} records of the session before it; "
                                                   "nothing of the session after it"))
    return checks


_ACTIVE_BOOKING = ("reserved", "offered", "confirmed", "changed")


def _bookings(entries: list[LogEntry]) -> dict[tuple[str, str], list[LogEntry]]:
    """Booking records by (session, booked venue), in leaf order."""
    bookings: dict[tuple[str, str], list[LogEntry]] = defaultdict(list)
    for e in entries:
        if e.record.get("type") == "booking":
            bookings[(str(e.record.get("session_id")), str(e.record.get("payload", {}).get("venue_id")))].append(e)
    return bookings


def recordings_within_booked_slots(entries: list[LogEntry]) -> list[SessionCheck]:
    """Every recording segment of a session lies inside the slot its venue booked for that session. An extract
    with no booking at all (a project whose slots were not booked through the hub) has nothing to check."""
    bookings = _bookings(entries)
    booked_seqs = {key: [b.leaf_index for b in found] for key, found in bookings.items()}  # entries come in leaf order
    outside: dict[tuple[str, str], list[str]] = defaultdict(list)
    counted: dict[tuple[str, str], int] = defaultdict(int)
    for e in entries:
        session, venue = str(e.record.get("session_id")), str(e.record.get("venue_id"))
        # Once the project books slots, every segment needs one: skipping sessions without a booking let a
        # camera file its segments under a session id nobody booked and so escape the check.
        if e.record.get("type") != "recording_segment" or not bookings:
            continue
        counted[(session, venue)] += 1
        # The latest booking before the segment, found by bisection: a scan per segment was quadratic in
        # the number of bookings a hub can log.
        booked = bookings.get((session, venue), [])
        at = bisect.bisect_left(booked_seqs.get((session, venue), []), e.leaf_index)
        payload = e.record.get("payload", {})
        if at == 0 or booked[at - 1].record["payload"].get("action") not in _ACTIVE_BOOKING:
            outside[(session, venue)].append(f"segment {payload.get('segment_index')} has no booked slot")
            continue
        slot = booked[at - 1].record["payload"]
        if not _within(payload.get("start"), payload.get("end"), slot.get("slot_start"), slot.get("slot_end")):
            outside[(session, venue)].append(f"{payload.get('camera_id')} segment {payload.get('segment_index')} "
                                             f"({payload.get('start')} – {payload.get('end')}) is outside the slot "
                                             f"{slot.get('slot_start')} – {slot.get('slot_end')}")
    checks = []
    for key, n in sorted(counted.items()):
        name = f"recordings of {key[0]} at {key[1]} within the booked slot"
        problems = outside.get(key, [])
        if problems:
            checks.append(SessionCheck(name, False, f"{len(problems)} of {n} segments: " + "; ".join(problems[:3])))
        else:
            checks.append(SessionCheck(name, True, f"all {n} segments"))
    return checks


def _within(start: Any, end: Any, slot_start: Any, slot_end: Any) -> bool:
    times = [_time(v) for v in (start, end, slot_start, slot_end)]
    aware = [t for t in times if t is not None and t.tzinfo is not None]
    if len(aware) != 4:
        return False
    return aware[2] <= aware[0] <= aware[1] <= aware[3]


# A recorder starts and stops on its own clock, not on the hub's: a slot edge within this of the first
# segment's start (or the last one's end) counts as recorded. It matches the capture/receipt skew allowed.
SLOT_EDGE_TOLERANCE = timedelta(seconds=5)


def recording_completeness(entries: list[LogEntry]) -> list[SessionCheck]:
    """Per session and venue, the latest `camera_inventory` names the cameras that must record the venue's
    booked slot: each must have reported, from the slot's opening to its closing, without a gap; a camera
    with a microphone must have logged sound in every segment; no camera outside the inventory may stand
    in. The inventory itself must see the room all round and be of the booked room. Once a project logs any
    inventory, a venue recording a session without one fails: its cameras would escape the check.

    How one camera's segments chain together (index, hash, adjacent times) is `recording_continuity`'s."""
    inventories: dict[tuple[str, str], LogEntry] = {}
    for e in entries:
        if e.record.get("type") == "camera_inventory":
            inventories[(str(e.record.get("session_id")), str(e.record.get("venue_id")))] = e  # the latest wins
    if not inventories:
        return []
    segments: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for e in entries:
        if e.record.get("type") == "recording_segment":
            payload = e.record.get("payload", {})
            key = (str(e.record.get("session_id")), str(e.record.get("venue_id")))
            segments[key][str(payload.get("camera_id"))].append(payload)
    bookings = _bookings(entries)
    checks: list[SessionCheck] = []
    for key in sorted(set(inventories) | set(segments)):
        session, venue = key
        found = inventories.get(key)
        if found is None:
            checks.append(SessionCheck(f"recording inventory of {session} at {venue}", False,
                                       f"{len(segments[key])} camera(s) recorded, but no camera inventory of the "
                                       "venue was logged for the session: nothing says which cameras must record"))
            continue
        checks += _completeness_of(session, venue, found, segments.get(key, {}), bookings.get(key, []))
    return checks


def _completeness_of(session: str, venue: str, inventory_entry: LogEntry,
                     cameras: dict[str, list[dict[str, Any]]], bookings: list[LogEntry]) -> list[SessionCheck]:
    name = f"recording inventory of {session} at {venue}"
    try:
        inventory = CameraInventory.parse(inventory_entry.record.get("payload"),
                                          f"inventory at leaf {inventory_entry.leaf_index}")
    except VerificationError as exc:
        return [SessionCheck(name, False, str(exc))]
    active = [b for b in bookings if b.record["payload"].get("action") in _ACTIVE_BOOKING]
    slot = active[-1].record["payload"] if active and bookings[-1] is active[-1] else None
    problems = []
    if inventory.uncovered():
        problems.append(f"the cameras of room {inventory.room!r} leave {inventory.describe_uncovered()} unseen "
                        "(the plan asks for 360°)")
    if slot is None:
        problems.append("the venue has no booked slot in the session to record")
    elif slot.get("room") != inventory.room:
        problems.append(f"the inventory is of room {inventory.room!r}, the session is booked in {slot.get('room')!r}")
    checks = [SessionCheck(name, not problems, "; ".join(problems) if problems else
                           f"room {inventory.room!r}: {len(inventory.cameras)} cameras, 360° covered")]
    for camera_id in sorted(set(cameras) - {c.camera_id for c in inventory.cameras}):
        checks.append(SessionCheck(f"recording coverage {session} {venue}/{camera_id}", False,
                                   f"{len(cameras[camera_id])} segments from a camera that is not in the "
                                   f"inventory of room {inventory.room!r}"))
    for camera in inventory.cameras:
        where = f"recording coverage {session} {venue}/{camera.camera_id}"
        recorded = cameras.get(camera.camera_id, [])
        if not recorded:
            checks.append(SessionCheck(where, False, "never reported: the inventory names it, the log has no "
                                                     "segment of it in this session"))
            continue
        if slot is None:
            checks.append(SessionCheck(where, False, "no booked slot to check the recording against"))
            continue
        found = _coverage_problems(recorded, slot.get("slot_start"), slot.get("slot_end"))
        if camera.audio:
            silent = [p.get("segment_index") for p in recorded if "audio" not in _stream_kinds(p)]
            if silent:
                found.append(f"has a microphone, but {len(silent)} segment(s) hold no sound (first: segment "
                             f"{silent[0]})")
        checks.append(SessionCheck(where, not found, "; ".join(found[:3]) if found else
                                   f"{len(recorded)} segments cover the slot {slot.get('slot_start')} – "
                                   f"{slot.get('slot_end')}" + (" with sound" if camera.audio else "")))
    return checks


def _stream_kinds(payload: dict[str, Any]) -> set[str]:
    streams = payload.get("streams")
    return {str(s.get("kind")) for s in streams if isinstance(s, dict)} if isinstance(streams, list) else set()


def _coverage_problems(segments: list[dict[str, Any]], slot_start: Any, slot_end: Any) -> list[str]:
    """Where the slot is not recorded: a late start, an early end, and every gap between segments."""
    opens, closes = _time(slot_start), _time(slot_end)
    if opens is None or closes is None or opens.tzinfo is None or closes.tzinfo is None:
        return [f"the booked slot {slot_start} – {slot_end} is not a pair of times with offsets"]
    spans = []
    for p in segments:
        start, end = _time(p.get("start")), _time(p.get("end"))
        if start is None or end is None or start.tzinfo is None or end.tzinfo is None or end < start:
            return [f"segment {p.get('segment_index')} has no valid time span ({p.get('start')} – {p.get('end')})"]
        spans.append((start, end))
    spans.sort()
    problems = []
    if spans[0][0] > opens + SLOT_EDGE_TOLERANCE:
        problems.append(f"starts at {spans[0][0].isoformat()}, {_seconds(spans[0][0] - opens)} after the slot "
                        f"opens ({slot_start})")
    reached = spans[0][1]
    gaps = []
    for start, end in spans[1:]:
        if start > reached:
            gaps.append(f"{reached.isoformat()} – {start.isoformat()} ({_seconds(start - reached)})")
        reached = max(reached, end)
    if gaps:
        problems.append(f"{len(gaps)} gap(s) in the recording: " + "; ".join(gaps[:3]))
    if reached < closes - SLOT_EDGE_TOLERANCE:
        problems.append(f"ends at {reached.isoformat()}, {_seconds(closes - reached)} before the slot closes "
                        f"({slot_end})")
    return problems


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():g} s"


def media_arrivals(entries: list[LogEntry]) -> list[SessionCheck]:
    """Per camera that forwarded segments to the province's media store: each `media_arrival` names a segment
    that camera logged (its index and hash), and how many of its segments are in the store is told. A
    camera without arrivals is not judged here: forwarding is the venue's safeguard, and `--media` checks
    whatever copy the user has."""
    logged: dict[tuple[str, str], dict[Any, Any]] = defaultdict(dict)
    arrived: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        payload = e.record.get("payload", {})
        camera = (str(e.record.get("venue_id")), str(payload.get("camera_id")))
        if e.record.get("type") == "recording_segment":
            logged[camera][payload.get("segment_index")] = payload.get("sha256")
        elif e.record.get("type") == "media_arrival":
            arrived[camera].append(payload)
    checks = []
    for (venue, camera_id), arrivals in sorted(arrived.items()):
        segments = logged.get((venue, camera_id), {})
        strangers = [a.get("segment_index") for a in arrivals
                     if segments.get(a.get("segment_index"), object()) != a.get("segment_sha256")]
        name = f"recording {venue}/{camera_id} in the media store"
        if strangers:
            checks.append(SessionCheck(name, False, f"{len(strangers)} arrival(s) name no segment this camera "
                                                    f"logged (first: segment {strangers[0]})"))
        else:
            present = {a.get("segment_index") for a in arrivals}
            checks.append(SessionCheck(name, True, f"{len(present)} of {len(segments)} segments arrived, each "
                                                   "with the store's checksum"))
    return checks
