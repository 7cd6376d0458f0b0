"""Audit extracts: a real one verifies offline; every kind of tampering fails with a message that says what."""

import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notary.extract import build_extract
from notary.keys import NotaryKey
from notary.log import Submission
from notary.service import Notary
from tests.conftest import Participants, incident, make_config, recording
from verifier.canonical import canonical_bytes
from verifier.extract import canonical_zip, verify_extract
from verifier.note import Checkpoint

Files = dict[str, bytes]


NOTARY_KEY: list[NotaryKey] = []


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    notary = Notary(make_config(tmp_path_factory.mktemp("extract") / "notary"))
    NOTARY_KEY[:] = [notary.key]
    people = Participants(notary)
    previous = None
    for start in range(0, 30, 10):
        cams = recording(start, 10, previous)
        previous = cams[-1]["payload"]["sha256"]
        notary.log.submit(Submission("V-1.cam1", cams, people.camera.sign_batch(cams)))
        other = [incident(start, project="P-OTHER")]
        notary.log.submit(Submission("hub-1", other, people.hub.sign_batch(other)))
    hub = [incident(i) for i in range(100, 104)]
    notary.log.submit(Submission("hub-1", hub, people.hub.sign_batch(hub)))
    notary.sealer.seal()
    data = build_extract(notary.log, notary.ledger, "P-1")
    notary.close()
    return data


def _files(data: bytes) -> Files:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _zip(files: Files) -> bytes:
    # A forger can lay out the archive canonically; the checks below must catch the content itself.
    return canonical_zip(list(files.items()))


def _verify(tmp_path: Path, data: bytes, trust: dict[str, Any] | None = None) -> Any:
    path = tmp_path / "x.zip"
    path.write_bytes(data)
    return verify_extract(path, trust)


def _messages(report: Any) -> str:
    return "\n".join(report.errors + [e for r in report.records for e in r.errors])


def _record_names(files: Files) -> list[str]:
    return sorted(n for n in files if n.startswith("records/"))


def test_real_extract_verifies_with_every_check(tmp_path: Path, extract: bytes) -> None:
    report = _verify(tmp_path, extract)
    assert report.ok, _messages(report)
    assert len(report.records) == 34 and report.project_id == "P-1"
    assert all(r.checks == {"content": True, "order": True, "inclusion": True, "submitter": True}
               for r in report.records)
    assert "no consensus" in report.anchor


def test_verify_command_exit_status(tmp_path: Path, extract: bytes) -> None:
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    good.write_bytes(extract)
    files = _files(extract)
    name = _record_names(files)[3]
    files[name] = files[name].replace(b"link", b"lynk").replace(b'"frame_count": 250', b'"frame_count": 251')
    bad.write_bytes(_zip(files))
    ok = subprocess.run([sys.executable, "-m", "bidtrace", "verify", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0 and "VERIFIED: all 34 records hold." in ok.stdout
    failed = subprocess.run([sys.executable, "-m", "bidtrace", "verify", str(bad)], capture_output=True, text=True)
    assert failed.returncode == 1 and "NOT VERIFIED" in failed.stdout and "✗" in failed.stdout


def _edit_record(files: Files, position: int, change: Callable[[dict[str, Any]], None]) -> None:
    name = _record_names(files)[position]
    data = json.loads(files[name])
    change(data)
    files[name] = json.dumps(data).encode()


def _resign(files: Files, manifest: dict[str, Any], key: NotaryKey) -> None:
    import base64
    body = canonical_bytes(manifest)
    files["manifest.json"] = body
    files["manifest.sig"] = base64.b64encode(key.sign(b"bidtrace/extract-manifest/v1\n" + body))


TAMPERING: list[tuple[str, Callable[[Files], object], str]] = [
    ("changed payload", lambda f: _edit_record(f, 5, lambda d: d["entry"]["record"]["payload"].update(frame_count=1)),
     "entry does not hash to the manifest's leaf hash"),
    ("changed received_at", lambda f: _edit_record(f, 2, lambda d: d["entry"].update(received_at="2020-01-01")),
     "entry does not hash to the manifest's leaf hash"),
    ("removed record file", lambda f: f.pop(_record_names(f)[7]), "extract has no records/"),
    ("swapped record files", lambda f: f.update({_record_names(f)[1]: f[_record_names(f)[2]],
                                                  _record_names(f)[2]: f[_record_names(f)[1]]}),
     "entry says leaf"),
    ("forged inclusion proof", lambda f: _edit_record(f, 0, lambda d: d["inclusion_proof"].__setitem__(0, "00" * 32)),
     "inclusion: inclusion proof for leaf 0"),
    ("manifest edited to drop a record",
     lambda f: f.update({"manifest.json": f["manifest.json"].replace(b'"records/000000000003.json"', b'"x"')}),
     "manifest is not signed by notary"),
    ("extra record smuggled in", lambda f: f.update({"records/000000009999.json": f[_record_names(f)[0]]}),
     "records the manifest does not list"),
    ("checkpoint signed by another key", lambda f: _replace_checkpoint(f), "checkpoint is not signed by"),
    ("anchor evidence flipped", lambda f: _flip_anchor(f), "manifest is not signed"),
    ("truncated to nothing", lambda f: [f.pop(n) for n in _record_names(f)], "extract has no records/"),
]


def _replace_checkpoint(files: Files) -> None:
    # Even with the manifest signed by the notary, a checkpoint signed by another key is refused.
    manifest = json.loads(files["manifest.json"])
    other = NotaryKey.generate(manifest["origin"])
    cp = manifest["checkpoint"]
    manifest["checkpoint"]["note"] = other.sign_checkpoint(Checkpoint(manifest["origin"], cp["size"],
                                                                      bytes.fromhex(cp["root"])))
    _resign(files, manifest, NOTARY_KEY[0])


def _flip_anchor(files: Files) -> None:
    manifest = files["manifest.json"]
    at = manifest.index(b'"block":"') + 20
    files["manifest.json"] = manifest[:at] + bytes([manifest[at] ^ 1]) + manifest[at + 1:]


@pytest.mark.parametrize(("name", "tamper", "message"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampered_extract_fails_and_says_what(tmp_path: Path, extract: bytes, name: str,
                                              tamper: Callable[[Files], object], message: str) -> None:
    files = _files(extract)
    tamper(files)
    report = _verify(tmp_path, _zip(files))
    assert not report.ok, name
    assert message in _messages(report), _messages(report)


def test_notary_resigning_a_manifest_without_a_record_is_caught(tmp_path: Path, extract: bytes) -> None:
    # Even the notary's own key cannot hide a record: records carry their per-project sequence number.
    files = _files(extract)
    manifest = json.loads(files["manifest.json"])
    dropped = manifest["records"].pop(4)
    files.pop(dropped["file"])
    _resign(files, manifest, NOTARY_KEY[0])
    report = _verify(tmp_path, _zip(files))
    assert not report.ok and "a record is missing before it" in _messages(report)


def test_notary_reordering_records_is_caught(tmp_path: Path, extract: bytes) -> None:
    files = _files(extract)
    manifest = json.loads(files["manifest.json"])
    records = manifest["records"]
    records[5], records[6] = records[6], records[5]
    _resign(files, manifest, NOTARY_KEY[0])
    report = _verify(tmp_path, _zip(files))
    assert not report.ok and "out of order" in _messages(report)


def test_anchor_for_another_log_fails(tmp_path: Path, extract: bytes) -> None:
    files = _files(extract)
    trust = json.loads(files["trust.json"])
    trust["notary"]["log_id"] = "qingdao"
    report = _verify(tmp_path, extract, trust)
    assert not report.ok and "trusted notary keeps log 'qingdao'" in _messages(report)


def test_checkpoint_of_a_truncated_log_fails(tmp_path: Path) -> None:
    # A notary that truncates its log and re-signs a smaller checkpoint cannot prove old records in it.
    notary = Notary(make_config(tmp_path / "n"))
    people = Participants(notary)
    batch = [incident(i) for i in range(12)]
    notary.log.submit(Submission("hub-1", batch, people.hub.sign_batch(batch)))
    notary.sealer.seal()
    files = _files(build_extract(notary.log, notary.ledger, "P-1"))
    manifest = json.loads(files["manifest.json"])
    manifest["checkpoint"] = {"size": 8, "root": notary.log.root(8).hex(),
                              "note": notary.key.sign_checkpoint(Checkpoint(notary.key.name, 8, notary.log.root(8)))}
    _resign(files, manifest, notary.key)
    report = _verify(tmp_path, _zip(files))
    notary.close()
    messages = _messages(report)
    assert not report.ok and "anchor records size 12" in messages


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_a_flipped_byte_anywhere_fails(tmp_path: Path, extract: bytes, fraction: float, bit: int) -> None:
    offset = int(fraction * len(extract))
    flipped = extract[:offset] + bytes([extract[offset] ^ (1 << bit)]) + extract[offset + 1:]
    report = _verify(tmp_path, flipped)
    assert not report.ok and _messages(report)


def test_a_flipped_byte_in_every_region_of_the_file_fails(tmp_path: Path, extract: bytes) -> None:
    # Headers, time stamps, names, contents, the central directory and its end record.
    for offset in [0, 4, 10, 12, 26, 30, 45, *range(100, len(extract), max(1, len(extract) // 97)),
                   len(extract) - 22, len(extract) - 10, len(extract) - 1]:
        flipped = extract[:offset] + bytes([extract[offset] ^ 0x01]) + extract[offset + 1:]
        report = _verify(tmp_path, flipped)
        assert not report.ok and _messages(report), offset


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.one_of(st.binary(max_size=2000), st.builds(lambda d: json.dumps(d).encode(), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=20))),
    target=st.sampled_from(["manifest.json", "trust.json", "manifest.sig", "records/000000000000.json", "whole"]))
def test_malformed_input_never_crashes_the_verifier(tmp_path: Path, extract: bytes, junk: bytes, target: str) -> None:
    if target == "whole":
        data = junk
    else:
        files = _files(extract)
        files[target] = junk
        data = _zip(files)
    report = _verify(tmp_path, data)
    assert not report.ok and _messages(report)
