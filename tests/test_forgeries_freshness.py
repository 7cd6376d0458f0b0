"""Forgeries that lean on which ledger, which time and which checkpoint an extract names: a ledger trusted for
one log vouching for another, times in forms the formats do not write, an extract cut at an older anchored
checkpoint or replayed. Each is built from genuine evidence and must not be VERIFIED."""

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from notary import extract as notary_extract
from notary.extract import build_extract, latest_anchored_checkpoint, published_roots
from notary.records import SchemaViolation, validate_record
from notary.tree import batch_tree
from tests.forgery_kit import (
    IDENTITY,
    SALT,
    Files,
    Genuine,
    Project,
    files_of,
    genuine_project,
    messages,
    record,
    resign,
    rezip,
    verify,
)
from verifier.commitments import commit
from verifier.entry import LogEntry
from verifier.errors import MalformedInput, VerificationError
from verifier.extract import Verdict, check_capture_time
from verifier.heads import ProjectHead, ProjectHeadProof, heads_line, ordered
from verifier.manifest import MANIFEST
from verifier.merkle import leaf_hash
from verifier.note import Checkpoint, parse_checkpoint, split_note
from verifier.signatures import BatchSignature
from verifier.times import format_time, parse_time, parse_utc
from verifier.trust import LedgerRoot, TrustRoots, TrustStore


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Genuine:
    return genuine_project(tmp_path_factory.mktemp("genuine"))


# Ledger roots bound to the logs they anchor --------------------------------------------------------------

def test_an_anchor_on_a_ledger_trusted_for_another_log_does_not_count(tmp_path: Path) -> None:
    # Two cities, each with its notary and its own ledger; the court trusts both. Jinan's notary gets its
    # log registered on the province's ledger as well and anchors there a checkpoint the Jinan ledger never
    # saw, then presents that anchor for its log. The province ledger is trusted, but only for the province.
    province = Project(tmp_path / "province")
    jinan = Project(tmp_path / "jinan", log_id="jinan")
    jinan.notary.sealer.seal()
    jinan_checkpoint = latest_anchored_checkpoint(jinan.notary.log).checkpoint
    ledger = province.notary.ledger
    ledger.register_log("jinan", jinan.notary.key.vkey)
    anchor = ledger.anchor_checkpoint("jinan", jinan_checkpoint.note, [])
    evidence = ledger.transaction_evidence(anchor.tx_id)
    head = ledger.attest_head("jinan")
    head_evidence = ledger.transaction_evidence(head.tx_id)
    genuine_province = province.finish()
    genuine_jinan = jinan.finish()
    trust = genuine_province.roots.merged(genuine_jinan.roots)
    assert [r.logs for r in trust.ledgers] == [("province",), ("jinan",)]
    assert verify(tmp_path, genuine_jinan.data, trust).verdict is Verdict.VERIFIED

    files = files_of(genuine_jinan.data)
    manifest = json.loads(files[MANIFEST])
    assert manifest["checkpoint"]["note"] == jinan_checkpoint.note
    manifest["anchor"] = {"size": anchor.size, "root": anchor.root.hex(),
                          "tx_id": anchor.tx_id, "anchored_at": anchor.anchored_at, "evidence": evidence.encode()}
    manifest["head"] = {**head.encode(), "evidence": head_evidence.encode()}
    del manifest["head"]["log_id"]
    resign(files, genuine_jinan.key, manifest)
    report = verify(tmp_path, rezip(files), trust)
    assert report.verdict is Verdict.FAILED
    assert "anchor evidence does not hold" in messages(report), messages(report)

    # The same ledger bound to both logs by the user's choice would vouch for it: the binding is what refuses.
    both = TrustRoots(trust.notaries, (trust.ledgers[0].bound_to(["province", "jinan"]),))
    assert verify(tmp_path, rezip(files), both).verdict is Verdict.VERIFIED


def test_a_trust_file_without_log_bindings_is_refused_by_name(tmp_path: Path) -> None:
    from verifier.errors import MalformedInput

    old = {"format": "bidtrace-trust/1", "notaries": [], "ledgers": []}
    with pytest.raises(MalformedInput, match="bidtrace-trust/1, which does not bind ledger roots"):
        TrustRoots.parse(json.dumps(old).encode())
    ledger: dict[str, Any] = {"ledger": "embedded", "org": "ProvinceMSP", "public_key": "x"}
    unbound = {"format": "bidtrace-trust/2", "notaries": [], "ledgers": [ledger]}
    with pytest.raises(MalformedInput, match="names no logs"):
        TrustRoots.parse(json.dumps(unbound).encode())
    empty = {**unbound, "ledgers": [{**ledger, "logs": []}]}
    with pytest.raises(MalformedInput, match="at least one log id"):
        TrustRoots.parse(json.dumps(empty).encode())


# Times: one strict RFC 3339 parser -----------------------------------------------------------------------

ACCEPTED = ["2026-11-26T09:30:00+08:00", "2026-11-26T01:30:00Z", "2026-11-26T01:30:00.123Z",
            "2026-11-26T01:30:00.123456-05:30", "2026-11-26T01:30:00.000000Z"]
REFUSED = ["2026-11-26 09:30:00+08:00", "2026-11-26t09:30:00+08:00", "2026-11-26T01:30:00z", "2026-W48-4T09:30:00Z",
           "2026-330T09:30:00Z", "20261126T093000Z", "2026-11-26T09:30+08:00", "2026-11-26T09+08:00",
           "2026-11-26T09:30:00", "2026-11-26T09:30:00+0800", "2026-11-26T09:30:00+08", "2026-11-26T24:00:00Z",
           "2026-11-26T23:59:60Z", "2026-02-30T09:30:00Z", "2026-11-26T09:30:00-00:00", "2026-11-26T09:30:00+24:00",
           "2026-11-26T09:30:00.1Z", "2026-11-26T09:30:00.1234567Z", "2026-11-26T09:30:00,123Z",
           "２０２６-11-26T09:30:00Z", "2026-11-26T09:30:00Z\n", " 2026-11-26T09:30:00Z", "+2026-11-26T09:30:00Z",
           "0000-01-01T00:00:00Z", "", "2026-11-26T09:30:00.123+08:00:00"]


@pytest.mark.parametrize("text", ACCEPTED)
def test_rfc3339_times_as_the_formats_write_them_are_read(text: str) -> None:
    assert format_time(parse_time(text, "t")) == format_time(datetime.fromisoformat(text))


@pytest.mark.parametrize("text", REFUSED)
def test_iso_8601_variants_and_malformed_times_are_refused_everywhere(text: str) -> None:
    with pytest.raises(MalformedInput, match=r"^t "):
        parse_time(text, "t")
    with pytest.raises(SchemaViolation, match="occurred_at"):
        validate_record({**record("incident", {}), "occurred_at": text})
    entry = LogEntry(0, 0, "2026-11-26T02:00:00.000000Z", "hub-1", {"occurred_at": text, "type": "incident"},
                     BatchSignature(1, 0, (), b""), "ed25519")
    with pytest.raises(VerificationError, match="occurred_at"):
        check_capture_time(entry)


@pytest.mark.parametrize("text", ["2026-11-26T01:30:00Z", "2026-11-26T01:30:00.123Z",
                                  "2026-11-26T09:30:00.000000+08:00", "2026-11-26T01:30:00.000000+00:00", *REFUSED])
def test_a_notarys_times_are_utc_in_exactly_one_form(text: str) -> None:
    with pytest.raises(MalformedInput):
        parse_utc(text, "received_at")


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3,
                                                                                                     minutes=-30))])))
def test_the_one_encoder_round_trips_through_the_one_parser(moment: datetime) -> None:
    text = format_time(moment)
    assert parse_time(text, "t") == moment and format_time(parse_time(text, "t")) == text
    if moment.utcoffset() == timedelta(0):
        assert parse_utc(text, "t") == moment


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=26), st.characters(codec="utf-8"))
def test_a_changed_character_in_a_time_is_refused_or_read_as_another_valid_time(at: int, char: str) -> None:
    genuine = "2026-11-26T01:30:00.123456Z"
    assume(char != genuine[at])
    mutated = genuine[:at] + char + genuine[at + 1:]
    try:
        parsed = parse_time(mutated, "t")
    except MalformedInput:
        return
    # Only a digit for a digit can survive, and then the text still reads as exactly what it says.
    assert format_time(parsed) == mutated and char.isascii() and char.isdigit()


@pytest.mark.parametrize("field,value", [("created_at", "2026-11-27t09:00:00.000000z"),
                                         ("created_at", "2026-11-27T09:00:00+00:00"),
                                         ("anchor.anchored_at", "1764234000.000000000")])
def test_a_manifest_time_in_another_form_is_refused(tmp_path: Path, genuine: Genuine, field: str, value: str) -> None:
    files = files_of(genuine.data)
    manifest = json.loads(files[MANIFEST])
    target = manifest["anchor"] if field.startswith("anchor.") else manifest
    target[field.removeprefix("anchor.")] = value
    resign(files, genuine.key, manifest)
    report = verify(tmp_path, rezip(files), genuine.roots)
    assert report.verdict is Verdict.FAILED
    said = messages(report)
    assert re.search(f"{field.replace('.', ' ')} (must be a UTC time|is not an RFC 3339 time)", said), said


# Completeness: an extract cut at an older checkpoint, a hidden last record, an older extract replayed -----

def _misconduct() -> dict[str, Any]:
    # A later session of the project, so that the first session's archive stays its last word.
    return record("misconduct", {"case_id": "M-1", "status": "recorded", "subject_kind": "expert",
                                 "subject_commitment": commit(SALT, IDENTITY),
                                 "linkage_commitment": commit(bytes(32), IDENTITY), "linkage_key": "k1",
                                 "evidence": [], "description": "专家私下联系投标人"}, session="S-2")


@dataclass
class Later:
    """A project's genuine extract made before a misconduct record was logged, and the notary after it."""

    project: Project
    before: Genuine
    before_size: int
    misconduct_received: datetime


@pytest.fixture
def later(tmp_path: Path) -> Later:
    project = Project(tmp_path / "later")
    project.session()
    project.archive()
    project.notary.sealer.seal()
    before_size = latest_anchored_checkpoint(project.notary.log).checkpoint.size
    before = Genuine(build_extract(project.notary.log, project.notary.ledger, "P-1", disclose=True),
                     published_roots(project.notary.log, project.notary.ledger), project.notary.key)
    time.sleep(0.01)
    project.submit("hub-1", [_misconduct()])
    project.notary.sealer.seal()
    return Later(project, before, before_size, datetime.now(UTC))


def _cut_at(monkeypatch: pytest.MonkeyPatch, project: Project, size: int) -> bytes:
    """The notary's own builder, made to prove the extract at the older anchored checkpoint of `size` under a
    fresh attestation of the log's head (the ledger attests only what it holds)."""
    fresh = notary_extract._attested_head

    def older(evidence_log: Any, ledger: Any) -> Any:
        head, _ = fresh(evidence_log, ledger)
        return head, notary_extract._anchor_at(evidence_log, ledger, size)

    monkeypatch.setattr(notary_extract, "_attested_head", older)
    return build_extract(project.notary.log, project.notary.ledger, "P-1", disclose=True)


def test_the_genuine_extract_is_complete_up_to_the_ledgers_head(tmp_path: Path, later: Later) -> None:
    data = build_extract(later.project.notary.log, later.project.notary.ledger, "P-1", disclose=True)
    report = verify(tmp_path, data, later.before.roots, not_before=later.misconduct_received)
    assert report.verdict is Verdict.VERIFIED, messages(report)
    assert report.complete_up_to.startswith("ledger block ")
    assert "misconduct" in {r.type for r in report.records}
    head = next(f for f in report.findings if f.name == "head")
    assert f"(size {latest_anchored_checkpoint(later.project.notary.log).checkpoint.size})" in head.detail


def test_an_extract_cut_at_an_older_anchored_checkpoint_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              later: Later) -> None:
    forged = _cut_at(monkeypatch, later.project, later.before_size)
    report = verify(tmp_path, forged, later.before.roots)
    assert report.verdict is Verdict.FAILED
    assert f"the extract stops at size {later.before_size}: records anchored after it are left out" in \
        messages(report), messages(report)
    assert "misconduct" not in {r.type for r in report.records}


def test_a_fresh_head_moved_into_an_older_extract_fails(tmp_path: Path, later: Later) -> None:
    fresh = files_of(build_extract(later.project.notary.log, later.project.notary.ledger, "P-1", disclose=True))
    files = files_of(later.before.data)
    manifest = json.loads(files[MANIFEST])
    manifest["head"] = json.loads(fresh[MANIFEST])["head"]
    resign(files, later.before.key, manifest)
    report = verify(tmp_path, rezip(files), later.before.roots)
    assert report.verdict is Verdict.FAILED
    assert "records anchored after it are left out" in messages(report), messages(report)


def test_a_head_the_ledger_did_not_attest_fails(tmp_path: Path, later: Later) -> None:
    # The notary states the head itself, with its own checkpoint's numbers, beside the ledger's older evidence.
    files = files_of(later.before.data)
    manifest = json.loads(files[MANIFEST])
    manifest["head"]["attested_at"] = format_time(datetime.now(UTC))
    resign(files, later.before.key, manifest)
    report = verify(tmp_path, rezip(files), later.before.roots)
    assert report.verdict is Verdict.FAILED
    assert "the manifest's head is not what the ledger attested" in messages(report), messages(report)


def test_an_older_extract_replayed_says_how_old_it_is_and_fails_when_asked_after(tmp_path: Path,
                                                                                later: Later) -> None:
    alone = verify(tmp_path, later.before.data, later.before.roots)
    assert alone.verdict is Verdict.VERIFIED
    attested = datetime.fromisoformat(alone.complete_up_to.split(" at ", 1)[1])
    assert attested < later.misconduct_received
    replayed = verify(tmp_path, later.before.data, later.before.roots, not_before=later.misconduct_received)
    assert replayed.verdict is Verdict.FAILED
    assert "it is an older extract, and records after it are not covered" in messages(replayed)
    path = tmp_path / "old.zip"
    path.write_bytes(later.before.data)
    roots = tmp_path / "roots.json"
    roots.write_bytes(later.before.roots.encode())
    run = subprocess.run([sys.executable, "-m", "bidtrace", "verify", str(path), "--trust", str(roots),
                          "--not-before", format_time(later.misconduct_received)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1 and "it is an older extract" in run.stdout, run.stdout + run.stderr
    run = subprocess.run([sys.executable, "-m", "bidtrace", "verify", str(path), "--trust", str(roots)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and f"complete up to {alone.complete_up_to}" in run.stdout, run.stdout
    bad = subprocess.run([sys.executable, "-m", "bidtrace", "verify", str(path), "--trust", str(roots),
                          "--not-before", "yesterday"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--not-before is not an RFC 3339 time" in bad.stderr, bad.stderr


def _without_last_record(genuine: Genuine) -> tuple[Files, dict[str, Any]]:
    files = files_of(genuine.data)
    manifest = json.loads(files[MANIFEST])
    last = manifest["records"].pop()
    del files[last["file"]]
    return files, manifest


def test_a_hidden_last_record_fails(tmp_path: Path, later: Later) -> None:
    # The notary's key re-lists the members without the project's last record (the misconduct record): the
    # per-project order holds for what is left, but the checkpoint commits to the project's count.
    genuine = Genuine(build_extract(later.project.notary.log, later.project.notary.ledger, "P-1", disclose=True),
                      later.before.roots, later.before.key)
    files, manifest = _without_last_record(genuine)
    resign(files, genuine.key, manifest)
    report = verify(tmp_path, rezip(files), genuine.roots)
    assert report.verdict is Verdict.FAILED
    assert "ending at leaf" in messages(report) and "1 record(s) are left out" in messages(report), messages(report)

    # Nor can the project's head be restated to match: it is proven in the tree the checkpoint commits to.
    head = manifest["project_head"]
    head.update(records=head["records"] - 1, last_leaf=manifest["records"][-1]["leaf_index"])
    resign(files, genuine.key, manifest)
    report = verify(tmp_path, rezip(files), genuine.roots)
    assert report.verdict is Verdict.FAILED
    assert "the project's head is not the one the checkpoint commits to" in messages(report), messages(report)


def test_a_checkpoint_re_signed_with_other_project_heads_is_not_the_anchored_one(tmp_path: Path,
                                                                               later: Later) -> None:
    # The notary's key signs the same tree again, committing to heads without the last record; the ledger
    # anchored the checkpoint text, not only its size and root.
    log = later.project.notary.log
    genuine = Genuine(build_extract(log, later.project.notary.ledger, "P-1", disclose=True), later.before.roots,
                      later.before.key)
    files, manifest = _without_last_record(genuine)
    size = manifest["checkpoint"]["size"]
    heads = [h if h.project_id != "P-1" else ProjectHead("P-1", h.records - 1, manifest["records"][-1]["leaf_index"])
             for h in ordered(log.project_heads(size))]
    body = parse_checkpoint(split_note(manifest["checkpoint"]["note"])[0])
    note = genuine.key.sign_checkpoint(Checkpoint(body.origin, body.size, body.root, (heads_line(heads),)))
    index = [h.project_id for h in heads].index("P-1")
    _, paths = batch_tree([leaf_hash(h.leaf()) for h in heads])
    manifest["checkpoint"]["note"] = note
    manifest["project_head"] = ProjectHeadProof(heads[index].records, heads[index].last_leaf, index,
                                                tuple(paths[index])).encode()
    resign(files, genuine.key, manifest)
    report = verify(tmp_path, rezip(files), genuine.roots)
    assert report.verdict is Verdict.FAILED
    assert "records another signed checkpoint than the one presented" in messages(report), messages(report)


def test_importing_one_ledger_for_another_log_adds_the_log_to_its_binding(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    ledger = LedgerRoot.of_ledger({"ledger": "embedded", "org": "ProvinceMSP", "public_key": pem}, "ledger")
    store = TrustStore(tmp_path / "trust.json")
    for log_id, changed in (("province", 1), ("jinan", 1), ("province", 0)):
        (tmp_path / "roots.json").write_bytes(TrustRoots((), (ledger.bound_to([log_id]),)).encode())
        assert len(store.import_file(tmp_path / "roots.json").ledgers) == changed
    [pinned] = store.load().ledgers
    assert pinned.logs == ("jinan", "province") and pinned.fingerprint == ledger.fingerprint
    assert "anchoring logs 'jinan', 'province'" in pinned.describe()
