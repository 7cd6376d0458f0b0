"""Session-level promises in an extract: the expert draw re-runs identically, each recording is complete."""

import hashlib
from pathlib import Path
from typing import Any

from notary.extract import build_extract, published_roots
from notary.log import Submission
from notary.service import Notary
from tests.conftest import CONFIGURED, Participants, make_config, recording
from verifier.draw import draw, pool_digest
from verifier.extract import verify_extract
from verifier.receipt import Receipt

POOL = [f"E-{i:03d}" for i in range(1, 61)]
SEED = bytes(range(32))


def _record(kind: str, payload: dict[str, Any], device: str = "hub-1") -> dict[str, Any]:
    return {"type": kind, "project_id": "P-1", "session_id": "S-1", "venue_id": "V-1", "device_id": device,
            "occurred_at": "2026-11-26T09:00:00+08:00", "payload": payload}


def _submit(notary: Notary, people: Participants, who: str, records: list[dict[str, Any]]) -> list[Receipt]:
    key = people.hub if who == "hub-1" else people.camera
    return notary.log.submit(Submission(who, records, key.sign_batch(records))).receipts


def _session(tmp_path: Path, tamper_selection: bool = False, skip_segment: int | None = None,
             late_beacon: bool = False) -> Any:
    notary = Notary(make_config(tmp_path / "n"))
    people = Participants(notary)
    commitment = _record("draw_commitment", {
        "draw_id": "D-1", "pool": POOL, "pool_digest": pool_digest(POOL), "criteria": {"specialty": "civil"},
        "count": 5, "recusal_rules": ["same employer"], "seed_commitment": hashlib.sha256(SEED).hexdigest(),
        "excluded_digest": pool_digest(["E-007"])})  # recusals are fixed before the beacon, as the hub does
    leaf = _submit(notary, people, "hub-1", [commitment])[0].leaf_index
    anchor = notary.sealer.seal()
    assert anchor is not None
    if late_beacon:  # wait for a later anchor and use its root instead of the first one covering the leaf
        _submit(notary, people, "hub-1", [_record("incident", {
            "incident_id": "I-1", "kind": "other", "description": "x", "started_at": "2026-11-26T09:00:00+08:00"})])
        anchor = notary.sealer.seal()
        assert anchor is not None
    selected = draw(POOL, 5, SEED, anchor.root, frozenset({"E-007"}))
    if tamper_selection:
        selected = [*selected[:4], next(e for e in POOL if e not in selected and e != "E-007")]
    _submit(notary, people, "hub-1", [_record("draw_result", {
        "draw_id": "D-1", "commitment_leaf": leaf, "beacon": anchor.root.hex(), "revealed_seed": SEED.hex(),
        "excluded": ["E-007"], "selected": selected})])
    segments = [s for s in recording(0, 8) if s["payload"]["segment_index"] != skip_segment]
    _submit(notary, people, "V-1.cam1", segments)
    notary.sealer.seal()
    path = tmp_path / "x.zip"
    path.write_bytes(build_extract(notary.log, notary.ledger, "P-1"))
    roots = published_roots(notary.log, notary.ledger)
    notary.close()
    return verify_extract(path, roots)


def test_draw_and_recording_verify(tmp_path: Path) -> None:
    report = _session(tmp_path)
    assert report.ok, [s for s in report.sessions]
    checks = {s.name: s for s in report.sessions}
    assert checks["draw D-1"].ok and "5 of 60 re-drawn and identical" in checks["draw D-1"].detail
    assert checks["recording V-1/cam1"].ok


def test_changed_draw_result_is_detected(tmp_path: Path) -> None:
    report = _session(tmp_path, tamper_selection=True)
    draw_check = next(s for s in report.sessions if s.name == "draw D-1")
    assert not report.ok and not draw_check.ok and "the committed draw selects" in draw_check.detail


def test_beacon_must_be_the_first_anchor_covering_the_commitment(tmp_path: Path) -> None:
    report = _session(tmp_path, late_beacon=True)
    draw_check = next(s for s in report.sessions if s.name == "draw D-1")
    assert not report.ok and f"is not the first to cover leaf {CONFIGURED}" in draw_check.detail


def test_missing_segment_is_detected(tmp_path: Path) -> None:
    report = _session(tmp_path, skip_segment=3)
    rec = next(s for s in report.sessions if s.name == "recording V-1/cam1")
    assert not report.ok and not rec.ok and "segment 3 is missing" in rec.detail


def test_draw_is_uniform_enough_and_deterministic() -> None:
    beacon = hashlib.sha256(b"beacon").digest()
    assert draw(POOL, 5, SEED, beacon) == draw(POOL, 5, SEED, beacon)
    counts = dict.fromkeys(POOL, 0)
    for k in range(600):
        for e in draw(POOL, 5, SEED, hashlib.sha256(k.to_bytes(4, "big")).digest()):
            counts[e] += 1
    assert min(counts.values()) > 20 and max(counts.values()) < 90  # expected 50 each


def test_segment_files_are_checked_against_their_logged_hashes(tmp_path: Path) -> None:
    notary = Notary(make_config(tmp_path / "n"))
    people = Participants(notary)
    media = tmp_path / "media"
    media.mkdir()
    segments = recording(0, 4)
    previous = None
    for seg in segments:
        content = f"frames of segment {seg['payload']['segment_index']}".encode() * 1000
        name = f"cam1-{seg['payload']['segment_index']:05d}.mp4"
        (media / name).write_bytes(content)
        digest = hashlib.sha256(content).hexdigest()
        seg["payload"].update(sha256=digest, previous_segment=previous)
        seg["attachments"] = [{"name": name, "sha256": digest, "size": len(content), "media_type": "video/mp4"}]
        previous = digest
    _submit(notary, people, "V-1.cam1", segments)
    notary.sealer.seal()
    path = tmp_path / "x.zip"
    path.write_bytes(build_extract(notary.log, notary.ledger, "P-1"))
    roots = published_roots(notary.log, notary.ledger)
    notary.close()
    report = verify_extract(path, roots, media=media)
    assert report.ok and "4 of 4 segment files present, 0 missing" in _media(report).detail
    (media / "cam1-00003.mp4").unlink()
    report = verify_extract(path, roots, media=media)
    assert not report.ok and "1 segment files are missing" in _media(report).detail
    # A user who knows the copy is partial says so: missing files are then counted, not failed.
    report = verify_extract(path, roots, media=media, media_partial=True)
    assert report.ok and "3 of 4 segment files present, 1 missing" in _media(report).detail
    report = verify_extract(path, roots, media=tmp_path / "no-such-folder")
    assert not report.ok and "does not exist; 4 segment files are missing" in _media(report, "media").detail
    (media / "cam1-00003.mp4").write_bytes(b"x")
    edited = bytearray((media / "cam1-00001.mp4").read_bytes())
    edited[500] ^= 1  # one edited frame
    (media / "cam1-00001.mp4").write_bytes(bytes(edited))
    report = verify_extract(path, roots, media=media, media_partial=True)
    assert not report.ok and "segment 1 file cam1-00001.mp4 differs" in _media(report).detail


def _media(report: Any, name: str = "media V-1/cam1") -> Any:
    return next(s for s in report.sessions if s.name == name)
