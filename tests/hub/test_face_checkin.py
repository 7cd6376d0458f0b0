"""Experts are who they say they are: the real check-in station (real face model, real photographs shipped in
scikit-image and matplotlib) writes its check-ins to the notary and reports them to the hub itself, over the
hub's signed-request API, as a device bound to its venue and the function "checkin". The roster says
"present — identity verified" only on a matched face; one check-in serves exactly one expert; the extract
verifies offline and its court report keeps "unverified" in sight."""

from pathlib import Path

import cv2

from devices.checkin import BlobStore, CheckinConfig, CheckinStation, HubReporter
from devices.face import EnrolledPhotos, FaceRecognitionVerifier
from devices.portraits import astronaut, grace_hopper, png
from devices.queue import EvidenceQueue
from notary.access import Role
from notary.client import NotaryClient, SubmitterKey
from tests.conftest import device_bindings
from tests.hub.conftest import MAIN, PROJECT, Stack, identity, published, setup_session, slot_around_now
from tests.hub.test_evaluation import _extract
from verifier.extract import verify_extract
from verifier.report import render_html

VERIFIED, UNVERIFIED = "present — identity verified", "present — unverified"


def test_the_real_station_verifies_faces_and_reports_to_the_hub_itself(stack: Stack, tmp_path: Path) -> None:
    st = stack
    setup_session(st, slot=slot_around_now())
    committed = st.call("POST", "/sessions/S-1/draws", {"criteria": {"specialty": "房屋建筑工程"},
                                                        "venues": [{"venue_id": MAIN, "count": 4}]}, 201)
    collins, hopper, impostor, plain = st.call("POST", f"/draws/{committed['draw_id']}/execute")["assignments"][MAIN]

    # The station's one key: registered with the notary (its evidence) and bound in the hub (its reports).
    key = SubmitterKey.generate(f"{MAIN}.checkin")
    st.admin.register(key, "device", *device_bindings(key.principal_id))
    st.hub.principals.bind(key.principal(Role.DEVICE, MAIN, "checkin"))
    queue = EvidenceQueue(tmp_path / "station.db", key, NotaryClient(st.notary_url))
    blobs = BlobStore(tmp_path / "blobs", tmp_path / "blob.key")
    faces = FaceRecognitionVerifier(EnrolledPhotos(blobs, tmp_path / "enrolled.json"))
    for expert, portrait in ((collins, astronaut()), (hopper, grace_hopper()), (impostor, astronaut())):
        faces.enrol(identity(expert), png(portrait))
    reporter = HubReporter(st.url, key)
    config = CheckinConfig(PROJECT, "S-1", MAIN, key.submitter_id)
    station = CheckinStation(config, queue, blobs, verifier=faces, hub=reporter)

    smaller = cv2.resize(astronaut(), None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    assert station.check_in(identity(collins), png(smaller), expert_id=collins).record["payload"]["result"] == "matched"
    darker = (grace_hopper() * 0.5).astype("uint8")
    assert station.check_in(identity(hopper), png(darker), expert_id=hopper).record["payload"]["result"] == "matched"
    # Someone else's face for the enrolled identity: recorded, and rejected.
    assert station.check_in(identity(impostor), png(grace_hopper()),
                            expert_id=impostor).record["payload"]["result"] == "rejected"
    # The same station without a face comparison (no enrolled photo for this expert): unverified, and says so.
    fallback = CheckinStation(config, queue, blobs, hub=reporter)
    assert fallback.check_in(identity(plain), png(grace_hopper()),
                             expert_id=plain).record["payload"]["result"] == "unverified"

    waiting = station.report_to_hub()  # nothing acknowledged by the notary yet: nothing to report
    assert (waiting.reported, waiting.waiting) == ([], 4)
    assert queue.drain(30).refusal is None and queue.status().pending == 0
    done = station.report_to_hub()
    assert done.refused == [] and done.error is None, done
    answers = {a["expert_id"]: a for a in done.reported}
    assert {e: a["roster_status"] for e, a in answers.items()} == {
        collins: VERIFIED, hopper: VERIFIED, impostor: "rejected", plain: UNVERIFIED}
    assert all(a["identity_checked"] for a in answers.values())
    assert station.report_to_hub().reported == []  # each check-in is reported once
    reporter.close()

    roster = st.call("POST", "/sessions/S-1/roster", None, 201)
    shown = {e["expert_id"]: (e["status"], e.get("identity"), e["roster_status"]) for e in roster["experts"]}
    assert shown == {collins: ("present", "verified", VERIFIED), hopper: ("present", "verified", VERIFIED),
                     impostor: ("rejected", None, "rejected"), plain: ("present", "unverified", UNVERIFIED)}

    # One check-in serves exactly one expert: Collins's check-in cannot also make another expert present.
    leaf = answers[collins]["checkin_leaf"]
    st.refused("POST", "/sessions/S-1/checkins", {"expert_id": plain, "checkin_leaf": leaf}, 409,
               f"leaf {leaf} is already attached to expert {collins}", "one check-in serves exactly one expert")
    again = st.call("POST", "/sessions/S-1/checkins", {"expert_id": collins, "checkin_leaf": leaf}, 201)
    assert again["roster_status"] == VERIFIED  # the same report again attaches nothing new

    path = _extract(st, tmp_path, "faces.zip")
    report = verify_extract(path, published(st))
    assert report.ok, [f"{s.name}: {s.detail}" for s in report.sessions if not s.ok]
    [identities] = [s for s in report.sessions if s.name == f"roster {roster['roster_id']} identities"]
    assert identities.ok and identities.detail == (
        f"2 present — identity verified by face ({collins}, {hopper}); 1 present — unverified ({plain})")
    html = render_html(report, path, "en")
    assert "2 present — identity verified, 1 present — unverified, 1 rejected (face did not match)" in html
    assert "1 check-in(s) had no face comparison (unverified" in html and "liveness was not checked" in html
    assert "dlib_face_recognition_resnet_model_v1" in html and "threshold 0.6" in html
    assert "到场 — 未核验" in render_html(report, path, "zh")
