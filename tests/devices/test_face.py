"""1:1 face verification with the real model (dlib's ResNet embedding through face_recognition) on photographs
of two real people that ship inside installed wheels (`devices.portraits`: Eileen Collins from scikit-image,
Grace Hopper from matplotlib). Nothing is downloaded and no face is generated; a missing model package fails
these tests, it does not skip them.

One photograph per person ships, so "the same person" is the enrolled photograph cropped, scaled, darkened,
brightened and mirrored: what a check-in camera changes, not a second sitting.
"""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from devices.checkin import BlobStore, CheckinConfig, CheckinRefused, CheckinStation
from devices.face import DEFAULT_THRESHOLD, EnrolledPhotos, FaceEmbedder, FaceRecognitionVerifier, NotEnrolled
from devices.portraits import astronaut, grace_hopper, png
from devices.queue import EvidenceQueue
from notary.client import NotaryClient, SubmitterKey
from tests.devices.conftest import LiveNotary
from verifier.face import FaceMatch

COLLINS, HOPPER = "370102197001011000", "370102197001012000"
Image = np.ndarray[Any, Any]


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder()  # the model loads once for the module (about 1.5 s)


@pytest.fixture
def verifier(embedder: FaceEmbedder, tmp_path: Path) -> FaceRecognitionVerifier:
    blobs = BlobStore(tmp_path / "enrolled", tmp_path / "enrolled.key")
    v = FaceRecognitionVerifier(EnrolledPhotos(blobs, tmp_path / "enrolled.json"), embedder=embedder)
    v.enrol(COLLINS, png(astronaut()))
    v.enrol(HOPPER, png(grace_hopper()))
    return v


def _crop_to_face(img: Image) -> Image:
    """The head with a narrow margin: rows and columns outside the middle of the face cut away."""
    h, w = img.shape[:2]
    if (h, w) == (300, 260):  # Collins: her face spans rows 76-166, columns 76-165
        return np.ascontiguousarray(img[30:220, 30:215])
    return np.ascontiguousarray(img[90:380, 130:420])  # Hopper: rows 139-325, columns 180-366


def _scale(f: float) -> Callable[[Image], Image]:
    return lambda img: cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)


def _light(gain: float, bias: float = 0.0) -> Callable[[Image], Image]:
    return lambda img: np.clip(img.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


def _gamma(g: float) -> Callable[[Image], Image]:
    return lambda img: (255 * (img.astype(np.float32) / 255) ** g).astype(np.uint8)


CHANGES: dict[str, Callable[[Image], Image]] = {
    "tight crop": lambda img: _crop_to_face(img),
    "scaled to 60%": _scale(0.6),
    "scaled to 180%": _scale(1.8),
    "darkened to 45%": _light(0.45),
    "brightened 1.5x +30": _light(1.5, 30),
    "gamma 1.8": _gamma(1.8),
    "mirrored": lambda img: np.ascontiguousarray(img[:, ::-1]),
}


def test_the_same_person_matches_under_crops_scale_and_lighting(verifier: FaceRecognitionVerifier) -> None:
    distances = {}
    for person, identity, portrait in (("Collins", COLLINS, astronaut()), ("Hopper", HOPPER, grace_hopper())):
        for change, apply in CHANGES.items():
            check = verifier.verify(apply(portrait), identity)
            assert check.faces == 1 and check.match is not None, f"{person}, {change}: {check}"
            distances[f"{person}, {change}"] = check.match.distance
            assert check.match.decision == "match", f"{person}, {change}: distance {check.match.distance}"
            assert check.match.distance <= check.match.threshold == DEFAULT_THRESHOLD
    # The model sees a change at all: an unchanged photograph is at 0, a changed one is not.
    assert verifier.verify(astronaut(), COLLINS).match == FaceMatch.decide(0.0, DEFAULT_THRESHOLD,
                                                                         verifier.embedder.model,
                                                                         verifier.embedder.model_sha256)
    assert all(d > 0 for name, d in distances.items() if "crop" not in name), distances


def test_a_different_person_does_not_match(verifier: FaceRecognitionVerifier) -> None:
    for presented, claimed in ((grace_hopper(), COLLINS), (astronaut(), HOPPER),
                               (_light(0.45)(grace_hopper()), COLLINS), (_scale(0.6)(astronaut()), HOPPER)):
        check = verifier.verify(presented, claimed)
        assert check.faces == 1 and check.match is not None
        assert check.match.decision == "no_match" and check.match.distance > DEFAULT_THRESHOLD, check.match


def test_no_face_and_two_faces_are_clear_decisions(verifier: FaceRecognitionVerifier) -> None:
    flat = np.full((300, 260, 3), 128, np.uint8)  # a flat, evenly lit surface
    assert verifier.verify(flat, COLLINS).faces == 0
    assert verifier.verify(flat, COLLINS).match is None
    pair = np.concatenate([cv2.resize(astronaut(), (300, 300)), cv2.resize(grace_hopper(), (300, 300))], axis=1)
    two = verifier.verify(pair, COLLINS)
    assert (two.faces, two.match) == (2, None)  # no comparison is made when it is unclear whose face counts


def printed(image: Image) -> Image:
    """A photograph as a printed copy shows it to a camera: grey, half the contrast, on off-white paper."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32) * 0.5 + 90
    paper = np.stack([grey * 0.9, grey * 0.96, grey * 0.98], axis=-1)  # BGR: a warm paper tone
    framed = cv2.copyMakeBorder(np.clip(paper, 0, 255).astype(np.uint8), 25, 25, 25, 25, cv2.BORDER_CONSTANT,
                                value=(225, 235, 240))
    return framed


def test_a_printed_photo_of_the_enrolled_expert_matches_liveness_is_not_checked(
        verifier: FaceRecognitionVerifier) -> None:
    """What the model decides on a flat printed copy, stated: it is the same face, so it matches. The record
    and the court report say the comparison was 1:1 on the face, and that liveness was not checked."""
    own = verifier.verify(printed(astronaut()), COLLINS)
    assert own.faces == 1 and own.match is not None and own.match.decision == "match", own
    other = verifier.verify(printed(grace_hopper()), COLLINS)
    assert other.match is not None and other.match.decision == "no_match", other


def test_enrolment_needs_one_face_and_keeps_no_identity_number_in_clear(
        verifier: FaceRecognitionVerifier, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one face, found 0"):
        verifier.enrol("370102197001013000", png(np.full((200, 200, 3), 200, np.uint8)))
    with pytest.raises(ValueError, match="not an image"):
        verifier.enrol("370102197001013000", b"GIF89a not really")
    with pytest.raises(NotEnrolled, match="no enrolled photo"):
        verifier.verify(astronaut(), "370102197001013000")
    index = (tmp_path / "enrolled.json").read_text()
    assert COLLINS not in index and HOPPER not in index and len(json.loads(index)) == 2
    photo = png(astronaut())
    sealed = (tmp_path / "enrolled" / f"{hashlib.sha256(photo).hexdigest()}.blob").read_bytes()
    assert photo not in sealed and photo[100:200] not in sealed  # the enrolled photo is encrypted at rest


DEVICE = "V-1.checkin"
CONFIG = CheckinConfig("P-1", "S-1", "V-1", DEVICE)


def test_the_station_records_the_comparison_and_refuses_what_it_cannot_compare(
        verifier: FaceRecognitionVerifier, live_notary: LiveNotary, tmp_path: Path) -> None:
    key = SubmitterKey.generate(DEVICE)
    live_notary.register(key)
    queue = EvidenceQueue(tmp_path / "q.db", key, NotaryClient(live_notary.url))
    station = CheckinStation(CONFIG, queue, BlobStore(tmp_path / "blobs", tmp_path / "blob.key"), verifier=verifier)

    matched = station.check_in(COLLINS, png(_scale(0.6)(astronaut())))
    p = matched.record["payload"]
    assert (p["result"], p["provider"], p["faces_detected"]) == ("matched", verifier.name, 1)
    fm = FaceMatch.from_json(p["face_match"])
    assert fm == matched.face_match and fm.decision == "match" and 0 < fm.distance <= fm.threshold == 0.6
    assert fm.model.startswith("dlib_face_recognition_resnet_model_v1") and "dlib 20" in fm.model
    import face_recognition_models
    weights = Path(face_recognition_models.face_recognition_model_location()).read_bytes()
    assert fm.model_sha256 == hashlib.sha256(weights).hexdigest()

    impostor = station.check_in(COLLINS, png(grace_hopper()))  # Hopper's face for Collins's identity
    q = impostor.record["payload"]
    assert q["result"] == "rejected" and q["face_match"]["decision"] == "no_match"
    assert q["face_match"]["distance"] > 0.6

    for photo, reason in ((png(np.full((240, 320, 3), 128, np.uint8)), "found 0"),
                          (png(np.concatenate([astronaut(), cv2.resize(grace_hopper(), (260, 300))], axis=1)),
                           "found 2"),
                          (b"not an image", "not an image")):
        with pytest.raises(CheckinRefused, match=reason):
            station.check_in(COLLINS, photo)
    with pytest.raises(CheckinRefused, match="no enrolled photo for this identity number"):
        station.check_in("370102197001013000", png(astronaut()))
    assert len(queue.records()) == 2  # only the two compared check-ins were queued

    assert queue.send_pending().sent == 2  # the notary takes both, with their comparisons
    logged = live_notary.entries()
    assert [e.record["payload"]["result"] for e in logged] == ["matched", "rejected"]
    assert logged[0].record["payload"]["face_match"] == fm.to_json()
    for e in logged:  # the log holds the photo's digest, never the photo
        digest = e.record["payload"]["photo_sha256"]
        assert station.blobs.get(digest)[:8] == b"\x89PNG\r\n\x1a\n"
    queue.close()


def test_the_notary_refuses_a_comparison_that_contradicts_its_result(live_notary: LiveNotary) -> None:
    key = SubmitterKey.generate(DEVICE)
    live_notary.register(key)
    client = NotaryClient(live_notary.url)
    match = {"decision": "match", "distance": 0.31, "threshold": 0.6, "model": "dlib_face_recognition_resnet_model_v1",
             "model_sha256": "ab" * 32}

    def checkin(result: str, face_match: dict[str, Any]) -> dict[str, Any]:
        return {"type": "checkin", "project_id": "P-1", "session_id": "S-1", "venue_id": "V-1", "device_id": DEVICE,
                "occurred_at": "2026-11-26T10:00:00+08:00",
                "payload": {"expert_commitment": "c1:" + "0" * 64, "method": "face", "result": result,
                            "face_match": face_match}}

    for result, face_match, reason in (
            ("rejected", match, "result must be matched"),
            ("matched", {**match, "distance": 0.71}, "says match but its distance 0.71 > threshold 0.6"),
            ("matched", {**match, "model": ""}, "model must be non-empty text"),
            ("matched", {**match, "distance": 0.123456}, "at most 4 decimals"),
            ("matched", {**match, "model": "resnet 370102197001011234"}, "resident identity number")):
        with pytest.raises(Exception, match=reason):
            client.submit(key, [checkin(result, face_match)])
    assert client.submit(key, [checkin("matched", match)])[0].leaf_index >= 0
    client.close()


def test_enrol_and_checkin_commands_compare_faces(live_notary: LiveNotary, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from devices.cli import app

    enrolled, presented, other = tmp_path / "enrolled.png", tmp_path / "presented.png", tmp_path / "other.png"
    enrolled.write_bytes(png(astronaut()))
    presented.write_bytes(png(_light(0.45)(astronaut())))
    other.write_bytes(png(grace_hopper()))
    state = ["--state-dir", str(tmp_path / "s")]
    env = {"BIDTRACE_IDENTITY_NUMBER": COLLINS}
    runner = CliRunner()
    done = runner.invoke(app, ["enrol", "--photo", str(enrolled), *state], env=env)
    assert done.exit_code == 0 and "enrolled photo" in done.output, done.output
    refused = runner.invoke(app, ["enrol", "--photo", str(tmp_path / "missing.png"), *state], env=env)
    assert refused.exit_code == 2 and "enrolment refused" in refused.output
    key = SubmitterKey.load_or_create(tmp_path / "s" / f"{DEVICE}.key", DEVICE)
    live_notary.register(key)
    common = ["--venue", "V-1", "--device-id", DEVICE, "--project", "P-1", "--session", "S-1",
              "--notary", live_notary.url, *state]
    matched = runner.invoke(app, ["checkin", "--source", str(presented), *common], env=env)
    assert matched.exit_code == 0, matched.output
    assert "result matched by face_recognition-dlib-resnet: match, distance 0.1" in matched.output
    rejected = runner.invoke(app, ["checkin", "--source", str(other), *common], env=env)
    assert rejected.exit_code == 0 and "result rejected" in rejected.output and ": no_match, distance 0.6" in \
        rejected.output, rejected.output
    stranger = runner.invoke(app, ["checkin", "--source", str(other), *common],
                             env={"BIDTRACE_IDENTITY_NUMBER": HOPPER})
    assert stranger.exit_code == 2 and "no enrolled photo for this identity number" in stranger.output
    plain = runner.invoke(app, ["checkin", "--source", str(other), "--no-verify-face", *common],
                          env={"BIDTRACE_IDENTITY_NUMBER": HOPPER})
    assert plain.exit_code == 0 and "result unverified (no face comparison: unverified)" in plain.output
