"""Forgeries of an audit extract, each built from a genuine one, and each refused with a reason.

Two kinds of forger: anyone (edits members and lays the zip out again) and the notary itself (can also list
the members anew and re-sign the manifest). Neither may obtain VERIFIED.
"""

import json
import tracemalloc
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from notary.log import Disclosure
from tests.conftest import CONFIGURED
from tests.forgery_kit import (
    IDENTITY,
    SALT,
    Genuine,
    Project,
    files_of,
    genuine_project,
    messages,
    record,
    record_of_type,
    resign,
    rezip,
    segment_bytes,
    segments,
    verify,
)
from verifier import extract as extract_module
from verifier.canonical import canonical_bytes
from verifier.commitments import SALT_SIZE, commit
from verifier.commitments import Disclosure as Opening
from verifier.errors import CommitmentError, ExtractError, MalformedInput
from verifier.extract import Verdict, read_members
from verifier.manifest import MANIFEST
from verifier.note import Checkpoint


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Genuine:
    return genuine_project(tmp_path_factory.mktemp("genuine"))


def test_the_genuine_extract_verifies(tmp_path: Path, genuine: Genuine) -> None:
    report = verify(tmp_path, genuine.data, genuine.roots)
    assert report.verdict is Verdict.VERIFIED, messages(report)
    names = {s.name for s in report.sessions}
    assert {"draw D-1", "archive A-S-1 of session S-1", "recordings of S-1 at V-1 within the booked slot"} <= names


# 1. Self-trust -------------------------------------------------------------------------------------------

def test_extract_rekeyed_under_genuine_names_is_never_verified(tmp_path: Path, genuine: Genuine) -> None:
    # The forger runs a notary, ledger and submitters of their own under the genuine names (log "province",
    # ledger org "ProvinceMSP", hub-1, V-1.cam1), leaves out what they dislike, and ships their own roots.
    forger = Project(tmp_path / "forger")
    forger.draw("D-1")
    forged = forger.finish()
    assert forged.roots.notaries[0].note_key.name == genuine.roots.notaries[0].note_key.name

    against_genuine = verify(tmp_path, forged.data, genuine.roots)
    assert against_genuine.verdict is Verdict.FAILED
    assert "manifest is not signed by notary" in messages(against_genuine)

    alone = verify(tmp_path, forged.data, None)
    assert alone.verdict is Verdict.UNTRUSTED and alone.consistent
    shown = "\n".join(alone.needed_roots)
    assert forged.roots.notaries[0].fingerprint in shown
    assert genuine.roots.notaries[0].fingerprint not in shown


def test_claimed_roots_swapped_in_a_genuine_extract_change_nothing(tmp_path: Path, genuine: Genuine) -> None:
    files = files_of(genuine.data)
    forger = Project(tmp_path / "forger")
    forged = forger.finish()
    files["claimed-roots.json"] = forged.roots.encode()
    report = verify(tmp_path, rezip(files), None)
    assert report.verdict is Verdict.FAILED


# 2. Unsigned bytes ---------------------------------------------------------------------------------------

def _edit_json(files: dict[str, bytes], name: str, change: Any) -> None:
    value = json.loads(files[name])
    change(value)
    files[name] = canonical_bytes(value)


def _court_summary(value: dict[str, Any]) -> None:
    value["court_summary"] = "no misconduct"


RAW_EDITS: list[tuple[str, Any, str | None]] = [
    ("key beside the signed entry", lambda f, n: _edit_json(f, n, _court_summary), "exactly the fields"),
    ("entry key twice", lambda f, n: f.update({n: f[n].replace(b'{"disclosures"', b'{"entry":{},"disclosures"', 1)}),
     "twice"),
    ("leaf index 9999", lambda f, n: _edit_json(f, n, lambda v: v.update(leaf_index=9999)), "says leaf 9999"),
    ("leaf index NaN", lambda f, n: f.update({n: f[n].replace(b'"leaf_index":', b'"leaf_index":NaN,"x":', 1)}),
     "not a JSON number"),
    ("6.0 for 6", lambda f, n: f.update({n: f[n].replace(b'"leaf_index":', b'"leaf_index":1.0,"y":', 1)}),
     "canonical"),
    ("white space", lambda f, n: f.update({n: f[n] + b" "}), "canonical"),
    ("upper-case hex", lambda f, n: _edit_json(f, n, lambda v: v["inclusion_proof"].__setitem__(
        0, v["inclusion_proof"][0].upper())), "lower-case hex"),
    ("disclosures removed", lambda f, n: _edit_json(f, n, lambda v: v.update(disclosures=[])), None),
]


@pytest.mark.parametrize(("name", "edit", "message"), RAW_EDITS, ids=[e[0] for e in RAW_EDITS])
@pytest.mark.parametrize("forger", ["anyone", "notary"])
def test_bytes_no_signature_covers_are_refused(tmp_path: Path, genuine: Genuine, name: str, edit: Any,
                                               message: str | None, forger: str) -> None:
    files = files_of(genuine.data)
    target = record_of_type(files, "checkin")
    edit(files, target)
    if forger == "notary":
        resign(files, genuine.key)
    report = verify(tmp_path, rezip(files), genuine.roots)
    if forger == "notary" and message is None:
        # Disclosing less is the notary's choice; what stays must still be true.
        assert report.verdict is Verdict.VERIFIED, messages(report)
        return
    assert report.verdict is Verdict.FAILED, name
    expected = "is not the member the notary signed" if forger == "anyone" else message
    assert expected is not None and expected in messages(report), messages(report)


def test_duplicate_key_in_the_signed_manifest_is_refused(tmp_path: Path, genuine: Genuine) -> None:
    files = files_of(genuine.data)
    manifest = files[MANIFEST]
    raw = manifest.replace(b'{"anchor"', b'{"project_id":"P-OTHER","anchor"', 1)
    resign(files, genuine.key, raw=raw)
    files[MANIFEST] = raw
    report = verify(tmp_path, rezip(files), genuine.roots)
    assert report.verdict is Verdict.FAILED and "twice" in messages(report)


def test_unlisted_and_missing_members_fail(tmp_path: Path, genuine: Genuine) -> None:
    files = files_of(genuine.data)
    files["NOTES.txt"] = b"the court need not look at leaf 3"
    report = verify(tmp_path, rezip(files), genuine.roots)
    assert report.verdict is Verdict.FAILED and "does not list: NOTES.txt" in messages(report)
    resign(files, genuine.key)  # even listed and signed, a member outside the format is refused
    report = verify(tmp_path, rezip(files), genuine.roots)
    assert report.verdict is Verdict.FAILED and "not part of the format: NOTES.txt" in messages(report)
    files = files_of(genuine.data)
    files.pop("SUMMARY.txt")
    report = verify(tmp_path, rezip(files), genuine.roots)
    assert report.verdict is Verdict.FAILED and "extract has no SUMMARY.txt" in messages(report)


# 3. Shifting a disclosure --------------------------------------------------------------------------------

def test_bytes_cannot_move_between_salt_and_value(tmp_path: Path, genuine: Genuine) -> None:
    files = files_of(genuine.data)
    target = record_of_type(files, "checkin")

    def shift(value: dict[str, Any]) -> None:
        d = value["disclosures"][0]
        d["salt"] = d["salt"] + IDENTITY[:2].encode().hex()
        d["value"] = IDENTITY[2:]

    _edit_json(files, target, shift)
    resign(files, genuine.key)
    report = verify(tmp_path, rezip(files), genuine.roots)
    assert report.verdict is Verdict.FAILED and "(32 bytes)" in messages(report)


def test_commitment_scheme_is_fixed_length_domain_separated_and_versioned() -> None:
    c = commit(SALT, IDENTITY)
    assert c.startswith("c1:") and len(c) == 3 + 64
    Opening("expert_commitment", SALT, IDENTITY).opens(c)
    with pytest.raises(CommitmentError):  # a salt of any other length is no salt of this scheme
        commit(SALT + b"3", IDENTITY[1:])
    with pytest.raises(CommitmentError):  # the bare hash without the scheme's tag opens nothing
        Opening("expert_commitment", SALT, IDENTITY).opens(c[3:])
    with pytest.raises(MalformedInput):
        Opening.parse({"field": "expert_commitment", "salt": SALT.hex()[:-2], "value": IDENTITY})
    assert len(SALT) == SALT_SIZE == 32


def test_notary_refuses_openings_under_a_short_salt(tmp_path: Path) -> None:
    project = Project(tmp_path / "p")
    salt = bytes(16)
    with pytest.raises(Exception, match="64 lower-case hex"):
        project.submit("V-1.checkin", [record("checkin", {"expert_commitment": "c1:" + "0" * 64, "method": "face",
                                                          "result": "unverified"}, device="V-1.checkin")],
                       [Disclosure(0, "expert_commitment", salt.hex(), IDENTITY)])
    project.notary.close()


# 4. Zip bombs --------------------------------------------------------------------------------------------

def _compressed_member(files: dict[str, bytes], name: str, content: bytes) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for n, data in files.items():
            zf.writestr(n, data)
        zf.writestr(zipfile.ZipInfo(name), content, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buffer.getvalue()


def test_compressed_bomb_is_refused_before_it_is_inflated(tmp_path: Path, genuine: Genuine) -> None:
    bomb = _compressed_member(files_of(genuine.data), "records/000000009999.json", bytes(200 * 1024 * 1024))
    assert len(bomb) < 1024 * 1024
    tracemalloc.start()
    report = verify(tmp_path, bomb, genuine.roots)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.verdict is Verdict.FAILED and "is compressed; extract members must be stored" in messages(report)
    assert peak < 8 * 1024 * 1024, peak


def test_sizes_in_the_central_directory_are_checked_before_reading(tmp_path: Path, genuine: Genuine,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # A stored member whose central directory entry claims more than it holds.
    data = bytearray(genuine.data)
    directory = data.rindex(b"PK\x01\x02")  # the last member's central directory entry
    data[directory + 24:directory + 28] = (2**31).to_bytes(4, "little")  # uncompressed size
    report = verify(tmp_path, bytes(data), genuine.roots)
    assert report.verdict is Verdict.FAILED and "claims 2147483648 bytes" in messages(report)
    monkeypatch.setattr(extract_module, "MAX_MEMBER_BYTES", 1000)
    report = verify(tmp_path, genuine.data, genuine.roots)
    assert report.verdict is Verdict.FAILED and "more than the limit of 1000" in messages(report)
    monkeypatch.setattr(extract_module, "MAX_MEMBERS", 5)
    report = verify(tmp_path, genuine.data, genuine.roots)
    assert report.verdict is Verdict.FAILED and "more than the limit of 5" in messages(report)


def test_an_archive_larger_than_the_limit_is_not_read(tmp_path: Path, genuine: Genuine) -> None:
    path = tmp_path / "big.zip"
    path.write_bytes(genuine.data)
    with pytest.raises(ExtractError, match=f"extract is {len(genuine.data)} bytes, more than the limit of 100"):
        read_members(path, lambda name, data: None, max_bytes=100)


# 5. Orphan draw commitments, records after the archive ---------------------------------------------------

def test_a_draw_committed_and_never_drawn_fails(tmp_path: Path) -> None:
    project = Project(tmp_path / "p")
    project.draw("D-1", publish=False)  # its beacon was seen; its outcome was not liked
    project.draw("D-2")
    report = verify(tmp_path, project.finish().data, None)
    assert report.verdict is Verdict.FAILED
    expected = f"draw D-1 committed at leaf {CONFIGURED + 1}: has no result and no reasoned cancellation"
    assert expected in messages(report)


def test_a_reasoned_cancellation_by_the_committer_resolves_a_draw(tmp_path: Path) -> None:
    project = Project(tmp_path / "p")
    project.draw("D-1", publish=False)
    reason = "评标推迟 (evaluation postponed)"
    project.submit("hub-1", [record("draw_cancellation", {"draw_id": "D-1", "reason": reason})])
    project.draw("D-2")
    genuine = project.finish()
    report = verify(tmp_path, genuine.data, genuine.roots)
    assert report.verdict is Verdict.VERIFIED, messages(report)
    cancelled = next(s for s in report.sessions if s.name.startswith("draw D-1 committed"))
    assert "evaluation postponed" in cancelled.detail


def test_a_cancellation_by_someone_else_does_not_resolve_a_draw(tmp_path: Path) -> None:
    project = Project(tmp_path / "p")
    project.draw("D-1", publish=False)
    project.notary.log.register_submitter("hub-2", "hub", project.people.hub.public_pem())
    other = record("draw_cancellation", {"draw_id": "D-1", "reason": "not needed"})
    from notary.log import Submission
    project.notary.log.submit(Submission("hub-2", [other], _resigned_as("hub-2", project, [other])))
    genuine = project.finish()
    report = verify(tmp_path, genuine.data, genuine.roots)
    assert report.verdict is Verdict.FAILED and "signed by its committer hub-1" in messages(report)


def _resigned_as(who: str, project: Project, records: list[dict[str, Any]]) -> str:
    from notary.client import SubmitterKey

    key = SubmitterKey(who, project.people.hub.private_key)
    return key.sign_batch(records)


def test_records_after_the_archive_are_flagged(tmp_path: Path) -> None:
    project = Project(tmp_path / "p")
    project.session()
    project.archive()
    project.submit("hub-1", [record("incident", {"incident_id": "I-9", "kind": "other", "description": "late",
                                                 "started_at": datetime.now(UTC).isoformat()})])
    genuine = project.finish()
    report = verify(tmp_path, genuine.data, genuine.roots)
    assert report.verdict is Verdict.FAILED and "1 record(s) of the session were logged after its archive" in \
        messages(report)


def test_the_archive_is_cross_checked_with_the_records(tmp_path: Path) -> None:
    project = Project(tmp_path / "p")
    project.session()
    leaves, hashes = [], []
    for seq, entry in project.notary.log.entries(after=-1, limit=1000, project_id="P-1"):
        if seq != 2:  # the archive "forgets" one record of the session
            from verifier.merkle import leaf_hash
            leaves.append(seq)
            hashes.append(leaf_hash(entry).hex())
    project.submit("hub-1", [record("archive", {"archive_id": "A-S-1", "leaves": leaves, "leaf_hashes": hashes})])
    genuine = project.finish()
    report = verify(tmp_path, genuine.data, genuine.roots)
    assert report.verdict is Verdict.FAILED and "records 2 of the session are missing from its archive" in \
        messages(report)


# 6. Checkpoint origin ------------------------------------------------------------------------------------

def test_a_checkpoint_of_another_log_fails_even_under_the_notarys_key(tmp_path: Path, genuine: Genuine) -> None:
    files = files_of(genuine.data)
    manifest = json.loads(files[MANIFEST])
    cp = manifest["checkpoint"]
    note = genuine.key.sign_checkpoint(Checkpoint("bidtrace/qingdao", cp["size"], bytes.fromhex(cp["root"])))
    manifest["checkpoint"]["note"] = note
    manifest["origin"] = "bidtrace/qingdao"
    resign(files, genuine.key, manifest)
    report = verify(tmp_path, rezip(files), genuine.roots)
    assert report.verdict is Verdict.FAILED and "it is another log's checkpoint" in messages(report)


# 7. Media ------------------------------------------------------------------------------------------------

def test_missing_media_fails_unless_partial(tmp_path: Path, genuine: Genuine) -> None:
    report = verify(tmp_path, genuine.data, genuine.roots, media=tmp_path / "nothing-here")
    assert report.verdict is Verdict.FAILED and "6 segment files are missing" in messages(report)
    media = tmp_path / "media" / "V-1"
    media.mkdir(parents=True)
    for i in range(6):
        (media / f"cam1-{i:05d}.mp4").write_bytes(segment_bytes(i))
    assert verify(tmp_path, genuine.data, genuine.roots, media=media.parent).verdict is Verdict.VERIFIED
    (media / "cam1-00004.mp4").unlink()
    (media / "cam1-00005.mp4").unlink()
    report = verify(tmp_path, genuine.data, genuine.roots, media=media.parent)
    assert report.verdict is Verdict.FAILED and "media V-1/cam1: 4 of 6 segment files present, 2 missing" in \
        messages(report)
    partial = verify(tmp_path, genuine.data, genuine.roots, media=media.parent, media_partial=True)
    assert partial.verdict is Verdict.VERIFIED


# 8. Times ------------------------------------------------------------------------------------------------

def test_a_capture_time_after_the_receipt_fails(tmp_path: Path) -> None:
    project = Project(tmp_path / "p")
    project.submit("hub-1", [record("incident", {"incident_id": "I-1", "kind": "other", "description": "x",
                                                 "started_at": datetime.now(UTC).isoformat()},
                                    occurred_at=(datetime.now(UTC) + timedelta(seconds=49)).isoformat())])
    genuine = project.finish()
    report = verify(tmp_path, genuine.data, genuine.roots)
    assert report.verdict is Verdict.FAILED and "after the notary received it" in messages(report)


def test_a_recording_outside_the_booked_slot_fails(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    project = Project(tmp_path / "p", slot=(now - timedelta(minutes=5), now + timedelta(hours=1)))
    project.submit("V-1.cam1", segments(3, now - timedelta(minutes=30)))
    genuine = project.finish()
    report = verify(tmp_path, genuine.data, genuine.roots)
    assert report.verdict is Verdict.FAILED and "3 of 3 segments" in messages(report)
    assert "is outside the slot" in messages(report)


# 9. One tag for the ledger kind --------------------------------------------------------------------------

def test_anchor_evidence_must_carry_its_ledger_tag(tmp_path: Path, genuine: Genuine) -> None:
    files = files_of(genuine.data)
    manifest = json.loads(files[MANIFEST])
    evidence = manifest["anchor"]["evidence"]
    evidence["kind"] = evidence.pop("ledger")
    resign(files, genuine.key, manifest)
    report = verify(tmp_path, rezip(files), genuine.roots)
    assert report.verdict is Verdict.FAILED and 'must be tagged "ledger"' in messages(report)



def test_records_shaped_unlike_the_schemas_fail_session_checks_without_a_crash() -> None:
    # Only the notary's schemas shape payloads; an extract checked against a forger's own roots has no such
    # guarantee. A session check over such records must fail, not raise.
    from verifier.entry import LogEntry
    from verifier.extract import _guarded
    from verifier.session import archive_completeness, draw_commitments_resolved, recordings_within_booked_slots
    from verifier.signatures import BatchSignature

    odd = [LogEntry(leaf_index=i, project_seq=i, received_at="2026-11-26T02:00:00.000000Z", submitter="hub-1",
                    record={"type": kind, "session_id": "S-1", "payload": [1, 2]},
                    signature=BatchSignature(1, 0, (), b""), algorithm="ed25519")
           for i, kind in enumerate(["booking", "recording_segment", "draw_commitment", "archive"])]
    for name, check in (("archive", lambda: archive_completeness(odd, {})),
                        ("draw commitments", lambda: draw_commitments_resolved(odd)),
                        ("booked slots", lambda: recordings_within_booked_slots(odd))):
        findings = _guarded(name, check)
        assert findings and not all(f.ok for f in findings), name


def test_a_deadline_missed_without_its_alarm_fails(tmp_path: Path) -> None:
    """A hub that lets an objection's relay deadline pass and raises no alarm kept the miss quiet: verify fails
    it. With the alarm in the log, the same miss is a proven fact of the handling and the extract verifies."""
    def objection(objection_id: str, **extra: object) -> dict[str, object]:
        return record("objection", {"objection_id": objection_id, "status": "received", "summary": "质疑",
                                    "filed_by_commitment": commit(bytes(32), "某投标人"),
                                    "relay_deadline": "2026-01-05T09:00:00+08:00", **extra})

    project = Project(tmp_path)
    project.session()
    project.submit("hub-1", [objection("O-1"), objection("O-2")])
    project.submit("hub-1", [objection("O-2", alarm="relay_overdue")])
    genuine = project.finish()
    report = verify(tmp_path, genuine.data, genuine.roots)
    findings = {s.name: s for s in report.sessions if s.name.startswith("objection")}
    assert not findings["objection O-1"].ok
    assert "no alarm was raised" in findings["objection O-1"].detail, messages(report)
    assert findings["objection O-2"].ok and "alarm raised at leaf" in findings["objection O-2"].detail
    assert not report.ok
