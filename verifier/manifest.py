"""The audit extract format `bidtrace-extract/4`: its manifest, record files and anchor evidence, each with
one encode and one strict parse.

An extract is a zip of stored (uncompressed) members in one canonical layout: `manifest.json` (RFC 8785),
`manifest.sig` (base64 of the notary's Ed25519 signature over `bidtrace/extract-manifest/v4\\n` and the
manifest bytes, then a newline), and the members the manifest lists with their SHA-256 and size:
`SUMMARY.txt`, `claimed-roots.json` (the roots the notary says it has; shown, never trusted) and one
`records/<leaf index, 12 digits>.json` per record. Every JSON member is RFC 8785 canonical.
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from verifier.anchor import AnchorEvidence
from verifier.canonical import canonical_bytes
from verifier.commitments import Disclosure
from verifier.errors import ExtractError, MalformedInput
from verifier.heads import ProjectHeadProof
from verifier.strict import count, exact_object, hex64, hex64_list, listed, text
from verifier.times import utc_text

EXTRACT_FORMAT = "bidtrace-extract/4"
MANIFEST_CONTEXT = b"bidtrace/extract-manifest/v4\n"
# Formats no longer read, and why: a court told "refused" should know it is the format, not the evidence.
OLD_EXTRACT_FORMATS = {
    "bidtrace-extract/1": "format 1 bound too few of its bytes",
    "bidtrace-extract/2": "format 2 did not carry the ledger's attested head, so it could be cut at any older "
                          "anchored checkpoint",
    "bidtrace-extract/3": "format 3 named the anchor's ledger kind twice (beside its evidence and in it)",
}
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SUMMARY = "SUMMARY.txt"
CLAIMED_ROOTS = "claimed-roots.json"
_RECORD_FILE = re.compile(r"records/[0-9]{12}\.json")
_SIGNATURE_FILE = re.compile(rb"[A-Za-z0-9+/]{86}==\n")


def record_file_name(leaf_index: int) -> str:
    return f"records/{leaf_index:012d}.json"


@dataclass(frozen=True)
class ManifestCheckpoint:
    size: int
    root: bytes
    note: str

    @classmethod
    def parse(cls, value: Any, what: str) -> "ManifestCheckpoint":
        value = exact_object(value, what, {"size", "root", "note"})
        return cls(count(value, "size", what), hex64(value["root"], f"{what} root"), text(value, "note", what))

    def encode(self) -> dict[str, Any]:
        return {"size": self.size, "root": self.root.hex(), "note": self.note}


@dataclass(frozen=True)
class ManifestAnchor:
    """The anchor of the extract's checkpoint; its evidence says, by its tag, which kind of ledger holds it."""

    size: int
    root: bytes
    tx_id: str
    anchored_at: str
    evidence: AnchorEvidence

    @property
    def ledger(self) -> str:
        return self.evidence.ledger

    @classmethod
    def parse(cls, value: Any, what: str) -> "ManifestAnchor":
        value = exact_object(value, what, {"size", "root", "tx_id", "anchored_at", "evidence"})
        return cls(count(value, "size", what), hex64(value["root"], f"{what} root"), text(value, "tx_id", what),
                   utc_text(value["anchored_at"], f"{what} anchored_at"),
                   AnchorEvidence.parse(value["evidence"], f"{what} evidence"))

    def encode(self) -> dict[str, Any]:
        return {"size": self.size, "root": self.root.hex(), "tx_id": self.tx_id, "anchored_at": self.anchored_at,
                "evidence": self.evidence.encode()}


@dataclass(frozen=True)
class ManifestHead:
    """The ledger's attestation, made for this extract, of the log's newest anchored checkpoint at a point of
    the ledger: what the extract's freshness rests on. `evidence` shows the attesting transaction."""

    size: int
    root: bytes
    tx_id: str
    attested_at: str
    evidence: AnchorEvidence

    @classmethod
    def parse(cls, value: Any, what: str) -> "ManifestHead":
        value = exact_object(value, what, {"size", "root", "tx_id", "attested_at", "evidence"})
        return cls(count(value, "size", what), hex64(value["root"], f"{what} root"), text(value, "tx_id", what),
                   utc_text(value["attested_at"], f"{what} attested_at"),
                   AnchorEvidence.parse(value["evidence"], f"{what} evidence"))

    def encode(self) -> dict[str, Any]:
        return {"size": self.size, "root": self.root.hex(), "tx_id": self.tx_id, "attested_at": self.attested_at,
                "evidence": self.evidence.encode()}


@dataclass(frozen=True)
class ListedRecord:
    leaf_index: int
    leaf_hash: bytes
    file: str

    @classmethod
    def parse(cls, value: Any, what: str) -> "ListedRecord":
        value = exact_object(value, what, {"leaf_index", "leaf_hash", "file"})
        leaf_index = count(value, "leaf_index", what)
        file = text(value, "file", what)
        if file != record_file_name(leaf_index):
            raise MalformedInput(f"{what} names file {file!r:.60}, leaf {leaf_index} lives in "
                                 f"{record_file_name(leaf_index)}")
        return cls(leaf_index, hex64(value["leaf_hash"], f"{what} leaf_hash"), file)

    def encode(self) -> dict[str, Any]:
        return {"leaf_index": self.leaf_index, "leaf_hash": self.leaf_hash.hex(), "file": self.file}


@dataclass(frozen=True)
class Beacon:
    """An anchored checkpoint whose root a draw used as its beacon, proven consistent with the extract's."""

    size: int
    root: bytes
    checkpoint: str
    evidence: AnchorEvidence
    consistency_proof: tuple[bytes, ...]

    @classmethod
    def parse(cls, value: Any, what: str) -> "Beacon":
        value = exact_object(value, what, {"size", "root", "checkpoint", "evidence", "consistency_proof"})
        return cls(count(value, "size", what), hex64(value["root"], f"{what} root"), text(value, "checkpoint", what),
                   AnchorEvidence.parse(value["evidence"], f"{what} evidence"),
                   hex64_list(value, "consistency_proof", what))

    def encode(self) -> dict[str, Any]:
        return {"size": self.size, "root": self.root.hex(), "checkpoint": self.checkpoint,
                "evidence": self.evidence.encode(), "consistency_proof": [h.hex() for h in self.consistency_proof]}


@dataclass(frozen=True)
class RegisteredSubmitter:
    submitter_id: str
    role: str
    public_key: str
    registered_at: str
    revoked_at: str | None

    @classmethod
    def parse(cls, value: Any, what: str) -> "RegisteredSubmitter":
        value = exact_object(value, what, {"submitter_id", "role", "public_key", "registered_at", "revoked_at"})
        revoked = value["revoked_at"]
        return cls(text(value, "submitter_id", what), text(value, "role", what), text(value, "public_key", what),
                   utc_text(value["registered_at"], f"{what} registered_at"),
                   None if revoked is None else utc_text(revoked, f"{what} revoked_at"))

    def encode(self) -> dict[str, Any]:
        return {"submitter_id": self.submitter_id, "role": self.role, "public_key": self.public_key,
                "registered_at": self.registered_at, "revoked_at": self.revoked_at}


@dataclass(frozen=True)
class MemberDigest:
    name: str
    sha256: bytes
    size: int

    @classmethod
    def parse(cls, value: Any, what: str) -> "MemberDigest":
        value = exact_object(value, what, {"name", "sha256", "size"})
        return cls(text(value, "name", what), hex64(value["sha256"], f"{what} sha256"), count(value, "size", what))

    def encode(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256.hex(), "size": self.size}


_MANIFEST_FIELDS = frozenset({"format", "project_id", "log_id", "origin", "created_at", "checkpoint", "anchor",
                              "head", "project_head", "records", "beacons", "submitters", "members"})


@dataclass(frozen=True)
class ExtractManifest:
    """What the notary signs for a project's extract: every other member is bound by its digest here."""

    project_id: str
    log_id: str
    origin: str
    created_at: str
    checkpoint: ManifestCheckpoint
    anchor: ManifestAnchor
    head: ManifestHead
    project_head: ProjectHeadProof
    records: tuple[ListedRecord, ...]
    beacons: tuple[Beacon, ...]
    submitters: tuple[RegisteredSubmitter, ...]
    members: tuple[MemberDigest, ...]

    def encode(self) -> bytes:
        return canonical_bytes({
            "format": EXTRACT_FORMAT, "project_id": self.project_id, "log_id": self.log_id, "origin": self.origin,
            "created_at": self.created_at, "checkpoint": self.checkpoint.encode(), "anchor": self.anchor.encode(),
            "head": self.head.encode(), "project_head": self.project_head.encode(),
            "records": [r.encode() for r in self.records],
            "beacons": [b.encode() for b in self.beacons],
            "submitters": [s.encode() for s in self.submitters], "members": [m.encode() for m in self.members],
        })

    @classmethod
    def parse(cls, value: Any) -> "ExtractManifest":
        what = "manifest"
        if isinstance(value, dict) and value.get("format") != EXTRACT_FORMAT:
            found = value.get("format")
            why = OLD_EXTRACT_FORMATS.get(found) if isinstance(found, str) else None
            raise ExtractError(
                f"extract format is {found!r:.40}; this verifier reads {EXTRACT_FORMAT} only"
                + (f" ({why} and is no longer accepted; ask the notary for a new extract)" if why else "")
            )
        value = exact_object(value, what, _MANIFEST_FIELDS)
        records = tuple(ListedRecord.parse(r, f"manifest record #{i}")
                        for i, r in enumerate(listed(value, "records", what)))
        members = tuple(MemberDigest.parse(m, f"manifest member #{i}")
                        for i, m in enumerate(listed(value, "members", what)))
        return cls(
            project_id=text(value, "project_id", what), log_id=text(value, "log_id", what),
            origin=text(value, "origin", what), created_at=utc_text(value["created_at"], "manifest created_at"),
            checkpoint=ManifestCheckpoint.parse(value["checkpoint"], "manifest checkpoint"),
            anchor=ManifestAnchor.parse(value["anchor"], "manifest anchor"),
            head=ManifestHead.parse(value["head"], "manifest head"),
            project_head=ProjectHeadProof.parse(value["project_head"], "manifest project_head"),
            records=records,
            beacons=tuple(Beacon.parse(b, f"manifest beacon #{i}")
                          for i, b in enumerate(listed(value, "beacons", what))),
            submitters=tuple(RegisteredSubmitter.parse(s, f"manifest submitter #{i}")
                             for i, s in enumerate(listed(value, "submitters", what))),
            members=members,
        )


def encode_signature(signature: bytes) -> bytes:
    return base64.b64encode(signature) + b"\n"


def parse_signature(data: bytes) -> bytes:
    """The one encoding of a 64-byte Ed25519 signature: padded base64 and one newline."""
    if not _SIGNATURE_FILE.fullmatch(data):
        raise MalformedInput("manifest.sig must be the base64 of a 64-byte signature followed by one newline")
    try:
        signature = base64.b64decode(data[:-1], validate=True)
    except binascii.Error as exc:
        raise MalformedInput(f"manifest.sig is not base64: {exc}") from exc
    if base64.b64encode(signature) + b"\n" != data:
        raise MalformedInput("manifest.sig is not in its canonical base64 form")
    return signature


_RECORD_FIELDS = frozenset({"leaf_index", "entry", "inclusion_proof", "disclosures"})


@dataclass(frozen=True)
class RecordFile:
    """One record of the extract: its log entry's bytes, its inclusion proof and any disclosures."""

    leaf_index: int
    entry_bytes: bytes
    inclusion_proof: tuple[bytes, ...]
    disclosures: tuple[Disclosure, ...]

    def encode(self) -> bytes:
        return canonical_bytes({"leaf_index": self.leaf_index, "entry": json.loads(self.entry_bytes),
                                "inclusion_proof": [h.hex() for h in self.inclusion_proof],
                                "disclosures": [d.encode() for d in self.disclosures]})

    @classmethod
    def parse(cls, value: Any, what: str) -> "RecordFile":
        value = exact_object(value, what, _RECORD_FIELDS)
        proof = hex64_list(value, "inclusion_proof", what)
        disclosures = tuple(Disclosure.parse(d, f"{what} disclosure #{i}")
                            for i, d in enumerate(listed(value, "disclosures", what)))
        fields = [d.field for d in disclosures]
        if len(fields) != len(set(fields)):
            raise MalformedInput(f"{what} discloses a field twice")
        if not isinstance(value["entry"], dict):
            raise MalformedInput(f"{what} entry must be a JSON object")
        return cls(count(value, "leaf_index", what), canonical_bytes(value["entry"]), proof, disclosures)


def is_record_file(name: str) -> bool:
    return _RECORD_FILE.fullmatch(name) is not None
