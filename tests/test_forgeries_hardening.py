"""Forgeries found by attacking the verifier class by class (THREATS.md), each refused with a reason and
none able to crash `verify`."""

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONFIGURED
from tests.forgery_kit import (
    POOL,
    SEED,
    Genuine,
    Project,
    commitment,
    files_of,
    genuine_project,
    messages,
    record,
    resign,
    rezip,
    segment_bytes,
    segments,
    verify,
)
from verifier.cli import printable, render
from verifier.draw import draw
from verifier.entry import LogEntry
from verifier.errors import CheckpointError, MalformedInput, VerificationError
from verifier.extract import ExtractReport, Verdict, check_capture_time
from verifier.findings import Finding
from verifier.manifest import MANIFEST
from verifier.note import NoteKey, parse_checkpoint
from verifier.session import archive_completeness, recordings_within_booked_slots
from verifier.signatures import BatchSignature
from verifier.strict import parse_canonical
from verifier.times import format_time
from verifier.trust import NotaryRoot, TrustRoots, TrustStore


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Genuine:
    return genuine_project(tmp_path_factory.mktemp("genuine"))


# Crash on malformed input --------------------------------------------------------------------------------

def test_an_integer_too_long_to_convert_is_a_refusal_not_a_traceback(tmp_path: Path, genuine: Genuine) -> None:
    # Python refuses to convert integers of more than 4300 digits with a plain ValueError; in the signed
    # manifest (the notary's key is the forger's) it escaped every handler and verify ended in a traceback.
    files = files_of(genuine.data)
    manifest = json.loads(files[MANIFEST])
    size = manifest["checkpoint"]["size"]
    resign(files, genuine.key, manifest)
    raw = files[MANIFEST].replace(f'"size":{size}'.encode(), b'"size":' + b"9" * 5000)
    resign(files, genuine.key, manifest, raw=raw)
    report = verify(tmp_path, rezip(files), genuine.roots)
    assert report.verdict is Verdict.FAILED
    assert "manifest.json is not JSON this verifier reads" in messages(report)


@pytest.mark.parametrize("reader", [lambda d: parse_canonical(d, "member"), TrustRoots.parse])
def test_every_json_reader_refuses_an_overlong_integer(reader: object) -> None:
    with pytest.raises(MalformedInput, match="not JSON"):
        reader(b'{"format":' + b"1" * 5000 + b"}")  # type: ignore[operator]


@pytest.mark.parametrize("size", ["\u00b2", "\u0661\u0662", "1" * 21, str(2**64)])
def test_a_checkpoint_size_is_ascii_digits_of_a_64_bit_number(size: str) -> None:
    # "²" passed str.isdigit and then made int() raise; "١٢" was another spelling of 12 under one signature.
    with pytest.raises(CheckpointError, match="checkpoint size must be a decimal number"):
        parse_checkpoint(f"bidtrace/province\n{size}\n{'A' * 43}=\n")
    assert parse_checkpoint(f"o\n{2**64 - 1}\n{'A' * 43}=\n").size == 2**64 - 1




# Grinding ------------------------------------------------------------------------------------------------

def test_a_draw_committed_twice_under_one_id_cannot_keep_the_outcome_it_likes(tmp_path: Path) -> None:
    # The hub commits draw D-1, sees the beacon, dislikes the outcome, commits D-1 again and publishes only the
    # second. A result was found "for D-1", so the first commitment passed as resolved.
    project = Project(tmp_path / "p")
    project.draw("D-1", publish=False)
    project.draw("D-1")
    genuine = project.finish()
    report = verify(tmp_path, genuine.data, genuine.roots)
    assert report.verdict is Verdict.FAILED
    first = CONFIGURED + 1  # after the access file's registry record
    assert (f"draw D-1 committed at leaf {first}: draw D-1 is committed more than once (leaves {first}, {first + 1})"
            in messages(report))


# Self-trust ----------------------------------------------------------------------------------------------

def _second_key_for_the_log(roots: TrustRoots) -> TrustRoots:
    genuine = roots.notaries[0]
    other = NotaryRoot(genuine.log_id, NoteKey(genuine.note_key.name, bytes(range(32))))
    return TrustRoots((other,), ())


def test_a_trust_file_naming_two_keys_for_one_log_is_refused(genuine: Genuine) -> None:
    # notary(log_id) took the first: which key verify trusted depended on the order of the file.
    both = TrustRoots(genuine.roots.notaries + _second_key_for_the_log(genuine.roots).notaries, genuine.roots.ledgers)
    with pytest.raises(MalformedInput, match="name two checkpoint keys for log 'province'"):
        TrustRoots.parse(both.encode(), "roots.json")
    TrustRoots.parse(genuine.roots.encode(), "roots.json")  # one key per log is fine


def test_importing_another_key_for_a_pinned_log_is_refused(tmp_path: Path, genuine: Genuine) -> None:
    store = TrustStore(tmp_path / "store.json")
    (tmp_path / "genuine.json").write_bytes(genuine.roots.encode())
    (tmp_path / "other.json").write_bytes(_second_key_for_the_log(genuine.roots).encode())
    store.import_file(tmp_path / "genuine.json")
    with pytest.raises(MalformedInput, match="name two checkpoint keys for log 'province'"):
        store.import_file(tmp_path / "other.json")
    assert store.load() == genuine.roots


# Time games ----------------------------------------------------------------------------------------------

def test_recordings_filed_under_an_unbooked_session_do_not_escape_the_slot_check(tmp_path: Path) -> None:
    # The project books S-1 for a slot long past; a camera's segments, recorded now, are filed under S-2,
    # which has no booking: the slot check skipped every session without one.
    now = datetime.now(UTC)
    project = Project(tmp_path / "p", slot=(now - timedelta(hours=5), now - timedelta(hours=4)))
    recorded = segments(3, now - timedelta(minutes=10))
    for segment in recorded:
        segment["session_id"] = "S-2"
    project.submit("V-1.cam1", recorded)
    genuine = project.finish()
    report = verify(tmp_path, genuine.data, genuine.roots)
    assert report.verdict is Verdict.FAILED
    assert "recordings of S-2 at V-1 within the booked slot: 3 of 3 segments: segment 0 has no booked slot" in \
        messages(report)


def test_a_segment_that_ends_after_the_notary_received_it_fails(tmp_path: Path) -> None:
    # A segment whose claimed capture time is honest, but whose recording "ends" an hour after the notary had
    # it, inside a slot booked for later: material recorded ahead of time, passed off as the session's.
    project = Project(tmp_path / "p")
    [segment] = segments(1, datetime.now(UTC) + timedelta(hours=1))
    segment["occurred_at"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    project.submit("V-1.cam1", [segment])
    genuine = project.finish()
    report = verify(tmp_path, genuine.data, genuine.roots)
    assert report.verdict is Verdict.FAILED
    assert "time: recording segment ends" in messages(report) and "after the notary received it" in messages(report)


def _with_registry(genuine: Genuine, submitter: str, **fields: str) -> bytes:
    files = files_of(genuine.data)
    manifest = json.loads(files[MANIFEST])
    for entry in manifest["submitters"]:
        if entry["submitter_id"] == submitter:
            entry.update(fields)
    resign(files, genuine.key, manifest)
    return rezip(files)


def _first_received(genuine: Genuine, submitter: str) -> datetime:
    files = files_of(genuine.data)
    times = [json.loads(files[n])["entry"]["received_at"] for n in files if n.startswith("records/")
             and json.loads(files[n])["entry"]["submitter"] == submitter]
    return min(datetime.fromisoformat(t) for t in times)


def test_a_revocation_is_compared_as_a_time_not_as_text(tmp_path: Path, genuine: Genuine) -> None:
    # Revoked an hour before the camera's records, written at +08:00: as text it sorted after their
    # received_at ("…Z") and the revoked key's records passed.
    revoked = (_first_received(genuine, "V-1.cam1") - timedelta(hours=1)).astimezone(timezone(timedelta(hours=8)))
    report = verify(tmp_path, _with_registry(genuine, "V-1.cam1", revoked_at=format_time(revoked.astimezone(UTC))),
                    genuine.roots)
    assert report.verdict is Verdict.FAILED
    assert "submitter V-1.cam1's key was revoked" in messages(report)
    # A notary's times are UTC in one form, so text and time order agree; any other form is refused by name.
    report = verify(tmp_path, _with_registry(genuine, "V-1.cam1", revoked_at=format_time(revoked)), genuine.roots)
    assert report.verdict is Verdict.FAILED
    assert "revoked_at must be a UTC time with microseconds" in messages(report)


def test_a_record_received_before_its_submitters_key_was_registered_fails(tmp_path: Path, genuine: Genuine) -> None:
    registered = _first_received(genuine, "V-1.cam1") + timedelta(hours=1)
    report = verify(tmp_path, _with_registry(genuine, "V-1.cam1", registered_at=format_time(registered)),
                    genuine.roots)
    assert report.verdict is Verdict.FAILED
    assert "submitter V-1.cam1's key was registered" in messages(report)


# Unbound bytes: media ------------------------------------------------------------------------------------

def test_a_segment_file_must_be_the_one_its_chain_names(tmp_path: Path) -> None:
    # Segment 2's logged file is an edited one, while its payload keeps the original hash, so the chain
    # (which runs over payload hashes) stays intact: the file check and the chain check spoke of two files.
    project = Project(tmp_path / "p")
    recorded = segments(4, datetime.now(UTC) - timedelta(minutes=10))
    edited = b"edited frames" * 100
    recorded[2]["attachments"][0].update(sha256=hashlib.sha256(edited).hexdigest(), size=len(edited))
    project.submit("V-1.cam1", recorded)
    genuine = project.finish()
    media = tmp_path / "media" / "V-1"
    media.mkdir(parents=True)
    for i in range(4):
        (media / f"cam1-{i:05d}.mp4").write_bytes(edited if i == 2 else segment_bytes(i))
    report = verify(tmp_path, genuine.data, genuine.roots, media=media.parent)
    assert report.verdict is Verdict.FAILED
    assert "segment 2 does not log exactly one file, the one its chain names" in messages(report)


# Resource exhaustion -------------------------------------------------------------------------------------

def _entry(seq: int, kind: str, payload: dict[str, Any]) -> LogEntry:
    return LogEntry(seq, seq, "2026-11-26T02:00:00.000000Z", "hub-1",
                    {"type": kind, "session_id": "S-1", "venue_id": "V-1", "payload": payload},
                    BatchSignature(1, 0, (), b""), "ed25519")


def test_session_checks_take_linear_time_in_what_a_hub_can_log() -> None:
    # A hub may log as many archives and bookings as it likes. Each archive scanned the whole extract and each
    # segment every booking: 50,000 of each took minutes (hours at the extract's size limit), an extract
    # nobody could verify. Linear, each check takes well under a second here.
    n = 50_000
    archives = [_entry(i, "archive", {"archive_id": f"A-{i}", "leaves": [], "leaf_hashes": []}) for i in range(n)]
    slot = {"venue_id": "V-1", "action": "reserved", "slot_start": "2026-11-26T09:00:00+08:00",
            "slot_end": "2026-11-26T12:00:00+08:00"}
    booked = [_entry(i, "booking", slot) for i in range(n)] + [
        _entry(n + i, "recording_segment", {"segment_index": i, "start": "2026-11-26T10:00:00+08:00",
                                            "end": "2026-11-26T10:00:01+08:00"}) for i in range(n)]
    for check, entries in ((lambda e: archive_completeness(e, {}), archives), (recordings_within_booked_slots, booked)):
        started = time.monotonic()
        assert check(entries)
        assert time.monotonic() - started < 20
    last = archive_completeness(archives, {})
    assert f"{n - 1} record(s) of the session were logged after its archive" in last[0].detail
    assert "records 0, 1, 2, 3, 4 of the session are missing from its archive" in last[-1].detail


# Ambiguous encodings -------------------------------------------------------------------------------------

def test_a_record_of_project_1_as_a_number_is_not_a_record_of_project_1_as_text() -> None:
    entry = _entry(0, "incident", {})
    assert LogEntry(**{**entry.__dict__, "record": {**entry.record, "project_id": "P-1"}}).project_id == "P-1"
    assert LogEntry(**{**entry.__dict__, "record": {**entry.record, "project_id": 1}}).project_id == ""


def test_an_entry_stating_another_signature_algorithm_than_its_key_fails(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # The notary writes the algorithm into the entry; one that states "ed25519" for a P-256 key is a byte of
    # the log that lies, even though the signature itself verifies.
    import notary.log

    project = Project(tmp_path / "p")
    monkeypatch.setattr(notary.log, "key_algorithm", lambda key: "ed25519")
    project.submit("V-1.cam1", segments(1, datetime.now(UTC) - timedelta(minutes=1)))
    monkeypatch.undo()
    genuine = project.finish()
    report = verify(tmp_path, genuine.data, genuine.roots)
    assert report.verdict is Verdict.FAILED
    assert "entry says its signature is 'ed25519', submitter V-1.cam1's key is ecdsa-p256-sha256" in messages(report)


def test_times_at_the_end_of_the_calendar_are_a_failed_check_not_a_traceback() -> None:
    # received_at is the notary's word; 9999-12-31T23:59:58Z plus the allowed skew overflowed the calendar and
    # the OverflowError escaped verify.
    entry = _entry(0, "recording_segment", {"start": "9999-12-31T23:59:50+00:00", "end": "9999-12-31T23:59:59+00:00"})
    for received in ("9999-12-31T23:59:58.000000Z", "0001-01-01T00:00:00.000000Z"):
        late = LogEntry(**{**entry.__dict__, "received_at": received,
                           "record": {**entry.record, "occurred_at": "9999-12-31T23:59:59-23:59"}})
        with pytest.raises(VerificationError, match="after the notary received it"):
            check_capture_time(late)


# What the report shows -----------------------------------------------------------------------------------

def test_text_from_the_evidence_cannot_forge_lines_of_the_report() -> None:
    # A cancellation reason (free text a hub writes) ending a line and starting one that reads VERIFIED, a
    # terminal escape moving the cursor over the verdict, a right-to-left override: all shown escaped.
    report = ExtractReport(records=[], errors=["extract has no manifest.json"])
    report.sessions = [Finding("draw D-1 committed at leaf 1", True,
                               "cancelled: ok\nVERIFIED: all 9 records\x1b[1A\x1b[2K\r\u202edeifirev")]
    shown = render(report)
    assert shown.splitlines()[0].startswith("FAILED")
    assert not any(line.startswith("VERIFIED") for line in shown.splitlines())
    assert "\x1b" not in shown and "\r" not in shown and "\u202e" not in shown
    assert "ok\\u000aVERIFIED: all 9 records\\u001b[1A" in shown
    assert printable("评标推迟 (evaluation postponed) ✓") == "评标推迟 (evaluation postponed) ✓"


def test_recusals_chosen_after_the_beacon_cannot_steer_a_draw(tmp_path: Path) -> None:
    # The commitment fixes no recusals; once the beacon is anchored the hub tries recusal sets until the
    # reshuffled outcome suits it, and publishes that one with its "recused" expert.
    project = Project(tmp_path / "p")
    [leaf] = project.submit("hub-1", [commitment("D-1")])
    anchor = project.notary.sealer.seal()
    assert anchor is not None
    outcomes = {e: draw(POOL, 5, SEED, anchor.root, frozenset({e})) for e in POOL}  # forty outcomes to pick from
    assert len({tuple(o) for o in outcomes.values()}) > 1
    liked = min(outcomes, key=lambda e: outcomes[e])  # whichever suits the drawer
    project.submit("hub-1", [record("draw_result", {
        "draw_id": "D-1", "commitment_leaf": leaf, "beacon": anchor.root.hex(), "revealed_seed": SEED.hex(),
        "excluded": [liked], "selected": draw(POOL, 5, SEED, anchor.root, frozenset({liked}))})])
    genuine = project.finish()
    report = verify(tmp_path, genuine.data, genuine.roots)
    assert report.verdict is Verdict.FAILED
    assert f"the result recuses {liked}, but the commitment fixed no recusals" in messages(report)
