"""Incomplete recordings, each logged by a hub or a camera that the notary accepted, and each caught by verify:
a camera of the room's inventory that never reported, a recording that starts after the booked slot opens
or ends before it closes, a gap, a camera from outside the inventory, an inventory that leaves part of the
room unseen or is of another room, a venue that records with no inventory at all, a segment whose record
claims streams (sound) its file does not hold. And the one parser of each payload refuses every other shape
of it, at the notary as in verify."""

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from devices.media import SegmentWriter
from notary.log import RecordRejected, Submission
from tests.forgery_kit import Project, messages, record, segment_bytes, segments, verify
from verifier.errors import MalformedInput
from verifier.extract import ExtractReport
from verifier.inventory import Camera, CameraInventory
from verifier.sealed import SUFFIX, seal

ROOM = "评标室 1"  # the room the kit's booking names
START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def inventory(*cameras: Camera, room: str = ROOM, session: str = "S-1") -> dict[str, Any]:
    return record("camera_inventory", CameraInventory(room, cameras).encode(), session=session)


def all_round(camera_id: str = "cam1", audio: bool = False) -> Camera:
    return Camera(camera_id, 0, 360, audio)


def recorded(tmp_path: Path, logged: list[dict[str, Any]], cameras: list[dict[str, Any]],
             slot_seconds: int = 6) -> ExtractReport:
    """A project whose room is booked from START for `slot_seconds`, with the hub's `logged` records and the
    camera's segments; verified against the roots it names (the checks run all the same)."""
    project = Project(tmp_path / "p", slot=(START, START + timedelta(seconds=slot_seconds)))
    if logged:
        project.submit("hub-1", logged)
    project.submit("V-1.cam1", cameras)
    return verify(tmp_path, project.finish().data, None)


def finding(report: ExtractReport, name: str) -> Any:
    return next(s for s in report.sessions if s.name == name)


def test_a_camera_that_records_the_whole_slot_is_complete(tmp_path: Path) -> None:
    report = recorded(tmp_path, [inventory(all_round())], segments(6, START))
    assert report.consistent, messages(report)
    assert finding(report, "recording inventory of S-1 at V-1").detail == f"room {ROOM!r}: 1 cameras, 360° covered"
    coverage = finding(report, "recording coverage S-1 V-1/cam1")
    assert coverage.ok and coverage.detail.startswith("6 segments cover the slot")


def test_a_camera_of_the_inventory_that_never_reported_fails(tmp_path: Path) -> None:
    report = recorded(tmp_path, [inventory(Camera("cam1", 0, 180, False), Camera("cam2", 180, 180, False))],
                      segments(6, START))
    assert not report.consistent
    assert "recording coverage S-1 V-1/cam2: never reported" in messages(report)
    assert finding(report, "recording coverage S-1 V-1/cam1").ok


def test_a_recording_that_starts_after_the_slot_opens_fails(tmp_path: Path) -> None:
    report = recorded(tmp_path, [inventory(all_round())], segments(6, START + timedelta(seconds=30)), slot_seconds=36)
    assert not report.consistent
    assert (f"recording coverage S-1 V-1/cam1: starts at {(START + timedelta(seconds=30)).isoformat()}, 30 s after "
            "the slot opens") in messages(report)


def test_a_recording_that_ends_before_the_slot_closes_fails(tmp_path: Path) -> None:
    report = recorded(tmp_path, [inventory(all_round())], segments(6, START), slot_seconds=20)
    assert not report.consistent
    assert (f"recording coverage S-1 V-1/cam1: ends at {(START + timedelta(seconds=6)).isoformat()}, 14 s before "
            "the slot closes") in messages(report)


def test_a_few_seconds_at_either_edge_of_the_slot_are_a_recorder_clock_not_a_gap(tmp_path: Path) -> None:
    report = recorded(tmp_path, [inventory(all_round())], segments(6, START + timedelta(seconds=2)), slot_seconds=10)
    assert finding(report, "recording coverage S-1 V-1/cam1").ok, messages(report)


def test_a_gap_between_segments_fails_per_camera(tmp_path: Path) -> None:
    # The hash chain is intact (each segment names the one before), but segments 3 to 5 were recorded four
    # seconds later than 2 ended: the room was not recorded in between.
    chained = segments(6, START)
    for seg in chained[3:]:
        for field in ("start", "end"):
            seg["payload"][field] = (datetime.fromisoformat(seg["payload"][field]) + timedelta(seconds=4)).isoformat()
        seg["occurred_at"] = seg["payload"]["end"]
    report = recorded(tmp_path, [inventory(all_round())], chained, slot_seconds=10)
    assert not report.consistent
    gap = f"{(START + timedelta(seconds=3)).isoformat()} – {(START + timedelta(seconds=7)).isoformat()} (4 s)"
    assert f"recording coverage S-1 V-1/cam1: 1 gap(s) in the recording: {gap}" in messages(report)


def test_a_camera_from_outside_the_inventory_does_not_stand_in_for_one_of_it(tmp_path: Path) -> None:
    report = recorded(tmp_path, [inventory(all_round("cam9"))], segments(6, START))
    text = messages(report)
    assert "recording coverage S-1 V-1/cam1: 6 segments from a camera that is not in the inventory" in text
    assert "recording coverage S-1 V-1/cam9: never reported" in text


def test_an_inventory_that_leaves_part_of_the_room_unseen_fails(tmp_path: Path) -> None:
    # The hub refuses to register it; a hub that logs it anyway is caught by verify.
    report = recorded(tmp_path, [inventory(Camera("cam1", 0, 90, False), Camera("cam2", 180, 60, False))],
                      segments(6, START))
    assert ("recording inventory of S-1 at V-1: the cameras of room '评标室 1' leave 45°–150°, 210°–315° unseen"
            in messages(report))


def test_an_inventory_of_another_room_fails(tmp_path: Path) -> None:
    report = recorded(tmp_path, [inventory(all_round(), room="评标室 9")], segments(6, START))
    assert ("recording inventory of S-1 at V-1: the inventory is of room '评标室 9', the session is booked in "
            "'评标室 1'") in messages(report)


def test_the_latest_inventory_of_a_session_is_the_one_that_counts(tmp_path: Path) -> None:
    report = recorded(tmp_path, [inventory(all_round()), inventory(all_round(), Camera("cam2", 90, 90, False))],
                      segments(6, START))
    assert "recording coverage S-1 V-1/cam2: never reported" in messages(report)


def test_a_venue_recording_a_session_without_an_inventory_fails_once_the_project_has_one(tmp_path: Path) -> None:
    # The hub logged an inventory for another session only: this session's cameras would escape the check.
    report = recorded(tmp_path, [inventory(all_round(), session="S-2")], segments(6, START))
    assert ("recording inventory of S-1 at V-1: 1 camera(s) recorded, but no camera inventory of the venue was "
            "logged for the session") in messages(report)


def test_a_project_without_any_inventory_has_no_completeness_to_check(tmp_path: Path) -> None:
    report = recorded(tmp_path, [], segments(6, START))
    assert report.consistent, messages(report)
    assert not [s for s in report.sessions if s.name.startswith(("recording inventory", "recording coverage"))]


def test_a_camera_with_a_microphone_must_log_sound(tmp_path: Path) -> None:
    silent = segments(6, START)
    report = recorded(tmp_path, [inventory(all_round(audio=True))], silent)
    assert ("recording coverage S-1 V-1/cam1: has a microphone, but 6 segment(s) hold no sound (first: segment 0)"
            in messages(report))


GOOD: dict[str, Any] = {"room": ROOM, "cameras": [
    {"camera_id": "cam1", "heading_degrees": 0, "field_of_view_degrees": 360, "audio": True}]}


@pytest.mark.parametrize(("change", "complaint"), [
    (lambda v: v.update(extra=1), "unexpected 'extra'"),
    (lambda v: v["cameras"].append(dict(v["cameras"][0])), "names camera cam1 twice"),
    (lambda v: v["cameras"][0].update(heading_degrees=360), "heading_degrees must be a whole number of degrees"),
    (lambda v: v["cameras"][0].update(heading_degrees=True), "heading_degrees must be a whole number of degrees"),
    (lambda v: v["cameras"][0].update(field_of_view_degrees=0.5), "field_of_view_degrees must be a whole number"),
    (lambda v: v["cameras"][0].update(audio=1), "audio must be true or false"),
    (lambda v: v["cameras"][0].update(camera_id="../cam"), "camera_id must be letters, digits"),
    (lambda v: v.update(cameras=[]), "names 0 cameras"),
    (lambda v: v.update(room=""), "room must be non-empty text"),
    (lambda v: v["cameras"][0].pop("audio"), "missing audio"),
])
def test_the_inventory_parser_refuses_every_other_shape(change: Any, complaint: str) -> None:
    assert CameraInventory.parse(CameraInventory.parse(GOOD).encode()).encode() == GOOD
    value = {"room": GOOD["room"], "cameras": [dict(c) for c in GOOD["cameras"]]}
    change(value)
    with pytest.raises(MalformedInput, match=complaint.replace("(", r"\(")):
        CameraInventory.parse(value)


def test_the_notary_refuses_a_malformed_inventory_and_one_carrying_personal_data(tmp_path: Path) -> None:
    project = Project(tmp_path / "p")
    hub = project.people.hub
    twice = record("camera_inventory", {**GOOD, "cameras": GOOD["cameras"] * 2})
    with pytest.raises(RecordRejected, match="names camera cam1 twice"):
        project.notary.log.submit(Submission("hub-1", [twice], hub.sign_batch([twice]), ()))
    personal = record("camera_inventory", {**GOOD, "room": "王某 370102197001011234 的办公室"})
    with pytest.raises(RecordRejected, match="personal data"):
        project.notary.log.submit(Submission("hub-1", [personal], hub.sign_batch([personal]), ()))
    project.notary.close()


def _video_only_segments(media: Path, count: int, streams: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Real segment files of synthetic frames (no sound), logged with the given `streams` claim."""
    logged = segments(count, START)
    previous = None
    for i, seg in enumerate(logged):
        path = media / f"cam1-{i:05d}.mp4"
        writer = SegmentWriter(path, "mp4v", 10.0, (64, 48), None)
        for shade in range(10):
            writer.write(np.full((48, 64, 3), 20 * shade + i, np.uint8))
        writer.close()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        seg["payload"].update(sha256=digest, previous_segment=previous, streams=streams)
        seg["attachments"] = [{"name": path.name, "sha256": digest, "size": path.stat().st_size,
                               "media_type": "video/mp4"}]
        previous = digest
    return logged


def test_a_segment_whose_record_claims_sound_its_file_does_not_hold_fails_with_media(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    claimed = [{"kind": "video", "codec": "mpeg4", "width": 64, "height": 48},
               {"kind": "audio", "codec": "aac", "sample_rate": 48000, "channels": 1}]
    report = recorded(tmp_path, [inventory(all_round(audio=True))], _video_only_segments(media, 3, claimed),
                      slot_seconds=3)
    assert finding(report, "recording coverage S-1 V-1/cam1").ok  # the records alone claim sound
    with_media = verify(tmp_path, (tmp_path / "forged.zip").read_bytes(), None, media=media)
    assert ("media V-1/cam1: 3 of 3 segment files present, 0 missing; segment 0 file cam1-00000.mp4 holds video "
            "mpeg4 64×48; its record says video mpeg4 64×48, audio aac 48000 Hz × 1 ch") in messages(with_media)


def test_a_segment_file_that_is_not_media_fails_where_its_record_lists_streams(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    logged = segments(2, START)
    for i, seg in enumerate(logged):
        (media / f"cam1-{i:05d}.mp4").write_bytes(segment_bytes(i))
        seg["payload"]["streams"] = [{"kind": "video", "codec": "mpeg4", "width": 64, "height": 48}]
    report = recorded(tmp_path, [], logged, slot_seconds=2)
    assert report.consistent, messages(report)
    with_media = verify(tmp_path, (tmp_path / "forged.zip").read_bytes(), None, media=media)
    assert "cam1-00000.mp4 is not a media file FFmpeg reads" in messages(with_media)


@pytest.mark.parametrize(("streams", "complaint"), [
    ([], "must be a list of 1 to 8 streams"),
    ([{"kind": "smell", "codec": "x"}], "kind must be video or audio"),
    ([{"kind": "audio", "codec": "aac", "width": 1, "height": 1}], "missing channels, sample_rate"),
    ([{"kind": "video", "codec": "MPEG 4", "width": 1, "height": 1}], "must be an FFmpeg codec name"),
    ([{"kind": "video", "codec": "mpeg4", "width": 0, "height": 1}], "must be positive"),
])
def test_the_notary_refuses_a_segment_whose_streams_are_malformed(tmp_path: Path, streams: list[Any],
                                                                  complaint: str) -> None:
    project = Project(tmp_path / "p")
    [seg] = segments(1, START)
    seg["payload"]["streams"] = streams
    with pytest.raises(RecordRejected, match=complaint):
        project.notary.log.submit(Submission("V-1.cam1", [seg], project.people.camera.sign_batch([seg]), ()))
    project.notary.close()


def test_a_folder_of_sealed_segments_verifies_with_the_media_key_only(tmp_path: Path) -> None:
    province = X25519PrivateKey.generate()
    media = tmp_path / "media"
    media.mkdir()
    for i in range(3):
        name = f"cam1-{i:05d}.mp4"
        (media / (name + SUFFIX)).write_bytes(seal(segment_bytes(i), province.public_key(), name))
    recorded(tmp_path, [], segments(3, START), slot_seconds=3)
    data = (tmp_path / "forged.zip").read_bytes()
    opened = verify(tmp_path, data, None, media=media, media_key=province)
    assert finding(opened, "media V-1/cam1").detail == ("3 of 3 segment files present, 0 missing, all match their "
                                                        "logged hashes")
    closed = verify(tmp_path, data, None, media=media)
    assert "segment 0 is there only sealed (cam1-00000.mp4.sealed); give the province's media key" in messages(closed)
    # A sealed file put in another segment's place does not open under that segment's name.
    first, second = media / f"cam1-00000.mp4{SUFFIX}", media / f"cam1-00001.mp4{SUFFIX}"
    swapped = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(swapped)
    mixed = verify(tmp_path, data, None, media=media, media_key=province)
    assert "media gathered: cam1-00000.mp4.sealed does not open with the media key given" in messages(mixed)


def test_an_arrival_in_the_media_store_must_name_a_segment_the_camera_logged(tmp_path: Path) -> None:
    recorded_segments = segments(2, START)
    arrivals = [record("media_arrival", {
        "camera_id": "cam1", "segment_index": i, "segment_sha256": sha, "object_key": f"P-1/V-1/cam1-{i:05d}.mp4",
        "stored_sha256": "ab" * 32, "stored_size": 10, "store_checksum": "A" * 43 + "=", "sealed": False},
        device="V-1.cam1") for i, sha in ((0, recorded_segments[0]["payload"]["sha256"]), (1, "00" * 32))]
    report = recorded(tmp_path, [], recorded_segments + arrivals, slot_seconds=2)
    assert ("recording V-1/cam1 in the media store: 1 arrival(s) name no segment this camera logged (first: "
            "segment 1)") in messages(report)
