"""Verification of an audit extract, offline, trusting only the notary key and the ledger roots.

Checks, in order: the manifest is the notary's (signature), the checkpoint is the notary's and matches
the manifest, the anchor evidence shows that checkpoint on the ledger, and then for every record:
its entry is the one listed (leaf hash), it is in the tree (inclusion proof), it is the project's next
record (no gap, no reordering), its submitter's registered key signed it, and disclosed personal
fields open their commitments. Nothing in the extract is trusted before it is checked.
"""

import base64
import binascii
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from verifier.anchor import verify_embedded_anchor
from verifier.canonical import canonical_bytes
from verifier.commitments import verify_disclosure
from verifier.entry import LogEntry, parse_entry, verify_entry_signature
from verifier.errors import ExtractError, MalformedInput, VerificationError
from verifier.fabric import verify_fabric_anchor
from verifier.media import check_media
from verifier.merkle import hex_hash, hex_hashes, leaf_hash, verify_consistency, verify_inclusion
from verifier.note import Checkpoint, NoteKey, parse_vkey, verify_checkpoint
from verifier.session import SessionCheck, draw_reproducibility, recording_continuity
from verifier.signatures import PublicKey, load_public_key

EXTRACT_FORMAT = "bidtrace-extract/1"
MANIFEST_CONTEXT = b"bidtrace/extract-manifest/v1\n"
MAX_MEMBER = 64 * 1024 * 1024
CHECKS = ("content", "submitter", "inclusion", "order")
FIXED_MEMBERS = frozenset({"manifest.json", "manifest.sig", "trust.json", "SUMMARY.txt"})


@dataclass
class RecordResult:
    leaf_index: int
    type: str = "?"
    occurred_at: str = "?"
    submitter: str = "?"
    checks: dict[str, bool] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and all(self.checks.get(c) for c in CHECKS)


@dataclass
class ExtractReport:
    project_id: str = "?"
    log_id: str = "?"
    checkpoint: str = ""
    anchor: str = ""
    records: list[RecordResult] = field(default_factory=list)
    sessions: list[SessionCheck] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (not self.errors and bool(self.records) and all(r.ok for r in self.records)
                and all(s.ok for s in self.sessions))


class AnchorCheck(Protocol):
    def __call__(self, evidence: dict[str, Any], trust: dict[str, Any], log_id: str, size: int, root: bytes,
                 /, first_cover: int | None = None) -> str: ...


def _anchor_checker(kind: str) -> AnchorCheck:
    if kind == "embedded":
        return verify_embedded_anchor
    if kind == "fabric":
        return verify_fabric_anchor
    raise ExtractError(f"unknown ledger kind {kind!r} in anchor evidence")


Members = dict[str, bytes]


def _read(files: Members, name: str) -> bytes:
    try:
        return files[name]
    except KeyError:
        raise ExtractError(f"extract has no {name}") from None


def _unzip(zf: zipfile.ZipFile, name: str) -> bytes:
    info = zf.getinfo(name)
    if info.file_size > MAX_MEMBER:
        raise ExtractError(f"{name} is {info.file_size} bytes, more than {MAX_MEMBER}")
    try:
        return zf.read(name)
    except Exception as exc:  # zipfile raises many types on damaged archives; all mean the same here
        raise ExtractError(f"{name} in the extract is corrupted: {type(exc).__name__}: {exc}") from exc


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedInput(f"{what} is not JSON: {exc}") from exc


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedInput(f"{what} must be a JSON object")
    return value


def canonical_zip(members: list[tuple[str, bytes]]) -> bytes:
    """The one byte layout of an extract with these members: stored, fixed time stamps and attributes.

    A verifier rebuilds it from the members it read and compares, so no byte of the file goes unchecked.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, content in members:
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, content)
    return buffer.getvalue()


def _members(data: bytes) -> Members:
    """Every member of the archive, read once, after checking the archive is laid out canonically."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        if len(names) != len(set(names)) or len(names) > 1_000_000:
            raise ExtractError("extract archive lists a member twice")
        members = [(name, _unzip(zf, name)) for name in names]
    rebuilt = canonical_zip(members)
    if rebuilt != data:
        pairs = enumerate(zip(rebuilt, data, strict=False))
        at = next((i for i, (a, b) in pairs if a != b), min(len(rebuilt), len(data)))
        raise ExtractError(f"extract archive is not in its canonical layout: byte {at} differs (file altered)")
    return dict(members)


def verify_extract(path: Path, trust: dict[str, Any] | None = None, media: Path | None = None) -> ExtractReport:
    """Verify the extract at `path`. With `trust` None, the extract's own trust.json is used (and said so).
    With `media`, recording segment files found there are checked against their logged hashes."""
    report = ExtractReport()
    try:
        proven = _verify(_members(path.read_bytes()), trust, report)
        if media is not None:
            report.sessions += check_media(proven, media)
    except VerificationError as exc:
        report.errors.append(str(exc))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, RuntimeError,
            ValueError) as exc:
        report.errors.append(f"extract is not a readable zip file: {type(exc).__name__}: {exc}")
    return report


def _verify(files: Members, trust: dict[str, Any] | None, report: ExtractReport) -> list[LogEntry]:
    """Fill `report`; return the entries whose every check held."""
    if trust is None:
        trust = _obj(_json(_read(files, "trust.json"), "trust.json"), "trust.json")
        report.notes.append(
            "trust roots were taken from the extract itself; compare their fingerprints with the published ones "
            "or pass --trust"
        )
    notary = _obj(trust.get("notary"), "trust notary")
    note_key = parse_vkey(str(notary.get("note_key", "")))
    ledger_trust = _obj(trust.get("ledger"), "trust ledger")

    manifest_bytes = _read(files, "manifest.json")
    try:
        signature = base64.b64decode(_read(files, "manifest.sig").strip(), validate=True)
        Ed25519PublicKey.from_public_bytes(note_key.public_key).verify(signature, MANIFEST_CONTEXT + manifest_bytes)
    except (binascii.Error, InvalidSignature, ValueError) as exc:
        raise ExtractError(f"manifest is not signed by notary {note_key.name}") from exc
    manifest = _obj(_json(manifest_bytes, "manifest.json"), "manifest")
    if manifest.get("format") != EXTRACT_FORMAT:
        raise ExtractError(f"extract format is {manifest.get('format')!r}, this verifier reads {EXTRACT_FORMAT}")
    summary = hashlib.sha256(_read(files, "SUMMARY.txt")).hexdigest()
    if summary != manifest.get("summary_sha256"):
        raise ExtractError("SUMMARY.txt is not the summary the notary signed")
    unknown = [n for n in files if n not in FIXED_MEMBERS and not n.startswith("records/")]
    if unknown:
        raise ExtractError(f"extract holds files that are not part of the format: {', '.join(unknown[:3])}")
    report.project_id = str(manifest.get("project_id"))
    report.log_id = str(manifest.get("log_id"))
    if report.log_id != notary.get("log_id"):
        raise ExtractError(f"extract is for log {report.log_id!r}, trusted notary keeps log {notary.get('log_id')!r}")

    cp_info = _obj(manifest.get("checkpoint"), "manifest checkpoint")
    checkpoint = verify_checkpoint(str(cp_info.get("note", "")), note_key)
    if checkpoint.size != cp_info.get("size") or checkpoint.root.hex() != cp_info.get("root"):
        raise ExtractError("manifest's checkpoint size or root differs from the signed checkpoint")
    report.checkpoint = f"size {checkpoint.size}, root {checkpoint.root.hex()[:16]}…, signed by {note_key.name} ✓"

    anchor = _obj(manifest.get("anchor"), "manifest anchor")
    kind = str(anchor.get("ledger"))
    if ledger_trust.get("ledger") != kind:
        raise ExtractError(f"anchor is on a {kind!r} ledger, trusted ledger is {ledger_trust.get('ledger')!r}")
    evidence = _obj(anchor.get("evidence"), "anchor evidence")
    report.anchor = _anchor_checker(kind)(evidence, ledger_trust, report.log_id, checkpoint.size, checkpoint.root)

    keys = _submitter_keys(manifest.get("submitters"))
    listed = manifest.get("records")
    if not isinstance(listed, list) or not listed:
        raise ExtractError("manifest lists no records")
    named = {str(item.get("file")) for item in listed if isinstance(item, dict)}
    extra = sorted(n for n in files if n.startswith("records/") and n not in named)
    if extra:
        raise ExtractError(f"extract holds records the manifest does not list: {', '.join(extra[:3])}")
    previous = -1
    proven: list[LogEntry] = []
    for position, item in enumerate(listed):
        result, entry = _verify_record(files, _obj(item, "manifest record"), position, previous, checkpoint.size,
                                       checkpoint.root, report.project_id, keys)
        previous = result.leaf_index
        report.records.append(result)
        if entry is not None and result.ok:
            proven.append(entry)

    def beacon_check(leaf: int, beacon: bytes) -> str:
        return _check_beacon(manifest.get("beacons"), leaf, beacon, note_key, checkpoint, kind, ledger_trust,
                             report.log_id)

    report.sessions = recording_continuity(proven) + draw_reproducibility(proven, beacon_check)
    return proven


def _check_beacon(beacons: Any, leaf: int, beacon: bytes, note_key: NoteKey, final: Checkpoint, kind: str,
                  trust: dict[str, Any], log_id: str) -> str:
    if not isinstance(beacons, list):
        raise ExtractError("manifest has no beacons for its draws")
    for item in beacons:
        item = _obj(item, "beacon")
        if item.get("root") != beacon.hex():
            continue
        cp = verify_checkpoint(str(item.get("checkpoint", "")), note_key)
        if cp.root != beacon:
            raise ExtractError("beacon checkpoint's root is not the beacon")
        if cp.size <= leaf:
            raise ExtractError(f"beacon is the root at size {cp.size}, not covering the commitment (leaf {leaf})")
        verify_consistency(cp.size, final.size, hex_hashes("beacon consistency proof", item.get("consistency_proof")),
                           cp.root, final.root)
        where = _anchor_checker(kind)(_obj(item.get("evidence"), "beacon anchor evidence"), trust, log_id, cp.size,
                                      cp.root, first_cover=leaf)
        return f"anchored at size {cp.size} ({where.split(',')[1].strip()})"
    raise ExtractError(f"beacon {beacon.hex()[:16]}… is not an anchored checkpoint in the extract")


def _submitter_keys(value: Any) -> dict[str, tuple[PublicKey, dict[str, Any]]]:
    if not isinstance(value, list):
        raise MalformedInput("manifest submitters must be a list")
    keys = {}
    for item in value:
        item = _obj(item, "manifest submitter")
        keys[str(item.get("submitter_id"))] = (load_public_key(str(item.get("public_key", ""))), item)
    return keys


def _verify_record(
    files: Members, item: dict[str, Any], position: int, previous: int, size: int, root: bytes,
    project_id: str, keys: dict[str, tuple[PublicKey, dict[str, Any]]],
) -> tuple[RecordResult, LogEntry | None]:
    leaf_index = item.get("leaf_index")
    result = RecordResult(leaf_index if isinstance(leaf_index, int) else -1)
    entry = None
    try:
        listed_hash = hex_hash("manifest leaf hash", item.get("leaf_hash"))
        data = _obj(_json(_read(files, str(item.get("file"))), str(item.get("file"))), "record file")
        entry_bytes = canonical_bytes(data.get("entry"))
        entry = parse_entry(entry_bytes)
        result.type = str(entry.record.get("type"))
        result.occurred_at = str(entry.record.get("occurred_at"))
        result.submitter = entry.submitter
        result.checks["content"] = leaf_hash(entry_bytes) == listed_hash
        if not result.checks["content"]:
            result.errors.append(f"entry does not hash to the manifest's leaf hash {listed_hash.hex()[:16]}…")
        result.checks["order"] = _check_order(entry, result, position, previous, project_id)
        _check_step(result, "inclusion", lambda: verify_inclusion(
            leaf_hash(entry_bytes), result.leaf_index, size, hex_hashes("inclusion proof", data.get("inclusion_proof")),
            root))
        _check_step(result, "submitter", lambda: _check_submitter(entry, keys))
        disclosures = data.get("disclosures") or []
        if disclosures:
            _check_step(result, "disclosed", lambda: _check_disclosures(entry, disclosures))
    except VerificationError as exc:
        result.errors.append(str(exc))
    return result, entry


def _check_step(result: RecordResult, name: str, step: Callable[[], None]) -> None:
    try:
        step()
        result.checks[name] = True
    except VerificationError as exc:
        result.checks[name] = False
        result.errors.append(f"{name}: {exc}")


def _check_order(entry: LogEntry, result: RecordResult, position: int, previous: int, project_id: str) -> bool:
    problems = []
    if entry.seq != result.leaf_index:
        problems.append(f"entry says leaf {entry.seq}, manifest says {result.leaf_index}")
    if entry.seq <= previous:
        problems.append(f"leaf {entry.seq} comes after leaf {previous}: records are out of order")
    if entry.project_id != project_id:
        problems.append(f"record belongs to project {entry.project_id!r}, not {project_id!r}")
    if entry.project_seq != position:
        problems.append(
            f"record is the project's record #{entry.project_seq} but stands at #{position}: "
            f"{'a record is missing before it' if entry.project_seq > position else 'records are reordered'}"
        )
    result.errors.extend(problems)
    return not problems


def _check_submitter(entry: LogEntry, keys: dict[str, tuple[PublicKey, dict[str, Any]]]) -> None:
    if entry.submitter not in keys:
        raise ExtractError(f"submitter {entry.submitter} is not in the notary's registry")
    key, info = keys[entry.submitter]
    revoked = info.get("revoked_at")
    if revoked and str(revoked) <= entry.received_at:
        raise ExtractError(f"submitter {entry.submitter}'s key was revoked {revoked}, before this record")
    verify_entry_signature(entry, key)


def _check_disclosures(entry: LogEntry, disclosures: Any) -> None:
    if not isinstance(disclosures, list):
        raise MalformedInput("disclosures must be a list")
    payload = entry.record.get("payload", {})
    for d in disclosures:
        d = _obj(d, "disclosure")
        name = str(d.get("field"))
        if name not in payload:
            raise ExtractError(f"disclosure names field {name!r}, which the record does not have")
        verify_disclosure(str(payload[name]), str(d.get("salt")), d.get("value"), name)  # type: ignore[arg-type]
