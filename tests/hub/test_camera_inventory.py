"""Camera inventories through the hub's HTTP API: each venue registers its rooms' cameras (360° or refused,
its own venue only), the registration is evidence, every session booking the room names them, and the
project's extract then fails for the camera that never recorded, while the cameras that recorded their
whole slot pass, the one with a microphone with its sound, and every file holds the streams its record lists."""

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devices.queue import EvidenceQueue
from devices.recorder import Recorder, RecorderConfig
from notary.client import NotaryClient, SubmitterKey
from tests.conftest import device_bindings
from tests.devices.conftest import make_video
from tests.devices.test_audio import tone
from tests.hub.conftest import MAIN, PROJECT, QD, Stack, published, setup_session
from tests.hub.test_evaluation import _extract
from tests.hub.test_with_devices import _messages
from verifier.entry import parse_entry
from verifier.extract import verify_extract

HALVES = [{"camera_id": "cam1", "heading_degrees": 0, "field_of_view_degrees": 180, "audio": True},
          {"camera_id": "cam2", "heading_degrees": 180, "field_of_view_degrees": 180, "audio": False}]
ALL_ROUND = [{"camera_id": "cam1", "heading_degrees": 90, "field_of_view_degrees": 360, "audio": False}]


def cameras_of(st: Stack, venue: str, room: str, cameras: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = st.venue(venue).call("PUT", f"/venues/{venue}/rooms/{room}/cameras",
                                                  {"cameras": cameras})
    return result


def test_registration_is_refused_unless_the_room_is_seen_all_round_by_its_own_venue(stack: Stack) -> None:
    st = stack
    setup_session(st)
    st.venue(MAIN).refused("PUT", f"/venues/{MAIN}/rooms/评标室 3/cameras", {"cameras": HALVES[:1]}, 422,
                           "leave 90°–270° unseen", "360°")
    st.venue(QD).refused("PUT", f"/venues/{MAIN}/rooms/评标室 3/cameras", {"cameras": HALVES}, 403,
                         f"may not register the cameras of {MAIN}")
    st.venue(MAIN).refused("PUT", f"/venues/{MAIN}/rooms/评标室 9/cameras", {"cameras": HALVES}, 422,
                           "has no room '评标室 9'")
    st.venue(MAIN).refused("PUT", f"/venues/{MAIN}/rooms/评标室 3/cameras", {"cameras": [HALVES[0], HALVES[0]]},
                           422, "names camera cam1 twice")
    registered = cameras_of(st, MAIN, "评标室 3", HALVES)
    assert registered["sessions"] == ["S-1"]  # the open session booking that room now names them
    logged = [parse_entry(st.notary.log.entry(leaf) or b"") for leaf in range(st.notary.log.size)]
    inventories = [(e.record["project_id"], e.record["venue_id"]) for e in logged
                   if e.record["type"] == "camera_inventory"]
    assert inventories == [("registry", MAIN), (PROJECT, MAIN)]  # the registration, and the session's copy


def test_a_camera_that_never_recorded_fails_and_a_venue_that_recorded_its_slot_passes(
        stack: Stack, tmp_path: Path) -> None:
    st = stack
    for venue in (MAIN, QD):
        st.call("PUT", "/venues", {"venue_id": venue, "name": f"{venue} 评标中心", "city": "济南",
                                   "rooms": ["评标室 1", "评标室 3"]})
    cameras_of(st, QD, "评标室 1", ALL_ROUND)  # before the booking: logged when QD confirms it
    media = tmp_path / "media"
    recorders = []
    for venue in (MAIN, QD):  # the main venue's cam2 stays off
        camera = SubmitterKey.generate(f"{venue}.cam1")
        st.admin.register(camera, "device", *device_bindings(camera.principal_id))
        queue = EvidenceQueue(tmp_path / f"{venue}.queue.db", camera, NotaryClient(st.notary_url))
        recorders.append((queue, Recorder(RecorderConfig(
            source=str(make_video(tmp_path / f"{venue}.avi", frames=60, fps=10)), camera_id="cam1",
            project_id=PROJECT, session_id="S-1", venue_id=venue, device_id=camera.submitter_id,
            output_dir=media / venue, segment_seconds=2.0, codec="MJPG", realtime=True,
            audio_source=str(tone(tmp_path / "mic.wav", 7.0)) if venue == MAIN else None), queue)))

    # The slot opens once the session is booked (a few requests) and lasts 9 s; each camera records 6 s.
    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    st.call("POST", "/sessions", {"session_id": "S-1", "project_id": PROJECT, "main_venue_id": MAIN,
                                  "room": "评标室 3", "slot_start": opens.isoformat(),
                                  "slot_end": (opens + timedelta(seconds=9)).isoformat()}, 201)
    offered = st.call("POST", "/sessions/S-1/offers", {"venue_id": QD, "room": "评标室 1"}, 201)
    st.venue(QD).call("POST", f"/bookings/{offered['booking_id']}/confirm")
    assert cameras_of(st, MAIN, "评标室 3", HALVES)["sessions"] == ["S-1"]  # after the booking: logged now
    wait = (opens - datetime.now(UTC)).total_seconds()
    assert wait > -3, f"booking the session took {6 - wait:.1f} s; its slot opened {-wait:.1f} s before recording"
    time.sleep(max(0.0, wait))
    threads = [threading.Thread(target=recorder.run) for _, recorder in recorders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for queue, recorder in recorders:
        assert len(recorder.segments) == 3
        assert queue.drain(timeout=30).error is None
        queue.close()

    report = verify_extract(_extract(st, tmp_path, "session.zip"), published(st), media=media)
    checks = {s.name: s for s in report.sessions}
    assert not report.ok
    assert checks[f"recording coverage S-1 {MAIN}/cam2"].detail.startswith("never reported")
    assert checks[f"recording inventory of S-1 at {MAIN}"].ok
    assert checks[f"recording inventory of S-1 at {QD}"].ok
    assert checks[f"recording coverage S-1 {QD}/cam1"].ok, _messages(report)
    assert checks[f"recording coverage S-1 {QD}/cam1"].detail.startswith("3 segments cover the slot")
    assert checks[f"recording coverage S-1 {MAIN}/cam1"].detail.endswith("with sound")  # its microphone was heard
    assert [s.name for s in report.sessions if not s.ok] == [f"recording coverage S-1 {MAIN}/cam2"], _messages(report)
