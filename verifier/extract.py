"""Verification of an audit extract, offline, against trust roots the user chose.

As sigstore-python verifies a bundle: the archive is read once within fixed limits and parsed strictly
into the typed formats of `verifier.manifest`; then small independent checks run over those values, each
returning findings. Nothing in the extract is believed before a check has tied it to a root the user chose:
the manifest is the notary's (signature), every other member is the one the manifest lists (SHA-256 and
size), the checkpoint is the notary's and of this log (signature and origin), the anchor evidence shows it
on the ledger, and each record is the listed entry, in the tree, in project order, signed by its submitter,
not captured after it was received, and opening any disclosed commitment. The roots inside the extract
(`claimed-roots.json`) are only used to say whether it is internally consistent: the verdict is then
UNTRUSTED, never VERIFIED, and the fingerprints the user would have to pin are shown.
"""

import enum
import hashlib
import io
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from verifier.anchor import AnchorEvidence, LogHead, verify_embedded_anchor, verify_embedded_head
from verifier.cases import complaints_handled, misconduct_linkage, objections_handled
from verifier.commitments import Disclosure
from verifier.entry import LogEntry, parse_entry, verify_entry_signature
from verifier.errors import ExtractError, MalformedInput, VerificationError
from verifier.fabric import verify_fabric_anchor, verify_fabric_head
from verifier.face import roster_identities
from verifier.findings import Finding
from verifier.heads import ProjectHead, heads_commitment
from verifier.manifest import (
    CLAIMED_ROOTS,
    MANIFEST,
    MANIFEST_CONTEXT,
    SIGNATURE,
    SUMMARY,
    Beacon,
    ExtractManifest,
    ListedRecord,
    MemberDigest,
    RecordFile,
    RegisteredSubmitter,
    is_record_file,
    parse_signature,
)
from verifier.media import check_media, gather_media
from verifier.merkle import leaf_hash, verify_consistency, verify_inclusion
from verifier.note import Checkpoint, NoteKey, verify_checkpoint
from verifier.session import (
    archive_completeness,
    draw_commitments_resolved,
    draw_reproducibility,
    draw_schedules_kept,
    media_arrivals,
    recording_completeness,
    recording_continuity,
    recordings_within_booked_slots,
)
from verifier.signatures import PublicKey, key_algorithm, load_public_key
from verifier.strict import parse_canonical
from verifier.times import format_time, parse_time, parse_utc
from verifier.trust import LedgerRoot, NotaryRoot, TrustRoots

CHECKS = ("content", "submitter", "inclusion", "order", "time")
# Limits checked against the central directory before any member is read. A stored member occupies its own
# size in the archive, so with stored members only, nothing read can exceed the archive's size. Members are
# read one at a time and not kept once parsed; what stays is each record's parsed entry and each member's
# directory entry, so peak memory grows with the extract's size (measured in bench/RESULTS.md: about four
# times the file's size, and about 1 KiB per member) and these limits bound it.
MAX_EXTRACT_BYTES = 1024 * 1024 * 1024
MAX_MEMBER_BYTES = 16 * 1024 * 1024
MAX_MEMBERS = 500_000
# The manifest lists every member (about 300 bytes each), so it may be as large as MAX_MEMBERS needs.
MAX_MANIFEST_BYTES = 160 * 1024 * 1024
# How far a record's claimed capture time may lie after the notary's receipt time (device clock error).
MAX_CLOCK_SKEW = timedelta(seconds=5)


class Verdict(enum.Enum):
    VERIFIED = "VERIFIED"
    FAILED = "FAILED"
    UNTRUSTED = "UNTRUSTED"

    @property
    def exit_code(self) -> int:
        return {"VERIFIED": 0, "FAILED": 1, "UNTRUSTED": 3}[self.value]


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
    # "ledger block N at T" when the ledger's attested head held: nothing newer was anchored before then.
    complete_up_to: str = ""
    findings: list[Finding] = field(default_factory=list)
    records: list[RecordResult] = field(default_factory=list)
    sessions: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    trusted: bool = False
    # Fingerprints of the roots the extract was checked against when the user had not chosen them.
    needed_roots: list[str] = field(default_factory=list)
    # What a renderer (the court report) tells beside the findings, never re-checks: the roots the checks ran
    # against, the signed manifest, and each record's parsed entry and disclosures by leaf index.
    checked_against: list[str] = field(default_factory=list)
    manifest: ExtractManifest | None = None
    entries: dict[int, LogEntry] = field(default_factory=dict)
    disclosures: dict[int, tuple[Disclosure, ...]] = field(default_factory=dict)

    @property
    def consistent(self) -> bool:
        """Every check held (against the user's roots, or only against the extract's own claims)."""
        return (not self.errors and bool(self.records) and all(f.ok for f in self.findings)
                and all(r.ok for r in self.records) and all(s.ok for s in self.sessions))

    @property
    def verdict(self) -> Verdict:
        if not self.consistent:
            return Verdict.FAILED
        return Verdict.VERIFIED if self.trusted else Verdict.UNTRUSTED

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.VERIFIED


class AnchorCheck(Protocol):
    def __call__(self, evidence: dict[str, Any], trust: dict[str, Any], log_id: str, size: int, root: bytes,
                 /, first_cover: int | None = None, note: str | None = None) -> str: ...


_ANCHOR_CHECKS: dict[str, AnchorCheck] = {"embedded": verify_embedded_anchor, "fabric": verify_fabric_anchor}
_HEAD_CHECKS: dict[str, Callable[[dict[str, Any], dict[str, Any], str], tuple[LogHead, int, str]]] = {
    "embedded": verify_embedded_head, "fabric": verify_fabric_head}
_T = TypeVar("_T")


# ----- reading the archive -----

def _write_member(zf: zipfile.ZipFile, name: str, content: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    zf.writestr(info, content)


def canonical_zip(members: list[tuple[str, bytes]]) -> bytes:
    """The one byte layout of an extract with these members: stored, fixed time stamps and attributes.

    A verifier rebuilds it from the members it read and compares, so no byte of the file goes unchecked.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, content in members:
            _write_member(zf, name, content)
    return buffer.getvalue()


class _LayoutCheck(io.RawIOBase):
    """Where `zipfile` writes the canonical archive: each write is compared with the file's bytes at the same
    offset instead of being kept, so the layout is checked without a second copy of the extract in memory.
    `zipfile` writes each local header twice (provisionally, then with its CRC and sizes), so what counts
    is the last write over each range."""

    def __init__(self, original: BinaryIO, size: int) -> None:
        self._original = original
        self._size = size
        self._pos = 0
        self._end = 0
        self._differs: dict[int, int] = {}  # start -> end of written ranges whose last write differed

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._end}[whence]
        self._pos = base + offset
        return self._pos

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        start, end = self._pos, self._pos + len(chunk)
        # zipfile rewrites exactly the range it wrote before (a local header), so one lookup suffices and a
        # hostile archive with many differing headers costs linear, not quadratic, time.
        if self._differs.get(start, end + 1) <= end:
            del self._differs[start]
        self._original.seek(start)
        if self._original.read(len(chunk)) != chunk:
            self._differs[start] = end
        self._pos, self._end = end, max(self._end, end)
        return len(chunk)

    @property
    def first_difference(self) -> int | None:
        if self._differs:
            return min(self._differs)
        return None if self._end == self._size else min(self._end, self._size)


def _check_directory(infos: list[zipfile.ZipInfo], archive_size: int) -> None:
    if len(infos) > MAX_MEMBERS:
        raise ExtractError(f"extract lists {len(infos)} members, more than the limit of {MAX_MEMBERS}")
    names = [i.filename for i in infos]
    if len(names) != len(set(names)):
        raise ExtractError("extract archive lists a member twice")
    total = 0
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            raise ExtractError(f"{info.filename!r:.80} is compressed; extract members must be stored")
        if info.file_size != info.compress_size:
            raise ExtractError(f"{info.filename!r:.80} claims {info.file_size} bytes stored in {info.compress_size}")
        limit = MAX_MANIFEST_BYTES if info.filename == MANIFEST else MAX_MEMBER_BYTES
        if info.file_size > limit:
            raise ExtractError(f"{info.filename!r:.80} is {info.file_size} bytes, more than the limit of {limit}")
        total += info.file_size
    if total > archive_size:
        raise ExtractError(f"extract members add up to {total} bytes, more than the archive's {archive_size}")


def read_members(path: Path, consume: Callable[[str, bytes], None], max_bytes: int = MAX_EXTRACT_BYTES) -> None:
    """Hand every member of the archive to `consume`, one at a time, after checking the central directory
    against the limits; raise unless the whole file is the canonical layout of those members. Only one
    member is held here at a time."""
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise ExtractError(f"cannot read extract {path.name}: {exc.strerror}") from exc
    if size > max_bytes:
        raise ExtractError(f"extract is {size} bytes, more than the limit of {max_bytes}")
    try:
        with path.open("rb") as f, path.open("rb") as original, zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
            _check_directory(infos, size)
            layout = _LayoutCheck(original, size)
            with zipfile.ZipFile(layout, "w", zipfile.ZIP_STORED) as rebuilt:
                for info in infos:
                    with zf.open(info) as member:
                        data = member.read(info.file_size + 1)
                    _write_member(rebuilt, info.filename, data)
                    consume(info.filename, data)
    except VerificationError:
        raise
    except Exception as exc:  # zipfile raises many types on damaged archives; all mean the same here
        raise ExtractError(f"extract is not a readable zip file: {type(exc).__name__}: {exc}") from exc
    at = layout.first_difference
    if at is not None:
        raise ExtractError(f"extract archive is not in its canonical layout (byte {at} differs: headers, order or "
                           "padding were altered)")


# ----- the parsed extract -----

@dataclass(frozen=True)
class ParsedRecord:
    listed: ListedRecord
    file: RecordFile | None
    entry: LogEntry | None
    error: str | None


@dataclass(frozen=True)
class Extract:
    """An extract parsed once: the signed manifest and its signature, the digest of every member as read,
    and each record parsed. Record members' bytes are not kept: their digests and parsed forms are."""

    manifest_bytes: bytes
    manifest: ExtractManifest
    signature: bytes
    members: dict[str, MemberDigest]
    records: tuple[ParsedRecord, ...]
    claimed_roots: TrustRoots | None


_Parsed = tuple[RecordFile | None, LogEntry | None, str | None]


def _parse_record_file(name: str, data: bytes) -> _Parsed:
    try:
        file = RecordFile.parse(parse_canonical(data, name), name)
        return file, parse_entry(file.entry_bytes), None
    except VerificationError as exc:
        return None, None, str(exc)


def load_extract(path: Path, max_bytes: int = MAX_EXTRACT_BYTES) -> Extract:
    """Read the archive at `path` once and parse every member strictly into the extract's typed formats."""
    kept: dict[str, bytes] = {}
    digests: dict[str, MemberDigest] = {}
    parsed: dict[str, _Parsed] = {}

    def consume(name: str, data: bytes) -> None:
        digests[name] = MemberDigest(name, hashlib.sha256(data).digest(), len(data))
        if is_record_file(name):
            parsed[name] = _parse_record_file(name, data)
        elif name in (MANIFEST, SIGNATURE, CLAIMED_ROOTS):
            kept[name] = data

    read_members(path, consume, max_bytes)
    for name in (MANIFEST, SIGNATURE):
        if name not in kept:
            raise ExtractError(f"extract has no {name}")
    manifest = ExtractManifest.parse(parse_canonical(kept[MANIFEST], MANIFEST))
    signature = parse_signature(kept[SIGNATURE])
    claimed = None
    if CLAIMED_ROOTS in kept:
        try:
            claimed = TrustRoots.parse(kept[CLAIMED_ROOTS], CLAIMED_ROOTS)
        except MalformedInput:
            claimed = None
    records = tuple(ParsedRecord(listed, *parsed.get(listed.file, (None, None, f"extract has no {listed.file}")))
                    for listed in manifest.records)
    return Extract(kept[MANIFEST], manifest, signature, digests, records, claimed)


# ----- checks -----

@dataclass(frozen=True)
class Roots:
    """The roots one verification runs against, and whether the user chose them."""

    notary: NotaryRoot
    ledgers: tuple[LedgerRoot, ...]
    trusted: bool


def _choose_roots(extract: Extract, trust: TrustRoots | None, report: ExtractReport) -> Roots:
    m = extract.manifest
    kind = m.anchor.ledger
    if trust is not None:
        notary, ledgers = trust.notary(m.log_id), trust.ledgers_for(kind, m.log_id)
        if notary is not None and ledgers:
            return Roots(notary, tuple(ledgers), True)
        missing = ([f"the notary of log {m.log_id!r}"] if notary is None else []) + (
            [f"any {kind} ledger bound to log {m.log_id!r}"] if not ledgers else [])
        report.notes.append(f"the chosen trust roots have no key for {' or '.join(missing)}")
    claimed = extract.claimed_roots
    notary = claimed.notary(m.log_id) if claimed else None
    ledgers = claimed.ledgers_for(kind, m.log_id) if claimed else []
    if notary is None or not ledgers:
        raise ExtractError("no trust roots were chosen for this extract, and it names none to compare with "
                           "(pass --trust FILE or pin the published roots with `bidtrace trust import`)")
    report.needed_roots = [notary.describe(), *(r.describe() for r in ledgers)]
    report.notes.append("the extract was checked only against the roots it names itself, which proves nothing "
                        "about who made it")
    return Roots(notary, tuple(ledgers), False)


def check_manifest_signature(extract: Extract, notary: NotaryRoot) -> Finding:
    key = notary.note_key
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(extract.signature,
                                                                  MANIFEST_CONTEXT + extract.manifest_bytes)
    except InvalidSignature:
        return Finding("manifest", False, f"manifest is not signed by notary {key.name} ({notary.fingerprint})")
    return Finding("manifest", True, f"signed by notary {key.name} ({notary.fingerprint})")


def check_members(extract: Extract) -> Finding:
    """Every member but the manifest and its signature is listed with its digest, and nothing else is there."""
    listed = {d.name: d for d in extract.manifest.members}
    present = set(extract.members) - {MANIFEST, SIGNATURE}
    problems = []
    unlisted = sorted(present - set(listed))
    if unlisted:
        problems.append(f"extract holds members the manifest does not list: {', '.join(unlisted[:3])}")
    absent = sorted(set(listed) - present)
    if absent:
        problems.append(f"extract has no {', '.join(absent[:3])} (listed in the manifest)")
    for name in sorted(present & set(listed)):
        read, digest = extract.members[name], listed[name]
        if read.size != digest.size or read.sha256 != digest.sha256:
            problems.append(f"{name} is not the member the notary signed (sha256 or size differs)")
    records = {r.file for r in extract.manifest.records}
    stray = sorted(n for n in present if is_record_file(n) and n not in records)
    if stray:
        problems.append(f"extract holds records the manifest does not list: {', '.join(stray[:3])}")
    unknown = sorted(n for n in present if not is_record_file(n) and n not in (SUMMARY, CLAIMED_ROOTS))
    if unknown:
        problems.append(f"extract holds files that are not part of the format: {', '.join(unknown[:3])}")
    if len(listed) != len(extract.manifest.members):
        problems.append("the manifest lists a member twice")
    if problems:
        return Finding("members", False, "; ".join(problems[:4]))
    return Finding("members", True, f"all {len(listed) + 2} members are bound by the signed manifest")


def check_checkpoint(extract: Extract, notary: NotaryRoot) -> tuple[Finding, Checkpoint | None]:
    m = extract.manifest
    key = notary.note_key
    try:
        checkpoint = verify_checkpoint(m.checkpoint.note, key)
    except VerificationError as exc:
        return Finding("checkpoint", False, str(exc)), None
    problems = []
    if checkpoint.origin != key.name:
        problems.append(f"checkpoint origin is {checkpoint.origin!r:.60}, the log {notary.log_id!r} signs as "
                        f"{key.name!r}: it is another log's checkpoint")
    if m.origin != checkpoint.origin:
        problems.append(f"manifest names origin {m.origin!r:.60}, the checkpoint {checkpoint.origin!r:.60}")
    if m.log_id != notary.log_id:
        problems.append(f"extract is for log {m.log_id!r}, the trusted notary keeps log {notary.log_id!r}")
    if checkpoint.size != m.checkpoint.size or checkpoint.root != m.checkpoint.root:
        problems.append("manifest's checkpoint size or root differs from the signed checkpoint")
    if m.anchor.size != checkpoint.size or m.anchor.root != checkpoint.root:
        problems.append("manifest's anchor names another size or root than the checkpoint")
    if problems:
        return Finding("checkpoint", False, "; ".join(problems)), None
    return Finding("checkpoint", True, f"size {checkpoint.size}, root {checkpoint.root.hex()[:16]}…, "
                                       f"signed by {key.name} ✓"), checkpoint


def _on_bound_ledger(evidence: AnchorEvidence, ledgers: tuple[LedgerRoot, ...], log_id: str,
                     check: Callable[[dict[str, Any], dict[str, Any]], _T]) -> _T:
    """Run `check(evidence, ledger root)` against each chosen root of the evidence's ledger kind bound to
    `log_id`; any one suffices. A ledger trusted for another log's anchors proves nothing about this one's."""
    failures = []
    for ledger in (root for root in ledgers if root.ledger == evidence.ledger and root.anchors(log_id)):
        try:
            return check(evidence.evidence, ledger.body)
        except VerificationError as exc:
            failures.append(str(exc))
    raise VerificationError("; ".join(failures) or f"no chosen {evidence.ledger} ledger root is bound to log "
                                                     f"{log_id!r:.60}")


def check_anchor(evidence: AnchorEvidence, ledgers: tuple[LedgerRoot, ...], log_id: str, size: int, root: bytes,
                 note: str, first_cover: int | None = None) -> str:
    """Check the evidence anchors the signed checkpoint `note` (log_id, size, root) on a chosen ledger bound to
    the log; return the summary."""
    check = _ANCHOR_CHECKS[evidence.ledger]
    return _on_bound_ledger(evidence, ledgers, log_id,
                            lambda ev, body: check(ev, body, log_id, size, root, first_cover=first_cover, note=note))


def check_head(manifest: ExtractManifest, ledgers: tuple[LedgerRoot, ...], checkpoint: Checkpoint,
               not_before: datetime | None = None) -> tuple[Finding, str]:
    """The extract is proven against the log's newest anchored checkpoint as a chosen ledger attested it at a
    point of the ledger: nothing newer was anchored for the log before that point. With `not_before`, that
    point must not be earlier (an older extract replayed is then refused, not only dated). Return the finding
    and, when it holds, how far completeness is proven: "ledger block N at T"."""
    claimed = manifest.head
    check = _HEAD_CHECKS[claimed.evidence.ledger]
    try:
        head, block, where = _on_bound_ledger(claimed.evidence, ledgers, manifest.log_id,
                                              lambda ev, body: check(ev, body, manifest.log_id))
    except VerificationError as exc:
        return Finding("head", False, f"the ledger's attestation of the log's head does not hold: {exc}"), ""
    problems = []
    if (head.size, head.root, head.tx_id, head.attested_at) != (claimed.size, claimed.root, claimed.tx_id,
                                                               claimed.attested_at):
        problems.append("the manifest's head is not what the ledger attested")
    if head.size > checkpoint.size:
        problems.append(f"when the extract was made the ledger had anchored the log up to size {head.size}, the "
                        f"extract stops at size {checkpoint.size}: records anchored after it are left out")
    elif (head.size, head.root) != (checkpoint.size, checkpoint.root):
        problems.append(f"the ledger's head of the log (size {head.size}) is not the extract's checkpoint "
                        f"(size {checkpoint.size})")
    attested = parse_utc(head.attested_at, "head attested_at")
    if not_before is not None and attested < not_before:
        problems.append(f"the ledger attested this head at {head.attested_at}, before {format_time(not_before)} "
                        "as required: it is an older extract, and records after it are not covered")
    if problems:
        return Finding("head", False, "; ".join(problems)), ""
    up_to = f"ledger block {block} at {head.attested_at}"
    return Finding("head", True, f"complete up to {up_to}: the log's newest anchored checkpoint there is this "
                                 f"extract's (size {head.size}); {where}"), up_to


def check_project_head(manifest: ExtractManifest, checkpoint: Checkpoint) -> Finding:
    """The checkpoint commits to the project's number of records and last leaf (`verifier.heads`): the extract
    must list exactly that many, ending at that leaf, so no record is left off the end of the project."""
    proof = manifest.project_head
    try:
        signed = heads_commitment(checkpoint.extensions)
        leaf = ProjectHead(manifest.project_id, proof.records, proof.last_leaf).leaf()
        verify_inclusion(leaf_hash(leaf), proof.index, signed.projects, list(proof.inclusion_proof), signed.root)
    except VerificationError as exc:
        return Finding("project head", False, f"the project's head is not the one the checkpoint commits to: {exc}")
    listed = len(manifest.records)
    last = manifest.records[-1].leaf_index if manifest.records else None
    if proof.records != listed or proof.last_leaf != last:
        return Finding("project head", False,
                       f"the checkpoint commits to {proof.records} records of project {manifest.project_id} ending at "
                       f"leaf {proof.last_leaf}; the extract lists {listed} ending at leaf {last}: "
                       + (f"{proof.records - listed} record(s) are left out" if proof.records > listed else
                          "the listing does not match"))
    return Finding("project head", True, f"all {listed} records the project had at size {checkpoint.size}, the "
                                         f"last at leaf {last}, as the checkpoint commits")


def _check_step(result: RecordResult, name: str, step: Callable[[], None]) -> None:
    try:
        step()
        result.checks[name] = True
    except VerificationError as exc:
        result.checks[name] = False
        result.errors.append(f"{name}: {exc}")
    except (ArithmeticError, ValueError) as exc:  # values at the edge of a type's range: a failed check
        result.checks[name] = False
        result.errors.append(f"{name}: a value is out of range: {type(exc).__name__}: {str(exc)[:120]}")


def check_capture_time(entry: LogEntry) -> None:
    """The record cannot have happened after the notary received it (beyond the allowed clock skew)."""
    occurred = parse_time(entry.record.get("occurred_at"), "occurred_at")
    received = parse_utc(entry.received_at, "received_at")
    # Differences, never received + skew: a time of 9999-12-31 plus five seconds is an OverflowError.
    if occurred - received > MAX_CLOCK_SKEW:
        late = (occurred - received).total_seconds()
        raise VerificationError(f"occurred_at {entry.record.get('occurred_at')} is {late:.1f} s "
                                f"after the notary received it ({entry.received_at}); allowed skew is "
                                f"{MAX_CLOCK_SKEW.total_seconds():.0f} s")
    if entry.record.get("type") == "recording_segment":
        _check_segment_times(entry, received)


def _check_segment_times(entry: LogEntry, received: datetime) -> None:
    """A segment cannot end after the notary had it, nor end before it starts: otherwise material recorded at
    another time could claim any span of a booked slot, whatever its capture time says."""
    payload = entry.record.get("payload")
    payload = payload if isinstance(payload, dict) else {}
    start = parse_time(payload.get("start"), "recording segment start")
    end = parse_time(payload.get("end"), "recording segment end")
    if end < start:
        raise VerificationError(f"recording segment ends ({payload.get('end')}) before it starts "
                                f"({payload.get('start')})")
    if end - received > MAX_CLOCK_SKEW:
        raise VerificationError(f"recording segment ends {payload.get('end')}, "
                                f"{(end - received).total_seconds():.1f} s after the notary received it "
                                f"({entry.received_at}); allowed skew is {MAX_CLOCK_SKEW.total_seconds():.0f} s")


def _check_order(entry: LogEntry, listed: ListedRecord, position: int, previous: int, project_id: str) -> list[str]:
    problems = []
    if entry.leaf_index != listed.leaf_index:
        problems.append(f"entry says leaf {entry.leaf_index}, manifest says {listed.leaf_index}")
    if entry.leaf_index <= previous:
        problems.append(f"leaf {entry.leaf_index} comes after leaf {previous}: records are out of order")
    if entry.project_id != project_id:
        problems.append(f"record belongs to project {entry.project_id!r}, not {project_id!r}")
    if entry.project_seq != position:
        problems.append(
            f"record is the project's record #{entry.project_seq} but stands at #{position}: "
            f"{'a record is missing before it' if entry.project_seq > position else 'records are reordered'}"
        )
    return problems


def _check_submitter(entry: LogEntry, keys: dict[str, tuple[PublicKey | None, RegisteredSubmitter]]) -> None:
    if entry.submitter not in keys:
        raise ExtractError(f"submitter {entry.submitter} is not in the notary's registry")
    key, info = keys[entry.submitter]
    if key is None:
        raise ExtractError(f"submitter {entry.submitter}'s registered key is not a valid public key")
    # As times, not as text: "…T10:00+08:00" sorts after "…T03:00Z" as text yet is the same instant.
    received = parse_utc(entry.received_at, "received_at")
    registered = parse_utc(info.registered_at, f"submitter {entry.submitter}'s registered_at")
    revoked = None if info.revoked_at is None else parse_utc(info.revoked_at, f"submitter {entry.submitter}'s "
                                                                              "revoked_at")
    if received < registered:
        raise ExtractError(f"submitter {entry.submitter}'s key was registered {info.registered_at}, after this "
                           f"record was received ({entry.received_at})")
    if revoked is not None and revoked <= received:
        raise ExtractError(f"submitter {entry.submitter}'s key was revoked {info.revoked_at}, before this record")
    if entry.algorithm != key_algorithm(key):
        # The entry states its algorithm; a statement that does not match the key is a byte that lies.
        raise ExtractError(f"entry says its signature is {entry.algorithm!r:.30}, submitter {entry.submitter}'s "
                           f"key is {key_algorithm(key)}")
    verify_entry_signature(entry, key)


def _check_disclosures(entry: LogEntry, file: RecordFile) -> None:
    payload = entry.record.get("payload")
    if not isinstance(payload, dict):
        raise ExtractError("record has no payload to disclose")
    for d in file.disclosures:
        if not d.field.endswith("_commitment") or d.field not in payload:
            raise ExtractError(f"disclosure names field {d.field!r:.60}, which is not a commitment of the record")
        d.opens(payload[d.field])


def check_record(parsed: ParsedRecord, position: int, previous: int, checkpoint: Checkpoint, project_id: str,
                 keys: dict[str, tuple[PublicKey | None, RegisteredSubmitter]]) -> RecordResult:
    listed = parsed.listed
    result = RecordResult(listed.leaf_index)
    if parsed.entry is None or parsed.file is None:
        result.errors.append(parsed.error or "record could not be read")
        return result
    entry, file = parsed.entry, parsed.file
    result.type = str(entry.record.get("type"))
    result.occurred_at = str(entry.record.get("occurred_at"))
    result.submitter = entry.submitter
    computed = leaf_hash(file.entry_bytes)
    result.checks["content"] = computed == listed.leaf_hash
    if not result.checks["content"]:
        result.errors.append(f"entry does not hash to the manifest's leaf hash {listed.leaf_hash.hex()[:16]}…")
    if file.leaf_index != listed.leaf_index:
        result.errors.append(f"record file says leaf {file.leaf_index}, manifest says {listed.leaf_index}")
    problems = _check_order(entry, listed, position, previous, project_id)
    result.checks["order"] = not problems
    result.errors.extend(problems)
    _check_step(result, "inclusion", lambda: verify_inclusion(computed, listed.leaf_index, checkpoint.size,
                                                              list(file.inclusion_proof), checkpoint.root))
    _check_step(result, "submitter", lambda: _check_submitter(entry, keys))
    _check_step(result, "time", lambda: check_capture_time(entry))
    if file.disclosures:
        _check_step(result, "disclosed", lambda: _check_disclosures(entry, file))
    return result


def _submitter_keys(extract: Extract) -> dict[str, tuple[PublicKey | None, RegisteredSubmitter]]:
    keys: dict[str, tuple[PublicKey | None, RegisteredSubmitter]] = {}
    for s in extract.manifest.submitters:
        if s.submitter_id in keys:
            raise ExtractError(f"manifest lists submitter {s.submitter_id} twice")
        try:
            keys[s.submitter_id] = (load_public_key(s.public_key), s)
        except MalformedInput:
            keys[s.submitter_id] = (None, s)
    return keys


def check_beacon(beacons: tuple[Beacon, ...], leaf: int, beacon: bytes, note_key: NoteKey, final: Checkpoint,
                 ledgers: tuple[LedgerRoot, ...], log_id: str) -> str:
    for item in beacons:
        if item.root != beacon:
            continue
        cp = verify_checkpoint(item.checkpoint, note_key)
        if cp.origin != final.origin:
            raise ExtractError(f"beacon checkpoint is of origin {cp.origin!r:.60}, not {final.origin!r:.60}")
        if cp.root != beacon or cp.size != item.size:
            raise ExtractError("beacon checkpoint's size or root is not the beacon's")
        if cp.size <= leaf:
            raise ExtractError(f"beacon is the root at size {cp.size}, not covering the commitment (leaf {leaf})")
        verify_consistency(cp.size, final.size, list(item.consistency_proof), cp.root, final.root)
        where = check_anchor(item.evidence, ledgers, log_id, cp.size, cp.root, item.checkpoint, first_cover=leaf)
        parts = where.split(",")
        return f"anchored at size {cp.size} ({parts[1].strip() if len(parts) > 1 else where})"
    raise ExtractError(f"beacon {beacon.hex()[:16]}… is not an anchored checkpoint in the extract")


# ----- the whole -----

def verify_extract(path: Path, trust: TrustRoots | None = None, media: Path | str | None = None,
                   media_partial: bool = False, media_endpoint: str | None = None,
                   media_key: X25519PrivateKey | None = None, not_before: datetime | None = None) -> ExtractReport:
    """Verify the extract at `path` against `trust`, the roots the user chose. Without them (or without a
    root for this log or its ledger) the verdict is at best UNTRUSTED. With `media`, recording segment files
    there are checked against their logged hashes; a missing one fails unless `media_partial`. `media` is a
    folder or the media store (`s3://BUCKET/PREFIX` at `media_endpoint`); sealed files open with `media_key`.
    With `not_before`, the ledger must have attested the log's head no earlier than that time."""
    report = ExtractReport()
    try:
        extract = load_extract(path)
        proven = _verify(extract, trust, report, not_before)
        if media is not None:
            report.sessions += _guarded("media", lambda: _check_media_from(proven, str(media), media_partial,
                                                                           media_endpoint, media_key))
    except VerificationError as exc:
        report.errors.append(str(exc))
    return report


def _check_media_from(entries: list[LogEntry], media: str, partial: bool, endpoint: str | None,
                      key: X25519PrivateKey | None) -> list[Finding]:
    if not media.startswith("s3://") and key is None:
        return check_media(entries, Path(media), partial=partial)
    with tempfile.TemporaryDirectory(prefix="bidtrace-media-") as folder:
        problems = gather_media(entries, media, Path(folder), endpoint, key)
        gathered = [Finding("media gathered", False, "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)"
                                                                             if len(problems) > 3 else ""))]
        return (gathered if problems else []) + check_media(entries, Path(folder), partial=partial)


def _verify(extract: Extract, trust: TrustRoots | None, report: ExtractReport,
            not_before: datetime | None = None) -> list[LogEntry]:
    """Fill `report`; return the entries whose every check held."""
    m = extract.manifest
    report.project_id, report.log_id = m.project_id, m.log_id
    roots = _choose_roots(extract, trust, report)
    report.trusted = roots.trusted
    report.manifest = m
    report.checked_against = [roots.notary.describe(), *(r.describe() for r in roots.ledgers)]
    signed = check_manifest_signature(extract, roots.notary)
    report.findings.append(signed)
    if not signed.ok:
        return []
    members = check_members(extract)
    report.findings.append(members)
    finding, checkpoint = check_checkpoint(extract, roots.notary)
    report.findings.append(finding)
    if not members.ok or checkpoint is None:
        return []
    report.checkpoint = finding.detail
    try:
        report.anchor = check_anchor(m.anchor.evidence, roots.ledgers, m.log_id, checkpoint.size, checkpoint.root,
                                     m.checkpoint.note)
        report.findings.append(Finding("anchor", True, report.anchor))
    except VerificationError as exc:
        report.findings.append(Finding("anchor", False, f"anchor evidence does not hold: {exc}"))
        return []
    head, report.complete_up_to = check_head(m, roots.ledgers, checkpoint, not_before)
    report.findings.append(head)
    report.findings.append(check_project_head(m, checkpoint))
    if not m.records:
        raise ExtractError("manifest lists no records")

    keys = _submitter_keys(extract)
    previous = -1
    proven: list[LogEntry] = []
    for position, parsed in enumerate(extract.records):
        result = check_record(parsed, position, previous, checkpoint, m.project_id, keys)
        previous = max(previous, parsed.listed.leaf_index)
        report.records.append(result)
        if parsed.entry is not None and parsed.file is not None:
            report.entries[parsed.listed.leaf_index] = parsed.entry
            report.disclosures[parsed.listed.leaf_index] = parsed.file.disclosures
        if parsed.entry is not None and result.ok:
            proven.append(parsed.entry)

    # Indexed once: a scan of every beacon per draw result was quadratic in what the manifest may list.
    beacons: dict[bytes, Beacon] = {}
    for item in m.beacons:
        beacons.setdefault(item.root, item)

    def beacon_check(leaf: int, beacon: bytes) -> str:
        found = (beacons[beacon],) if beacon in beacons else ()
        return check_beacon(found, leaf, beacon, roots.notary.note_key, checkpoint, roots.ledgers, m.log_id)

    hashes = {p.listed.leaf_index: p.listed.leaf_hash for p in extract.records}
    report.sessions = (_guarded("recording continuity", lambda: recording_continuity(proven))
                       + _guarded("draws", lambda: draw_reproducibility(proven, beacon_check))
                       + _guarded("draw commitments", lambda: draw_commitments_resolved(proven))
                       + _guarded("scheduled draws", lambda: draw_schedules_kept(proven))
                       + _guarded("archive", lambda: archive_completeness(proven, hashes))
                       + _guarded("booked slots", lambda: recordings_within_booked_slots(proven))
                       + _guarded("objections", lambda: objections_handled(proven))
                       + _guarded("complaints", lambda: complaints_handled(proven))
                       + _guarded("misconduct", lambda: misconduct_linkage(proven, hashes, report.disclosures))
                       + _guarded("identities", lambda: roster_identities(proven))
                       + _guarded("recording completeness", lambda: recording_completeness(proven))
                       + _guarded("media store", lambda: media_arrivals(proven)))
    return proven


def _guarded(name: str, check: Callable[[], list[Finding]]) -> list[Finding]:
    """Session checks read payloads that only the notary's schemas shaped; a notary that shaped them otherwise
    (or a forger checked against its own roots) must get a failed check, never a crash."""
    try:
        return check()
    except Exception as exc:  # any fault in evidence is a failed check, reported as such
        return [Finding(name, False, f"could not be checked, the records are malformed: {type(exc).__name__}: "
                                     f"{str(exc)[:120]}")]
