"""The check-in station against a real notary over HTTP.

OpenCV's wheel ships the Haar cascades but no face photographs, and the tests download nothing and
generate no faces: the real detector is exercised on photos without a face (refused), and the path
after detection (encryption, commitment, disclosure, the record the notary accepts) with a stand-in
counter that reports what a detector would. Face verification with the real model on real photographs is
in test_face.py.
"""

import hashlib
import stat
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from devices.checkin import BlobStore, CheckinConfig, CheckinRefused, CheckinStation, HaarFaceCounter, capture_photo
from devices.cli import app
from devices.queue import EvidenceQueue
from notary.client import NotaryClient, SubmitterKey
from tests.devices.conftest import LiveNotary
from verifier.commitments import verify_disclosure

DEVICE = "V-1.checkin"


def no_face_photo(path: Path) -> Path:
    img = np.full((240, 320, 3), 200, np.uint8)
    cv2.rectangle(img, (40, 40), (140, 200), (30, 90, 160), -1)
    cv2.circle(img, (230, 120), 50, (20, 160, 60), -1)
    cv2.putText(img, "no face", (150, 220), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
    cv2.imwrite(str(path), img)
    return path


class Says:
    def __init__(self, n: int) -> None:
        self.n = n

    def count(self, image: Any) -> int:
        return self.n


@pytest.fixture
def station_parts(live_notary: LiveNotary, tmp_path: Path) -> tuple[EvidenceQueue, BlobStore]:
    key = SubmitterKey.generate(DEVICE)
    live_notary.register(key)
    queue = EvidenceQueue(tmp_path / "q.db", key, NotaryClient(live_notary.url))
    blobs = BlobStore(tmp_path / "blobs", tmp_path / "blob.key")
    return queue, blobs


CONFIG = CheckinConfig("P-1", "S-1", "V-1", DEVICE)


def test_no_face_is_refused_and_nothing_is_kept(station_parts: tuple[EvidenceQueue, BlobStore],
                                                tmp_path: Path) -> None:
    queue, blobs = station_parts
    station = CheckinStation(CONFIG, queue, blobs)  # the real Haar detector
    photo = capture_photo(str(no_face_photo(tmp_path / "empty.png")))
    image = cv2.imread(str(tmp_path / "empty.png"))
    assert image is not None and HaarFaceCounter().count(image) == 0
    with pytest.raises(CheckinRefused, match="exactly one face must be in the photo, found 0"):
        station.check_in("370102197001011000", photo)
    with pytest.raises(CheckinRefused, match="not an image"):
        station.check_in("370102197001011000", b"not an image")
    assert queue.status().pending == 0 and queue.records() == []
    assert list(blobs.directory.iterdir()) == []
    queue.close()


def test_two_faces_are_refused(station_parts: tuple[EvidenceQueue, BlobStore], tmp_path: Path) -> None:
    queue, blobs = station_parts
    station = CheckinStation(CONFIG, queue, blobs, faces=Says(2))
    with pytest.raises(CheckinRefused, match="found 2"):
        station.check_in("370102197001011000", capture_photo(str(no_face_photo(tmp_path / "p.png"))))
    assert queue.records() == []
    queue.close()


def test_one_face_is_checked_in_without_an_invented_result(
    station_parts: tuple[EvidenceQueue, BlobStore], live_notary: LiveNotary, tmp_path: Path
) -> None:
    queue, blobs = station_parts
    photo = capture_photo(str(no_face_photo(tmp_path / "p.png")))
    station = CheckinStation(CONFIG, queue, blobs, faces=Says(1))
    result = station.check_in("370102197001011000", photo)
    p = result.record["payload"]
    assert (p["method"], p["result"], p["provider"], p["faces_detected"]) == ("face", "unverified", None, 1)
    assert p["photo_sha256"] == hashlib.sha256(photo).hexdigest() == result.record["attachments"][0]["sha256"]
    # the photo is stored encrypted, named by its plaintext hash, with an owner-only key
    sealed = blobs.path(p["photo_sha256"]).read_bytes()
    assert photo not in sealed and blobs.get(p["photo_sha256"]) == photo
    assert stat.S_IMODE((tmp_path / "blob.key").stat().st_mode) == 0o600
    assert queue.send_pending().sent == 1
    # the notary checked the disclosure and holds it; the log holds only the commitment
    assert live_notary.notary is not None
    leaf = live_notary.size() - 1
    [opening] = live_notary.notary.log.disclosures(leaf)
    verify_disclosure(p["expert_commitment"], opening["salt"], opening["value"], "expert_commitment")
    assert b"370102197001011000" not in live_notary.notary.log.entry(leaf)  # type: ignore[operator]
    assert "face_match" not in p  # no comparison was made, so none is recorded (see test_face.py for one)
    queue.close()


def test_loose_key_file_is_refused(tmp_path: Path) -> None:
    BlobStore(tmp_path / "blobs", tmp_path / "blob.key")
    (tmp_path / "blob.key").chmod(0o644)
    with pytest.raises(PermissionError, match="must be 600"):
        BlobStore(tmp_path / "blobs", tmp_path / "blob.key")


def test_checkin_command_refuses_a_photo_without_a_face(live_notary: LiveNotary, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "checkin", "--source", str(no_face_photo(tmp_path / "p.png")), "--venue", "V-1", "--device-id", DEVICE,
        "--project", "P-1", "--session", "S-1", "--notary", live_notary.url, "--state-dir", str(tmp_path / "s"),
    ], env={"BIDTRACE_IDENTITY_NUMBER": "370102197001011000"})
    assert result.exit_code == 2
    assert "check-in refused: exactly one face must be in the photo, found 0" in result.output
