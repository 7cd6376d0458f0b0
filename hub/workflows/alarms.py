"""What the consoles watch, from what the hub already holds: each camera's recording health, and a
session's alarms (recording gaps, a silent recorder, late or missing check-ins, overdue objections,
anchor lag, a venue offline).

Everything here is read from the hub's own state and its mirror of the log; the only outside read is the
notary's public `/v1/log` (how far it has anchored). Nothing is decided here: an alarm says what was
seen, with the leaves it rests on, for a person to look at.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import db
from hub.errors import HubError
from hub.service import Hub
from hub.workflows.cases import OPEN
from verifier.errors import MalformedInput
from verifier.times import parse_time

GAP_SECONDS = 2.0  # between one segment's end and the next one's start
SILENT_SECONDS = 120.0  # no segment from a camera for this long, while its slot runs
CHECKIN_GRACE_SECONDS = 15 * 60  # after the slot starts
OFFLINE_KINDS = ("power_failure", "network_failure")


@dataclass(frozen=True)
class Alarm:
    """One thing a supervisor should look at: `kind` names it, `subject` what it is about, `detail` the facts."""

    kind: str  # recording_gap | recorder_silent | late_checkin | missing_checkin | objection_overdue |
    #            anchor_lag | venue_offline | notary_unreachable | receipt_not_included | receipt_unconfirmed
    subject: str
    detail: str
    leaf_index: int | None = None


@dataclass
class CameraHealth:
    """A camera's recording as the log shows it: segments delivered, the last one, its delivery delay
    (receipt time after capture end: how long the segment waited in the recorder's queue) and the gaps."""

    camera_id: str
    venue_id: str
    device_id: str
    segments: int = 0
    last_end: str | None = None
    last_received: str | None = None
    delay_seconds: float | None = None
    gaps: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AnchorState:
    size: int
    anchored_size: int
    max_merge_delay: int


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value, "time")
    except MalformedInput:
        return None


def _received(row: db.EvidenceRow) -> str:
    """The receipt time of a mirrored leaf (its receipt read strictly), or what is wrong with the hub's copy."""
    try:
        return row.received_at
    except MalformedInput as exc:
        return f"(unreadable receipt: {exc})"


def cameras(s: Session, session_id: str, venue_id: str | None = None) -> list[CameraHealth]:
    """Each camera of the session (of `venue_id` only, if given), from its recording_segment records."""
    query = select(db.EvidenceRow).where(db.EvidenceRow.session_id == session_id,
                                         db.EvidenceRow.type == "recording_segment")
    # A camera is one recorder's camera: two venues may both call theirs "cam1".
    by_camera: dict[tuple[str, str], CameraHealth] = {}
    previous: dict[tuple[str, str], dict[str, Any]] = {}
    for row in s.scalars(query.order_by(db.EvidenceRow.leaf_index)):
        record, payload = row.record, row.record.get("payload") or {}
        if venue_id is not None and record.get("venue_id") != venue_id:
            continue
        camera = (str(record.get("device_id")), str(payload.get("camera_id")))
        health = by_camera.setdefault(camera, CameraHealth(camera[1], str(record.get("venue_id")), camera[0]))
        health.segments += 1
        before = previous.get(camera)
        if before is not None:
            index, last_index = payload.get("segment_index"), before.get("segment_index")
            start, last_end = _time(payload.get("start")), _time(before.get("end"))
            if isinstance(index, int) and isinstance(last_index, int) and index != last_index + 1:
                health.gaps.append(f"#{last_index} → #{index}")
            elif start is not None and last_end is not None and (start - last_end).total_seconds() > GAP_SECONDS:
                health.gaps.append(f"{before.get('end')} → {payload.get('start')}")
        previous[camera] = payload
        health.last_end = str(payload.get("end"))
        health.last_received = _received(row)
        end, received = _time(payload.get("end")), _time(_received(row))
        if end is not None and received is not None:
            health.delay_seconds = round((received - end).total_seconds(), 1)
    return sorted(by_camera.values(), key=lambda c: (c.venue_id, c.camera_id))


def anchor_state(hub: Hub) -> AnchorState | None:
    """How far the notary has anchored (its public /v1/log), or None when it cannot be asked."""
    try:
        log = hub.notary_get("/v1/log")
    except HubError:
        return None
    return AnchorState(int(log["size"]), int(log["anchored_size"]), int(log["max_merge_delay"]))


def session_alarms(hub: Hub, s: Session, session: db.EvalSession, anchor: AnchorState | None) -> list[Alarm]:
    now = hub.now()
    alarms: list[Alarm] = []
    running = session.status == "open" and _between(now, session.slot_start, session.slot_end)
    for camera in cameras(s, session.session_id):
        alarms += [Alarm("recording_gap", f"{camera.device_id} {camera.camera_id}", gap) for gap in camera.gaps]
        last = _time(camera.last_end)
        if running and last is not None and (now - last).total_seconds() > SILENT_SECONDS:
            alarms.append(Alarm("recorder_silent", f"{camera.device_id} {camera.camera_id}", f"{camera.last_end}"))
    alarms += _checkin_alarms(s, session, now)
    for o in s.scalars(select(db.Objection).where(db.Objection.session_id == session.session_id)
                       .order_by(db.Objection.objection_id)):
        if o.status in OPEN and (o.alarm_leaf is not None or o.deadline_epoch < now.timestamp()):
            alarms.append(Alarm("objection_overdue", o.objection_id, o.deadline, o.alarm_leaf))
    for i in s.scalars(select(db.Incident).where(db.Incident.session_id == session.session_id,
                                                 db.Incident.ended_at.is_(None),
                                                 db.Incident.kind.in_(OFFLINE_KINDS))
                       .order_by(db.Incident.incident_id)):
        alarms.append(Alarm("venue_offline", i.venue_id, f"{i.kind} {i.started_at}", i.leaves[0] if i.leaves else None))
    alarms += _anchor_alarms(s, session, anchor, now)
    alarms += _inclusion_alarms(s, session, anchor, now)
    return alarms


def _between(now: datetime, start: str, end: str) -> bool:
    a, b = _time(start), _time(end)
    return a is not None and b is not None and a <= now <= b


def _checkin_alarms(s: Session, session: db.EvalSession, now: datetime) -> list[Alarm]:
    start = _time(session.slot_start)
    if start is None:
        return []
    alarms = []
    checked: dict[str, db.CheckIn] = {}
    for c in s.scalars(select(db.CheckIn).where(db.CheckIn.session_id == session.session_id).order_by(db.CheckIn.id)):
        checked[c.expert_id] = c
        row = s.get(db.EvidenceRow, c.leaf)
        at = _time(row.occurred_at) if row is not None else None
        if at is not None and at > start:
            alarms.append(Alarm("late_checkin", c.expert_id, f"{row.occurred_at if row else ''} > {session.slot_start}",
                                c.leaf))
    if session.status == "open" and (now - start).total_seconds() > CHECKIN_GRACE_SECONDS:
        for sel in s.scalars(select(db.Selection).where(db.Selection.session_id == session.session_id,
                                                        db.Selection.status == "selected")):
            if sel.expert_id not in checked:
                alarms.append(Alarm("missing_checkin", sel.expert_id, f"{sel.venue_id}, {session.slot_start}"))
    return alarms


def _anchor_alarms(s: Session, session: db.EvalSession, anchor: AnchorState | None,
                   now: datetime) -> list[Alarm]:
    """A receipt promises anchoring within the log's maximum merge delay: the session's oldest leaf that is
    not anchored after that long is an alarm; so is a notary that cannot be asked."""
    if anchor is None:
        return [Alarm("notary_unreachable", session.session_id, "GET /v1/log")]
    oldest = s.scalars(select(db.EvidenceRow).where(db.EvidenceRow.session_id == session.session_id,
                                                    db.EvidenceRow.leaf_index >= anchor.anchored_size)
                       .order_by(db.EvidenceRow.leaf_index)).first()
    if oldest is None:
        return []
    received = _time(_received(oldest))
    if received is None or (now - received).total_seconds() <= anchor.max_merge_delay:
        return []
    return [Alarm("anchor_lag", f"leaf {oldest.leaf_index}",
                  f"{_received(oldest)}; anchored {anchor.anchored_size}/{anchor.size}",
                  oldest.leaf_index)]


def _inclusion_alarms(s: Session, session: db.EvalSession, anchor: AnchorState | None,
                      now: datetime) -> list[Alarm]:
    """The notary's promise checked by the hub (`hub.workflows.inclusion`): each receipt of the session whose
    leaf the notary's checkpoint does not hold (or whose checkpoint forked) is an alarm naming the leaf and the
    receipt; so is the oldest receipt not yet seen in a checkpoint after the log's maximum merge delay."""
    alarms = []
    for row, check in s.execute(select(db.EvidenceRow, db.InclusionCheck)
                                .join(db.InclusionCheck, db.InclusionCheck.leaf_index == db.EvidenceRow.leaf_index)
                                .where(db.EvidenceRow.session_id == session.session_id,
                                       db.InclusionCheck.status == "broken")
                                .order_by(db.EvidenceRow.leaf_index)):
        alarms.append(Alarm("receipt_not_included", f"leaf {row.leaf_index}",
                            f"{row.type} receipt of {_received(row)}, leaf hash {row.leaf_hash}: "
                            f"{check.detail}", row.leaf_index))
    if anchor is None:
        return alarms
    oldest = s.scalars(select(db.EvidenceRow).where(
        db.EvidenceRow.session_id == session.session_id,
        db.EvidenceRow.leaf_index.not_in(select(db.InclusionCheck.leaf_index)))
        .order_by(db.EvidenceRow.leaf_index)).first()
    received = _time(_received(oldest)) if oldest is not None else None
    if oldest is not None and received is not None and (now - received).total_seconds() > anchor.max_merge_delay:
        alarms.append(Alarm("receipt_unconfirmed", f"leaf {oldest.leaf_index}",
                            f"{oldest.type} receipt of {_received(oldest)}, leaf hash "
                            f"{oldest.leaf_hash}: not in a signed checkpoint of the notary after the log's maximum "
                            f"merge delay ({anchor.max_merge_delay} s)", oldest.leaf_index))
    return alarms
