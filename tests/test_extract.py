"""Audit extracts: a real one verifies offline; every kind of tampering fails with a message that says what."""

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notary.extract import build_extract, published_roots
from notary.keys import NotaryKey
from notary.log import Submission
from notary.service import Notary
from tests.conftest import CONFIGURED, Participants, incident, make_config, recording
from verifier.canonical import canonical_bytes
from verifier.extract import Verdict, canonical_zip, verify_extract
from verifier.manifest import MANIFEST_CONTEXT
from verifier.note import Checkpoint
from verifier.trust import NotaryRoot, TrustRoots

Files = dict[str, bytes]


NOTARY_KEY: list[NotaryKey] = []
ROOTS: list[TrustRoots] = []


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    notary = Notary(make_config(tmp_path_factory.mktemp("extract") / "notary"))
    NOTARY_KEY[:] = [notary.key]
    ROOTS[:] = [published_roots(notary.log, notary.ledger)]
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


def _verify(tmp_path: Path, data: bytes, trust: TrustRoots | None = None) -> Any:
    path = tmp_path / "x.zip"
    path.write_bytes(data)
    return verify_extract(path, trust or ROOTS[0])


def _messages(report: Any) -> str:
    return "\n".join(report.errors + [f.detail for f in report.findings if not f.ok]
                     + [e for r in report.records for e in r.errors])


def _record_names(files: Files) -> list[str]:
    return sorted(n for n in files if n.startswith("records/"))


def test_real_extract_verifies_with_every_check(tmp_path: Path, extract: bytes) -> None:
    report = _verify(tmp_path, extract)
    assert report.ok and report.verdict is Verdict.VERIFIED, _messages(report)
    assert len(report.records) == 34 and report.project_id == "P-1"
    assert all(r.checks == {"content": True, "order": True, "inclusion": True, "submitter": True, "time": True}
               for r in report.records)
    assert "no consensus" in report.anchor


def test_without_chosen_roots_the_verdict_is_untrusted(tmp_path: Path, extract: bytes) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(extract)
    report = verify_extract(path)
    assert report.consistent and report.verdict is Verdict.UNTRUSTED and not report.ok
    notary = ROOTS[0].notaries[0]
    assert any(notary.fingerprint in line for line in report.needed_roots)
    # Roots for another log are no roots for this one.
    other = TrustRoots((NotaryRoot("qingdao", NotaryKey.generate("bidtrace/qingdao").note_key),), ROOTS[0].ledgers)
    assert verify_extract(path, other).verdict is Verdict.UNTRUSTED


def _cli(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BIDTRACE_TRUST_STORE": str(store)}
    return subprocess.run([sys.executable, "-m", "bidtrace", *args], capture_output=True, text=True, env=env)


def test_verify_command_exit_status(tmp_path: Path, extract: bytes) -> None:
    good, bad, roots = tmp_path / "good.zip", tmp_path / "bad.zip", tmp_path / "roots.json"
    good.write_bytes(extract)
    roots.write_bytes(ROOTS[0].encode())
    files = _files(extract)
    name = _record_names(files)[3]
    files[name] = files[name].replace(b"cam1", b"cam2")
    bad.write_bytes(_zip(files))
    store = tmp_path / "store.json"
    ok = _cli("verify", str(good), "--trust", str(roots), store=store)
    assert ok.returncode == 0 and ok.stdout.startswith("VERIFIED: all 34 records"), ok.stdout
    failed = _cli("verify", str(bad), "--trust", str(roots), store=store)
    assert failed.returncode == 1 and failed.stdout.startswith("FAILED") and "✗" in failed.stdout
    untrusted = _cli("verify", str(good), store=store)
    fingerprint = ROOTS[0].notaries[0].fingerprint
    assert untrusted.returncode == 3 and untrusted.stdout.startswith("UNTRUSTED") and fingerprint in untrusted.stdout
    assert "checked against the keys the extract names itself (not chosen by you)" in untrusted.stdout
    assert "not chosen by you" not in ok.stdout
    unreadable = _cli("verify", str(good), "--trust", str(tmp_path / "none.json"), store=store)
    assert unreadable.returncode == 2 and "cannot read trust roots" in unreadable.stderr


def test_trust_store_import_list_remove(tmp_path: Path, extract: bytes) -> None:
    good, roots, store = tmp_path / "good.zip", tmp_path / "roots.json", tmp_path / "store.json"
    good.write_bytes(extract)
    roots.write_bytes(ROOTS[0].encode())
    imported = _cli("trust", "import", str(roots), store=store)
    assert imported.returncode == 0 and "pinned 2 new root(s)" in imported.stdout, imported.stdout + imported.stderr
    listed = _cli("trust", "list", store=store)
    notary, ledger = ROOTS[0].notaries[0].fingerprint, ROOTS[0].ledgers[0].fingerprint
    assert notary in listed.stdout and ledger in listed.stdout
    assert f"{ledger}, anchoring log 'province'" in listed.stdout
    assert _cli("verify", str(good), store=store).returncode == 0
    assert _cli("trust", "import", str(roots), store=store).stdout.startswith("pinned 0 new")
    removed = _cli("trust", "remove", ledger, store=store)
    assert removed.returncode == 0 and ledger not in _cli("trust", "list", store=store).stdout
    after = _cli("verify", str(good), store=store)
    assert after.returncode == 3 and "no key for any embedded ledger" in after.stdout and ledger in after.stdout
    assert _cli("trust", "remove", ledger, store=store).returncode == 1
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "bidtrace-trust/2", "notaries": [], "notaries": [], "ledgers": []}')
    refused = _cli("trust", "import", str(broken), store=store)
    assert refused.returncode == 2 and "repeats a key" in refused.stderr
    store.write_text('{"format": "bidtrace-trust/1", "notaries": [], "ledgers": []}')
    for command in (("trust", "list"), ("trust", "remove", ledger), ("verify", str(good))):
        old = _cli(*command, store=store)
        assert old.returncode == 2 and "does not bind ledger roots to the logs" in old.stderr, old.stderr


def _edit_record(files: Files, position: int, change: Callable[[dict[str, Any]], None]) -> None:
    name = _record_names(files)[position]
    data = json.loads(files[name])
    change(data)
    files[name] = json.dumps(data).encode()


def _resign(files: Files, manifest: dict[str, Any], key: NotaryKey) -> None:
    """What only the notary itself can do: list the members as they now are and sign the manifest again."""
    manifest["members"] = [{"name": n, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
                           for n, d in files.items() if n not in ("manifest.json", "manifest.sig")]
    body = canonical_bytes(manifest)
    files["manifest.json"] = body
    files["manifest.sig"] = base64.b64encode(key.sign(MANIFEST_CONTEXT + body)) + b"\n"


def _recanonical(files: Files, name: str) -> None:
    files[name] = canonical_bytes(json.loads(files[name]))


TAMPERING: list[tuple[str, Callable[[Files], object], str]] = [
    ("changed payload", lambda f: _edit_record(f, 5, lambda d: d["entry"]["record"]["payload"].update(frame_count=1)),
     "is not the member the notary signed"),
    ("removed record file", lambda f: f.pop(_record_names(f)[7]), "extract has no records/"),
    ("swapped record files", lambda f: f.update({_record_names(f)[1]: f[_record_names(f)[2]],
                                                  _record_names(f)[2]: f[_record_names(f)[1]]}),
     "is not the member the notary signed"),
    ("manifest edited to drop a record",
     lambda f: f.update({"manifest.json": f["manifest.json"].replace(b'"records/000000000003.json"', b'"x"')}),
     "manifest"),
    ("extra record smuggled in", lambda f: f.update({"records/000000009999.json": f[_record_names(f)[0]]}),
     "members the manifest does not list"),
    ("checkpoint signed by another key", lambda f: _replace_checkpoint(f), "checkpoint is not signed by"),
    ("anchor evidence flipped", lambda f: _flip_anchor(f), "manifest is not signed"),
    ("truncated to nothing", lambda f: [f.pop(n) for n in _record_names(f)], "extract has no records/"),
    ("old format", lambda f: f.update({"manifest.json": f["manifest.json"].replace(b"bidtrace-extract/4",
                                                                                   b"bidtrace-extract/1")}),
     "format 1 bound too few of its bytes"),
    ("format 3", lambda f: f.update({"manifest.json": f["manifest.json"].replace(b"bidtrace-extract/4",
                                                                               b"bidtrace-extract/3")}),
     "format 3 named the anchor's ledger kind twice"),
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
    assert report.verdict is Verdict.FAILED, name
    assert message in _messages(report), _messages(report)


def test_notary_editing_a_record_cannot_match_its_leaf(tmp_path: Path, extract: bytes) -> None:
    files = _files(extract)
    name = _record_names(files)[2]
    _edit_record(files, 2, lambda d: d["entry"].update(received_at="2020-01-01T00:00:00.000000Z"))
    _recanonical(files, name)
    _resign(files, json.loads(files["manifest.json"]), NOTARY_KEY[0])
    report = _verify(tmp_path, _zip(files))
    assert not report.ok and "entry does not hash to the manifest's leaf hash" in _messages(report)


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


def test_roots_for_another_log_do_not_verify(tmp_path: Path, extract: bytes) -> None:
    notary = ROOTS[0].notaries[0]
    trust = TrustRoots((NotaryRoot("qingdao", notary.note_key),), ROOTS[0].ledgers)
    report = _verify(tmp_path, extract, trust)
    assert not report.ok and "no key for the notary of log 'province'" in "\n".join(report.notes)


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
    manifest["anchor"].update(size=8, root=notary.log.root(8).hex())
    _resign(files, manifest, notary.key)
    roots = published_roots(notary.log, notary.ledger)
    report = _verify(tmp_path, _zip(files), roots)
    notary.close()
    messages = _messages(report)
    assert not report.ok and f"anchor records size {CONFIGURED + 12}" in messages


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_a_flipped_byte_anywhere_fails(tmp_path: Path, extract: bytes, fraction: float, bit: int) -> None:
    offset = int(fraction * len(extract))
    flipped = extract[:offset] + bytes([extract[offset] ^ (1 << bit)]) + extract[offset + 1:]
    report = _verify(tmp_path, flipped)
    assert report.verdict is Verdict.FAILED and _messages(report)


def test_a_flipped_byte_in_every_region_of_the_file_fails(tmp_path: Path, extract: bytes) -> None:
    # Headers, time stamps, names, contents, the central directory and its end record.
    for offset in [0, 4, 10, 12, 26, 30, 45, *range(100, len(extract), max(1, len(extract) // 97)),
                   len(extract) - 22, len(extract) - 10, len(extract) - 1]:
        flipped = extract[:offset] + bytes([extract[offset] ^ 0x01]) + extract[offset + 1:]
        report = _verify(tmp_path, flipped)
        assert report.verdict is Verdict.FAILED and _messages(report), offset


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.one_of(st.binary(max_size=2000), st.builds(lambda d: json.dumps(d).encode(), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=20))),
    target=st.sampled_from(["manifest.json", "claimed-roots.json", "manifest.sig", "records/000000000000.json",
                            "SUMMARY.txt", "whole"]))
def test_malformed_input_never_crashes_the_verifier(tmp_path: Path, extract: bytes, junk: bytes, target: str) -> None:
    if target == "whole":
        data = junk
    else:
        files = _files(extract)
        files[target] = junk
        data = _zip(files)
    report = _verify(tmp_path, data)
    assert report.verdict is Verdict.FAILED and _messages(report)
