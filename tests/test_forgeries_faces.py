"""Forged identities: a roster that says "identity verified" where no face matched, and one check-in made to
serve two experts. The hub (or a notary that let its schema slip) can log such records; `bidtrace verify`
must refuse every one of them with a reason, while the genuine extract verifies.

The face comparisons in these records come from the real model (dlib's ResNet embedding) on photographs
shipped in scikit-image and matplotlib; a forged one is a real comparison edited.
"""

from pathlib import Path
from typing import Any

import cv2
import pytest

import notary.log
from devices.checkin import BlobStore
from devices.face import EnrolledPhotos, FaceRecognitionVerifier
from devices.portraits import astronaut, grace_hopper, png
from notary.log import Disclosure
from tests.forgery_kit import IDENTITY, SALT, Project, booking, messages, record, verify
from verifier.commitments import commit
from verifier.extract import ExtractReport, Verdict
from verifier.face import FaceMatch


@pytest.fixture(scope="module")
def comparisons(tmp_path_factory: pytest.TempPathFactory) -> tuple[FaceMatch, FaceMatch]:
    """Collins's face against her enrolled photo (match), and Hopper's against it (no match)."""
    folder = tmp_path_factory.mktemp("enrolled")
    faces = FaceRecognitionVerifier(EnrolledPhotos(BlobStore(folder / "b", folder / "k"), folder / "i.json"))
    faces.enrol(IDENTITY, png(astronaut()))
    smaller = cv2.resize(astronaut(), None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    match, no_match = faces.verify(smaller, IDENTITY).match, faces.verify(grace_hopper(), IDENTITY).match
    assert match is not None and match.matched and no_match is not None and not no_match.matched
    return match, no_match


def checkin(result: str, face_match: dict[str, Any] | None, session: str = "S-1") -> dict[str, Any]:
    payload: dict[str, Any] = {"expert_commitment": commit(SALT, IDENTITY), "method": "face", "result": result,
                               "provider": "face_recognition-dlib-resnet"}
    if face_match is not None:
        payload["face_match"] = face_match
    return record("checkin", payload, device="V-1.checkin", session=session)


def entry(expert: str, leaf: int, status: str = "present", identity: str | None = "verified") -> dict[str, Any]:
    e: dict[str, Any] = {"expert_id": expert, "venue_id": "V-1", "draw_id": "D-1", "status": status,
                         "checkin_leaf": leaf}
    if identity is not None:
        e["identity"] = identity
    return e


class Session:
    """A project with three check-ins at V-1: Collins matched, Hopper's face rejected, one unverified."""

    def __init__(self, folder: Path, comparisons: tuple[FaceMatch, FaceMatch]) -> None:
        match, no_match = comparisons
        self.project = Project(folder)
        opening = [Disclosure(0, "expert_commitment", SALT.hex(), IDENTITY)]
        [self.matched] = self.project.submit("V-1.checkin", [checkin("matched", match.to_json())], opening)
        [self.rejected] = self.project.submit("V-1.checkin", [checkin("rejected", no_match.to_json())], opening)
        [self.unverified] = self.project.submit("V-1.checkin", [checkin("unverified", None)], opening)

    def roster(self, roster_id: str, *entries: dict[str, Any]) -> None:
        self.project.submit("hub-1", [record("roster", {"roster_id": roster_id, "experts": list(entries)})])

    def verify(self, tmp_path: Path) -> ExtractReport:
        genuine = self.project.finish()
        return verify(tmp_path, genuine.data, genuine.roots)


def _failed(report: ExtractReport, *fragments: str) -> None:
    assert report.verdict is Verdict.FAILED, messages(report)
    for fragment in fragments:
        assert fragment in messages(report), f"{fragment!r} not in {messages(report)}"


def test_the_genuine_roster_verifies_and_shows_who_is_unverified(
        tmp_path: Path, comparisons: tuple[FaceMatch, FaceMatch]) -> None:
    s = Session(tmp_path / "p", comparisons)
    s.roster("R-1", entry("E-001", s.matched), entry("E-002", s.unverified, identity="unverified"),
             entry("E-003", s.rejected, status="rejected", identity=None))
    report = s.verify(tmp_path)
    assert report.verdict is Verdict.VERIFIED, messages(report)
    [found] = [f for f in report.sessions if f.name == "roster R-1 identities"]
    assert found.ok and found.detail == ("1 present — identity verified by face (E-001); "
                                         "1 present — unverified (E-002)")


def test_verified_where_no_face_matched_is_refused(tmp_path: Path, comparisons: tuple[FaceMatch, FaceMatch]) -> None:
    s = Session(tmp_path / "p", comparisons)
    s.roster("R-1", entry("E-002", s.unverified), entry("E-003", s.rejected))
    _failed(s.verify(tmp_path),
            f"E-002 is marked identity verified but check-in leaf {s.unverified} does not verify it: it carries no "
            "face comparison (result unverified)",
            f"E-003 is marked identity verified but check-in leaf {s.rejected} does not verify it: its face "
            f"comparison says no_match (distance {comparisons[1].distance} > threshold 0.6)")


def test_one_check_in_for_two_experts_is_refused(tmp_path: Path, comparisons: tuple[FaceMatch, FaceMatch]) -> None:
    s = Session(tmp_path / "p", comparisons)
    s.roster("R-1", entry("E-001", s.matched), entry("E-004", s.matched))
    _failed(s.verify(tmp_path), f"check-in at leaf {s.matched}: one check-in is attached to 2 experts "
                                "(E-001, E-004); a check-in serves exactly one expert")


def test_one_check_in_for_two_experts_across_rosters_is_refused(
        tmp_path: Path, comparisons: tuple[FaceMatch, FaceMatch]) -> None:
    s = Session(tmp_path / "p", comparisons)
    s.roster("R-1", entry("E-001", s.matched))
    s.roster("R-2", entry("E-004", s.matched, identity="unverified"))
    _failed(s.verify(tmp_path), "attached to 2 experts (E-001, E-004)")


def test_verified_on_what_is_no_check_in_of_the_session_is_refused(
        tmp_path: Path, comparisons: tuple[FaceMatch, FaceMatch]) -> None:
    s = Session(tmp_path / "p", comparisons)
    [elsewhere] = s.project.submit("V-1.checkin", [checkin("matched", comparisons[0].to_json(), session="S-2")])
    [slot] = s.project.submit("hub-1", [booking("2026-11-26T09:30:00+08:00", "2026-11-26T17:30:00+08:00")])
    s.roster("R-1", entry("E-001", slot), entry("E-005", elsewhere), entry("E-006", 10_000))
    _failed(s.verify(tmp_path), f"check-in leaf {slot} does not verify it: it is a booking record, not a check-in",
            f"E-005 is marked identity verified on leaf {elsewhere}, a check-in of session S-2",
            "E-006 is marked identity verified but its check-in (leaf 10000) is not in the extract")


@pytest.mark.parametrize(("edit", "reason"), [
    ({"distance": 0.8}, "says match but its distance 0.8 > threshold"),
    ({"threshold": 0.9, "distance": 0.8}, None),  # consistent, so it verifies: the threshold is stated, and shown
    ({"model": ""}, "face_match model must be non-empty text"),
    ({"model_sha256": "0" * 63}, "model_sha256 must be 64 lower-case hex characters"),
    ({"decision": "likely"}, "decision must be one of match, no_match"),
    ({"distance": "0.1"}, "distance must be a number"),
])
def test_a_comparison_a_lax_notary_let_through_is_refused(
        tmp_path: Path, comparisons: tuple[FaceMatch, FaceMatch], monkeypatch: pytest.MonkeyPatch,
        edit: dict[str, Any], reason: str | None) -> None:
    s = Session(tmp_path / "p", comparisons)
    monkeypatch.setattr(notary.log, "validate_record", lambda r: str(r["type"]))  # its schema check slipped
    [forged] = s.project.submit("V-1.checkin", [checkin("matched", {**comparisons[0].to_json(), **edit})])
    monkeypatch.undo()
    s.roster("R-1", entry("E-001", forged))
    report = s.verify(tmp_path)
    if reason is None:
        assert report.verdict is Verdict.VERIFIED, messages(report)
        assert "0.9" in str(report.entries[forged].record["payload"]["face_match"]["threshold"])
    else:
        _failed(report, f"check-in leaf {forged} does not verify it: its face_match does not hold", reason)


def test_a_provider_saying_matched_without_a_comparison_verifies_nobody(
        tmp_path: Path, comparisons: tuple[FaceMatch, FaceMatch]) -> None:
    s = Session(tmp_path / "p", comparisons)
    [bare] = s.project.submit("V-1.checkin", [checkin("matched", None)])
    s.roster("R-1", entry("E-001", bare))
    _failed(s.verify(tmp_path), f"check-in leaf {bare} does not verify it: it carries no face comparison "
                                "(result matched)")
