"""Camera inventories: which cameras watch an evaluation room, where each points, and which records sound.

The plan (三(一)2) asks for 360° coverage of every evaluation room and sensitive sound pickup. A venue
registers each room's cameras; the hub logs the inventory of the booked room into each session as a
`camera_inventory` record, so the session's evidence names the cameras that must record it. This module is
that payload's one encode and one strict parse, and the arithmetic of the room's coverage: a camera points
at `heading_degrees` (clockwise from the room's reference wall) and sees `field_of_view_degrees` centred
on it.
"""

import re
from dataclasses import dataclass
from typing import Any

from verifier.errors import MalformedInput
from verifier.strict import exact_object, listed, text

MAX_CAMERAS = 64
_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_HALF_DEGREES = 720  # coverage is counted in half degrees: a camera's edge lies on one when its view is odd


def _degrees(value: dict[str, Any], key: str, what: str, low: int, high: int) -> int:
    item = value.get(key)
    if not isinstance(item, int) or isinstance(item, bool) or not low <= item <= high:
        raise MalformedInput(f"{what} {key} must be a whole number of degrees from {low} to {high}, got {item!r:.40}")
    return item


@dataclass(frozen=True)
class Camera:
    camera_id: str
    heading_degrees: int
    field_of_view_degrees: int
    audio: bool  # records sound into its segments (高灵敏度拾音)

    @classmethod
    def parse(cls, value: Any, what: str) -> "Camera":
        value = exact_object(value, what, {"camera_id", "heading_degrees", "field_of_view_degrees", "audio"})
        camera_id = text(value, "camera_id", what)
        if not _IDENT.fullmatch(camera_id):
            raise MalformedInput(f"{what} camera_id must be letters, digits and . _ : - (at most 128), "
                                 f"got {camera_id!r:.60}")
        if not isinstance(value["audio"], bool):
            raise MalformedInput(f"{what} audio must be true or false, got {value['audio']!r:.40}")
        return cls(camera_id, _degrees(value, "heading_degrees", what, 0, 359),
                   _degrees(value, "field_of_view_degrees", what, 1, 360), value["audio"])

    def encode(self) -> dict[str, Any]:
        return {"camera_id": self.camera_id, "heading_degrees": self.heading_degrees,
                "field_of_view_degrees": self.field_of_view_degrees, "audio": self.audio}


@dataclass(frozen=True)
class CameraInventory:
    """The cameras of one room of a venue (the venue is the record's `venue_id`)."""

    room: str
    cameras: tuple[Camera, ...]

    @classmethod
    def parse(cls, value: Any, what: str = "camera inventory") -> "CameraInventory":
        value = exact_object(value, what, {"room", "cameras"})
        room = text(value, "room", what)
        if len(room) > 200:
            raise MalformedInput(f"{what} room must be at most 200 characters, got {len(room)}")
        items = listed(value, "cameras", what)
        if not 1 <= len(items) <= MAX_CAMERAS:
            raise MalformedInput(f"{what} names {len(items)} cameras; a room has 1 to {MAX_CAMERAS}")
        cameras = tuple(Camera.parse(item, f"{what} camera {i}") for i, item in enumerate(items))
        seen: set[str] = set()
        for camera in cameras:
            if camera.camera_id in seen:
                raise MalformedInput(f"{what} names camera {camera.camera_id} twice")
            seen.add(camera.camera_id)
        return cls(room, cameras)

    def encode(self) -> dict[str, Any]:
        return {"room": self.room, "cameras": [c.encode() for c in self.cameras]}

    def camera(self, camera_id: str) -> Camera | None:
        return next((c for c in self.cameras if c.camera_id == camera_id), None)

    def uncovered(self) -> list[tuple[float, float]]:
        """The arcs (from, to, in degrees clockwise) that no camera sees; empty when the room is seen all round."""
        seen = [False] * _HALF_DEGREES
        for c in self.cameras:
            first = 2 * c.heading_degrees - c.field_of_view_degrees
            for k in range(first, first + 2 * c.field_of_view_degrees):
                seen[k % _HALF_DEGREES] = True
        arcs: list[tuple[float, float]] = []
        k = 0
        while k < _HALF_DEGREES:
            if seen[k]:
                k += 1
                continue
            start = k
            while k < _HALF_DEGREES and not seen[k]:
                k += 1
            arcs.append((start / 2, k / 2))
        if len(arcs) > 1 and arcs[0][0] == 0 and arcs[-1][1] == _HALF_DEGREES / 2:
            arcs = [(arcs[-1][0], arcs[0][1] + 360), *arcs[1:-1]]  # one blind arc across the reference wall
        return arcs

    def describe_uncovered(self) -> str:
        return ", ".join(f"{a:g}°–{b % 360:g}°" for a, b in self.uncovered())
