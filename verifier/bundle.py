"""Proof bundles: one record with everything that proves it, as the notary serves it (`/v1/proof/bundle/{leaf}`).

A bundle holds the log entry, its RFC 9162 inclusion proof to an anchored checkpoint, that signed checkpoint,
and the anchor (`verifier.manifest.ManifestAnchor`, its evidence tagged with the ledger's kind). One encode
and one strict parse; `check_bundle` checks it against roots the caller chose, as verify does an extract.
"""

import json
from dataclasses import dataclass
from typing import Any

from verifier.canonical import canonical_bytes
from verifier.entry import LogEntry, parse_entry
from verifier.errors import AnchorError, CheckpointError, MalformedInput
from verifier.extract import check_anchor
from verifier.manifest import ManifestAnchor
from verifier.merkle import leaf_hash, verify_inclusion
from verifier.note import Checkpoint, verify_checkpoint
from verifier.strict import count, exact_object, hex64_list, text
from verifier.trust import TrustRoots

_FIELDS = frozenset({"log_id", "leaf_index", "entry", "inclusion_proof", "checkpoint", "anchor"})


@dataclass(frozen=True)
class ProofBundle:
    log_id: str
    leaf_index: int
    entry_bytes: bytes
    inclusion_proof: tuple[bytes, ...]
    checkpoint: str
    anchor: ManifestAnchor

    def encode(self) -> dict[str, Any]:
        return {"log_id": self.log_id, "leaf_index": self.leaf_index, "entry": json.loads(self.entry_bytes),
                "inclusion_proof": [h.hex() for h in self.inclusion_proof], "checkpoint": self.checkpoint,
                "anchor": self.anchor.encode()}

    @classmethod
    def parse(cls, value: Any, what: str = "proof bundle") -> "ProofBundle":
        value = exact_object(value, what, _FIELDS)
        if not isinstance(value["entry"], dict):
            raise MalformedInput(f"{what} entry must be a JSON object")
        return cls(text(value, "log_id", what), count(value, "leaf_index", what), canonical_bytes(value["entry"]),
                   hex64_list(value, "inclusion_proof", what), text(value, "checkpoint", what),
                   ManifestAnchor.parse(value["anchor"], f"{what} anchor"))


@dataclass(frozen=True)
class CheckedBundle:
    entry: LogEntry
    checkpoint: Checkpoint
    anchor: str


def check_bundle(bundle: ProofBundle, trust: TrustRoots) -> CheckedBundle:
    """Raise a VerificationError unless the bundle's entry is in a checkpoint signed by the chosen notary of its
    log and anchored on a chosen ledger bound to that log. The submitter's signature is the caller's to check
    (it needs the submitter registry, which a bundle does not carry)."""
    notary = trust.notary(bundle.log_id)
    if notary is None:
        raise CheckpointError(f"no chosen notary key for log {bundle.log_id!r:.60}")
    checkpoint = verify_checkpoint(bundle.checkpoint, notary.note_key)
    if checkpoint.origin != notary.note_key.name:
        raise CheckpointError(f"checkpoint origin is {checkpoint.origin!r:.60}, log {bundle.log_id!r:.60} signs as "
                              f"{notary.note_key.name!r:.60}")
    if (bundle.anchor.size, bundle.anchor.root) != (checkpoint.size, checkpoint.root):
        raise AnchorError("the bundle's anchor names another size or root than its checkpoint")
    entry = parse_entry(bundle.entry_bytes)
    if entry.leaf_index != bundle.leaf_index:
        raise MalformedInput(f"entry says leaf {entry.leaf_index}, the bundle says {bundle.leaf_index}")
    verify_inclusion(leaf_hash(bundle.entry_bytes), bundle.leaf_index, checkpoint.size, list(bundle.inclusion_proof),
                     checkpoint.root)
    where = check_anchor(bundle.anchor.evidence, tuple(trust.ledgers), bundle.log_id, checkpoint.size,
                         checkpoint.root, bundle.checkpoint)
    return CheckedBundle(entry, checkpoint, where)
