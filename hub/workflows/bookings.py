"""Venues, their rooms' cameras, sessions and venue booking (场地预约, 要约发起和确认).

The main venue reserves its own room for the session and offers the session to secondary venues
(offered); a secondary venue confirms or declines; the main venue may change (new room or slot: the
booking must be confirmed again) or cancel. An active booking (reserved, offered, confirmed) of a room
blocks every overlapping slot of that room. Each venue registers the cameras of each room (evidence: a
`camera_inventory` record of the registry); when a session books the room (reserved, or confirmed by a
secondary venue) the inventory is logged into the session too, naming the cameras that must record it.
"""

from datetime import UTC
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import db
from hub.api.models import BookingActionIn, BookingChangeIn, CamerasIn, OfferIn, SessionIn, VenueIn
from hub.errors import Conflict, Forbidden, Invalid, NotFound
from hub.service import Hub
from notary.access import Role
from verifier.errors import MalformedInput
from verifier.inventory import CameraInventory
from verifier.times import format_time, parse_time

ACTIVE = ("reserved", "offered", "confirmed")
ALLOWED = {  # action -> states it may start from
    "confirm": {"offered"},
    "decline": {"offered"},
    "cancel": {"reserved", "offered", "confirmed"},
    "change": {"reserved", "offered", "confirmed"},
}
PAST = {"confirm": "confirmed", "decline": "declined", "cancel": "cancelled", "change": "changed"}


def _utc(value: str) -> str:
    return format_time(parse_time(value, "slot time").astimezone(UTC))


def _slot(start: str, end: str) -> tuple[str, str]:
    a, b = _utc(start), _utc(end)
    if b <= a:
        raise Invalid(f"slot_end {end} must be after slot_start {start}")
    return a, b


def venue_view(v: db.Venue) -> dict[str, Any]:
    return {"venue_id": v.venue_id, "name": v.name, "city": v.city, "rooms": v.rooms}


def booking_view(b: db.Booking) -> dict[str, Any]:
    return {"booking_id": b.booking_id, "session_id": b.session_id, "main_venue_id": b.main_venue_id,
            "venue_id": b.venue_id, "room": b.room, "slot_start": b.slot_start, "slot_end": b.slot_end,
            "status": b.status, "history": b.history}


def session_view(s: db.EvalSession) -> dict[str, Any]:
    return {"session_id": s.session_id, "project_id": s.project_id, "main_venue_id": s.main_venue_id,
            "room": s.room, "slot_start": s.slot_start, "slot_end": s.slot_end, "status": s.status,
            "archive_leaf": s.archive_leaf, "bidders": [b["name"] for b in s.bidders]}


def add_venue(hub: Hub, body: VenueIn) -> dict[str, Any]:
    with hub.lock, hub.db() as s:
        venue = s.get(db.Venue, body.venue_id)
        if venue is None:
            venue = db.Venue(venue_id=body.venue_id, name=body.name, city=body.city, rooms=list(body.rooms))
            s.add(venue)
        else:
            venue.name, venue.city, venue.rooms = body.name, body.city, list(body.rooms)
        s.commit()
        return venue_view(venue)


def register_cameras(hub: Hub, venue_id: str, room: str, body: CamerasIn) -> dict[str, Any]:
    """Record a room's cameras; every open session that has the room booked now names them too."""
    try:
        inventory = CameraInventory.parse({"room": room, "cameras": [c.model_dump() for c in body.cameras]})
    except MalformedInput as exc:
        raise Invalid(str(exc)) from exc
    if inventory.uncovered():
        raise Invalid(f"the cameras of room {room!r} leave {inventory.describe_uncovered()} unseen; the plan asks "
                      "for 360° coverage of an evaluation room")
    with hub.lock, hub.db() as s:
        _room_of(s, venue_id, room)
        receipt = hub.write_registry(s, inventory.encode(), kind="camera_inventory", venue_id=venue_id)
        s.merge(db.RoomCameras(venue_id=venue_id, room=room, inventory=inventory.encode(),
                               registry_leaf=receipt.leaf_index))
        booked = s.scalars(select(db.Booking).where(
            db.Booking.venue_id == venue_id, db.Booking.room == room,
            db.Booking.status.in_(("reserved", "confirmed")))).all()
        sessions = []
        for booking in booked:
            session = s.get(db.EvalSession, booking.session_id)
            if session is not None and session.status != "archived":
                _log_cameras(hub, s, session, booking)
                sessions.append(session.session_id)
        s.commit()
        return {**cameras_view(venue_id, inventory), "registry_leaf": receipt.leaf_index,
                "sessions": sorted(sessions)}


def cameras_view(venue_id: str, inventory: CameraInventory) -> dict[str, Any]:
    return {"venue_id": venue_id, **inventory.encode()}


def _log_cameras(hub: Hub, s: Session, session: db.EvalSession, booking: db.Booking) -> None:
    """Name in the session the cameras that must record the booked room, if its venue registered them."""
    cameras = s.get(db.RoomCameras, (booking.venue_id, booking.room))
    if cameras is not None:
        hub.write(s, session, "camera_inventory", booking.venue_id, cameras.inventory)


def _room_of(s: Session, venue_id: str, room: str) -> db.Venue:
    venue = s.get(db.Venue, venue_id)
    if venue is None:
        raise NotFound(f"venue {venue_id} does not exist")
    if room not in venue.rooms:
        raise Invalid(f"venue {venue_id} has no room {room!r} (rooms: {', '.join(venue.rooms)})")
    return venue


def _clash(s: Session, venue_id: str, room: str, start: str, end: str, ignore: str | None = None) -> None:
    query = select(db.Booking).where(
        db.Booking.venue_id == venue_id, db.Booking.room == room, db.Booking.status.in_(ACTIVE),
        db.Booking.start_utc < end, db.Booking.end_utc > start)
    for other in s.scalars(query):
        if other.booking_id != ignore:
            raise Conflict(f"room {room!r} of {venue_id} is already booked from {other.slot_start} to "
                           f"{other.slot_end} by booking {other.booking_id} (session {other.session_id}, "
                           f"{other.status}); a room and slot cannot be booked twice")


def _payload(b: db.Booking, action: str, reason: str | None = None, tenderer_id: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"booking_id": b.booking_id, "action": action, "main_venue_id": b.main_venue_id,
                               "venue_id": b.venue_id, "room": b.room, "slot_start": b.slot_start,
                               "slot_end": b.slot_end}
    if reason:
        payload["reason"] = reason
    if tenderer_id:
        payload["tenderer_id"] = tenderer_id
    return payload


def create_session(hub: Hub, body: SessionIn) -> dict[str, Any]:
    """Open a session; the main venue's room is reserved for its slot (evidence: booking `reserved`)."""
    with hub.lock, hub.db() as s:
        if s.get(db.EvalSession, body.session_id) is not None:
            raise Conflict(f"session {body.session_id} already exists")
        _room_of(s, body.main_venue_id, body.room)
        if body.tenderer_id is not None:
            tenderer = hub.principals.get(body.tenderer_id)
            if tenderer is None or tenderer.role is not Role.TENDERER or body.project_id not in tenderer.projects:
                raise Invalid(f"{body.tenderer_id} is not a tenderer registered for project {body.project_id}")
        start, end = _slot(body.slot_start, body.slot_end)
        _clash(s, body.main_venue_id, body.room, start, end)
        session = db.EvalSession(
            session_id=body.session_id, project_id=body.project_id, main_venue_id=body.main_venue_id, room=body.room,
            slot_start=body.slot_start, slot_end=body.slot_end, bidders=[b.model_dump() for b in body.bidders],
            status="open", tenderer_id=body.tenderer_id)
        s.add(session)
        booking = db.Booking(
            booking_id=hub.next_id(s, "B"), session_id=session.session_id, main_venue_id=body.main_venue_id,
            venue_id=body.main_venue_id, room=body.room, slot_start=body.slot_start, slot_end=body.slot_end,
            start_utc=start, end_utc=end, status="reserved", history=[])
        receipt = hub.write(s, session, "booking", body.main_venue_id,
                            _payload(booking, "reserved", tenderer_id=body.tenderer_id))
        booking.history = [{"action": "reserved", "leaf": receipt.leaf_index}]
        s.add(booking)
        _log_cameras(hub, s, session, booking)
        s.commit()
        return {**session_view(session), "main_booking": booking_view(booking)}


def offer(hub: Hub, session_id: str, body: OfferIn) -> dict[str, Any]:
    with hub.lock, hub.db() as s:
        session = hub.open_session(s, session_id)
        if body.venue_id == session.main_venue_id:
            raise Invalid(f"{body.venue_id} is the main venue of session {session_id}; offer to secondary venues")
        _room_of(s, body.venue_id, body.room)
        slot_start, slot_end = body.slot_start or session.slot_start, body.slot_end or session.slot_end
        start, end = _slot(slot_start, slot_end)
        for other in s.scalars(select(db.Booking).where(db.Booking.session_id == session_id,
                                                        db.Booking.venue_id == body.venue_id,
                                                        db.Booking.status.in_(ACTIVE))):
            raise Conflict(f"venue {body.venue_id} already has booking {other.booking_id} ({other.status}) "
                           f"for session {session_id}")
        _clash(s, body.venue_id, body.room, start, end)
        booking = db.Booking(
            booking_id=hub.next_id(s, "B"), session_id=session_id, main_venue_id=session.main_venue_id,
            venue_id=body.venue_id, room=body.room, slot_start=slot_start, slot_end=slot_end, start_utc=start,
            end_utc=end, status="offered", history=[])
        receipt = hub.write(s, session, "booking", session.main_venue_id, _payload(booking, "offered"))
        booking.history = [{"action": "offered", "leaf": receipt.leaf_index}]
        s.add(booking)
        s.commit()
        return booking_view(booking)


def _check(booking: db.Booking, action: str) -> None:
    if booking.status not in ALLOWED[action]:
        if booking.status == PAST[action]:
            raise Conflict(f"booking {booking.booking_id} is already {booking.status}")
        raise Conflict(f"booking {booking.booking_id} was {booking.status}; it cannot be {PAST[action]}")


def act(hub: Hub, booking_id: str, action: str, body: BookingActionIn, by_venue: str | None) -> dict[str, Any]:
    """confirm / decline (by the secondary venue) or cancel (by either side). `by_venue` is the venue of the
    authenticated caller, None when the province acts (it may cancel only)."""
    with hub.lock, hub.db() as s:
        booking: db.Booking = hub.get(s, db.Booking, booking_id, "booking")
        session = hub.open_session(s, booking.session_id)
        _check(booking, action)
        allowed = {booking.venue_id} if action in ("confirm", "decline") else {booking.venue_id, booking.main_venue_id}
        if (by_venue is None and action != "cancel") or (by_venue is not None and by_venue not in allowed):
            raise Forbidden(f"booking {booking_id} can be {PAST[action]} only by {' or '.join(sorted(allowed))}, "
                            f"not by {by_venue or 'the province'}")
        actor = by_venue or booking.main_venue_id
        receipt = hub.write(s, session, "booking", actor, _payload(booking, PAST[action], body.reason))
        booking.status = PAST[action]
        booking.history = [*booking.history, {"action": PAST[action], "leaf": receipt.leaf_index}]
        if booking.status == "confirmed":
            _log_cameras(hub, s, session, booking)
        s.commit()
        return booking_view(booking)


def change(hub: Hub, booking_id: str, body: BookingChangeIn) -> dict[str, Any]:
    """A new room or slot; a secondary venue's booking goes back to `offered` until it confirms again."""
    with hub.lock, hub.db() as s:
        booking: db.Booking = hub.get(s, db.Booking, booking_id, "booking")
        session = hub.open_session(s, booking.session_id)
        _check(booking, "change")
        room = body.room or booking.room
        slot_start, slot_end = body.slot_start or booking.slot_start, body.slot_end or booking.slot_end
        _room_of(s, booking.venue_id, room)
        start, end = _slot(slot_start, slot_end)
        _clash(s, booking.venue_id, room, start, end, ignore=booking_id)
        booking.room, booking.slot_start, booking.slot_end = room, slot_start, slot_end
        booking.start_utc, booking.end_utc = start, end
        receipt = hub.write(s, session, "booking", session.main_venue_id, _payload(booking, "changed", body.reason))
        if booking.status != "reserved":
            booking.status = "offered"
        else:
            session.room, session.slot_start, session.slot_end = room, slot_start, slot_end
            _log_cameras(hub, s, session, booking)
        booking.history = [*booking.history, {"action": "changed", "leaf": receipt.leaf_index}]
        s.commit()
        return booking_view(booking)


def venues_of(s: Session, session: db.EvalSession) -> list[str]:
    """The session's main venue and its secondary venues with a confirmed booking."""
    confirmed = s.scalars(select(db.Booking.venue_id).where(
        db.Booking.session_id == session.session_id, db.Booking.status.in_(("reserved", "confirmed")))).all()
    return [session.main_venue_id, *sorted(set(confirmed) - {session.main_venue_id})]
