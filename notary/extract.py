"""Proof bundles for one record and audit extracts for a whole project.

An extract is one zip in the format `verifier.manifest` defines: a manifest signed by the notary (the
project's records by leaf index and leaf hash, the anchored checkpoint they are proven against, its anchor
evidence, the submitter registry, and the SHA-256 and size of every other member), one file per record
with its entry and inclusion proof, the roots the notary claims, and a human-readable summary.
"""

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select

from anchors.ledger import Ledger
from notary import store
from notary.log import EvidenceLog
from notary.tree import batch_tree
from verifier.bundle import ProofBundle
from verifier.commitments import Disclosure
from verifier.entry import LogEntry, parse_entry
from verifier.extract import canonical_zip
from verifier.heads import ProjectHeadProof, heads_commitment, ordered
from verifier.manifest import (
    CLAIMED_ROOTS,
    MANIFEST,
    MANIFEST_CONTEXT,
    SIGNATURE,
    SUMMARY,
    AnchorEvidence,
    Beacon,
    ExtractManifest,
    ListedRecord,
    ManifestAnchor,
    ManifestCheckpoint,
    ManifestHead,
    MemberDigest,
    RecordFile,
    RegisteredSubmitter,
    encode_signature,
    record_file_name,
)
from verifier.merkle import leaf_hash
from verifier.note import parse_checkpoint, split_note
from verifier.times import now_utc
from verifier.trust import LedgerRoot, NotaryRoot, TrustRoots


class NotAnchored(LookupError):
    """The record (or project) has no anchored checkpoint covering it yet."""


@dataclass(frozen=True)
class StoredAnchor:
    size: int
    root: bytes
    ledger: str
    tx_id: str
    anchored_at: str
    checkpoint: str
    evidence: dict[str, Any]


def latest_anchor(evidence_log: EvidenceLog, covering: int = 0) -> StoredAnchor:
    """The newest stored anchor; NotAnchored if none covers leaf index `covering`."""
    with evidence_log.engine.connect() as conn:
        row = conn.execute(select(store.anchors).order_by(store.anchors.c.size.desc()).limit(1)).first()
    if row is None or row.size <= covering:
        raise NotAnchored(f"no anchored checkpoint covers leaf {covering} yet")
    return StoredAnchor(
        row.size, bytes(row.root), row.ledger, row.tx_id, row.anchored_at, row.checkpoint, json.loads(row.evidence)
    )


def _anchor_at(evidence_log: EvidenceLog, ledger: Ledger, size: int) -> StoredAnchor:
    """The anchor of exactly `size`: from the notary's table, or from the ledger if the sealer that made it has
    not stored it yet."""
    with evidence_log.engine.connect() as conn:
        row = conn.execute(select(store.anchors).where(store.anchors.c.size == size)).first()
    if row is not None:
        return StoredAnchor(row.size, bytes(row.root), row.ledger, row.tx_id, row.anchored_at, row.checkpoint,
                            json.loads(row.evidence))
    found = [a for a in ledger.anchors(evidence_log.log_id, from_size=size, limit=1) if a.size == size]
    if not found:
        raise NotAnchored(f"the ledger names size {size} as the log's head but holds no anchor of that size")
    anchor = found[0]
    return StoredAnchor(anchor.size, anchor.root, ledger.kind, anchor.tx_id, anchor.anchored_at, anchor.checkpoint,
                        ledger.transaction_evidence(anchor.tx_id))


def _attested_head(evidence_log: EvidenceLog, ledger: Ledger) -> tuple[ManifestHead, StoredAnchor]:
    """Have the ledger attest the log's newest anchored checkpoint now, and return that attestation with the
    anchor it names: the extract is proven against the head as of this point of the ledger."""
    head = ledger.attest_head(evidence_log.log_id)
    if head.size == 0:
        raise NotAnchored("the log has no anchored checkpoint yet")
    evidence = AnchorEvidence.parse(ledger.transaction_evidence(head.tx_id), "attested head evidence")
    return (ManifestHead(head.size, head.root, head.tx_id, head.attested_at, evidence),
            _anchor_at(evidence_log, ledger, head.size))


def _project_head(evidence_log: EvidenceLog, anchor: StoredAnchor, project_id: str) -> ProjectHeadProof:
    """The project's head at the anchored checkpoint, proven in the heads tree that checkpoint commits to."""
    heads = ordered(evidence_log.project_heads(anchor.size))
    index = next(i for i, h in enumerate(heads) if h.project_id == project_id)
    heads_root, paths = batch_tree([leaf_hash(h.leaf()) for h in heads])
    signed = heads_commitment(parse_checkpoint(split_note(anchor.checkpoint)[0]).extensions)
    if (signed.projects, signed.root) != (len(heads), heads_root):
        raise NotAnchored(f"the anchored checkpoint of size {anchor.size} commits to other project heads than the "
                          "log holds")
    return ProjectHeadProof(heads[index].records, heads[index].last_leaf, index, tuple(paths[index]))


def proof_bundle(evidence_log: EvidenceLog, leaf_index: int) -> ProofBundle:
    """One record with its inclusion proof to the newest anchored checkpoint, that checkpoint and its anchor."""
    entry = evidence_log.entry(leaf_index)
    if entry is None:
        raise LookupError(f"leaf {leaf_index} is not in the log (size {evidence_log.size})")
    anchor = latest_anchor(evidence_log, leaf_index)
    return ProofBundle(evidence_log.log_id, leaf_index, entry,
                       tuple(evidence_log.inclusion_proof(leaf_index, anchor.size)), anchor.checkpoint,
                       _manifest_anchor(anchor))


def published_roots(evidence_log: EvidenceLog, ledger: Ledger) -> TrustRoots:
    """The roots this notary and its ledger publish, the ledger bound to this notary's log: what a court pins,
    after comparing fingerprints."""
    ledger_root = LedgerRoot.of_ledger(ledger.trust_roots(), "ledger roots").bound_to([evidence_log.log_id])
    return TrustRoots((NotaryRoot(evidence_log.log_id, evidence_log.key.note_key),), (ledger_root,))


def _manifest_anchor(anchor: StoredAnchor) -> ManifestAnchor:
    evidence = AnchorEvidence.parse(anchor.evidence, "stored anchor evidence")
    return ManifestAnchor(evidence.ledger, anchor.size, anchor.root, anchor.tx_id, anchor.anchored_at, evidence)


def _summary(manifest: ExtractManifest, entries: list[LogEntry]) -> str:
    lines = [
        f"bidtrace audit extract — project {manifest.project_id}",
        f"log {manifest.log_id} ({manifest.origin}), created {manifest.created_at}",
        f"{len(entries)} records, proven against checkpoint of size {manifest.checkpoint.size}",
        f"anchored on the {manifest.anchor.ledger} ledger, tx {manifest.anchor.tx_id}",
        f"the ledger's newest anchor of the log at {manifest.head.attested_at} (attested in tx {manifest.head.tx_id})",
        "",
        "leaf     #    type                 occurred at                 venue          submitter",
    ]
    for e in entries:
        r = e.record
        lines.append(
            f"{e.leaf_index:<8} {e.project_seq:<4} {r['type']:<20} {r['occurred_at']:<27} "
            f"{r['venue_id']:<14} {e.submitter}"
        )
    lines += ["", "Check it offline with: bidtrace verify <this file> --trust <published roots>", ""]
    return "\n".join(lines)


def _beacons(evidence_log: EvidenceLog, rows: list[tuple[int, bytes]], final: StoredAnchor) -> list[Beacon]:
    """For each draw in the extract, the anchored checkpoint its beacon is the root of, proven consistent
    with the extract's own checkpoint, so a verifier can see the randomness came after the commitment."""
    wanted = set()
    for _, entry in rows:
        record = json.loads(entry)["record"]
        if record["type"] == "draw_result":
            wanted.add(bytes.fromhex(record["payload"]["beacon"]))
    if not wanted:
        return []
    with evidence_log.engine.connect() as conn:
        found = conn.execute(select(store.anchors).where(store.anchors.c.root.in_(wanted))).all()
    return [
        Beacon(row.size, bytes(row.root), row.checkpoint,
               AnchorEvidence.parse(json.loads(row.evidence), "stored beacon evidence"),
               tuple(evidence_log.consistency_proof(row.size, final.size)))
        for row in found
    ]


def _digest(name: str, data: bytes) -> MemberDigest:
    return MemberDigest(name, hashlib.sha256(data).digest(), len(data))


def build_extract(
    evidence_log: EvidenceLog, ledger: Ledger, project_id: str, disclose: bool = False
) -> bytes:
    """The zip bytes of a project's audit extract, proven against the log's newest anchored checkpoint as the
    ledger attests it now."""
    head, anchor = _attested_head(evidence_log, ledger)
    rows: list[tuple[int, bytes]] = []
    after = -1
    while True:
        page = evidence_log.entries(after=after, limit=1000, project_id=project_id)
        rows += [(seq, entry) for seq, entry in page if seq < anchor.size]
        if len(page) < 1000 or page[-1][0] >= anchor.size:
            break
        after = page[-1][0]
    if not rows:
        raise NotAnchored(f"project {project_id} has no anchored records yet")
    records: list[tuple[str, bytes]] = []
    for seq, entry in rows:
        disclosures = tuple(Disclosure(d["field"], bytes.fromhex(d["salt"]), d["value"])
                            for d in (evidence_log.disclosures(seq) if disclose else []))
        record_file = RecordFile(seq, entry, tuple(evidence_log.inclusion_proof(seq, anchor.size)), disclosures)
        records.append((record_file_name(seq), record_file.encode()))
    claimed = published_roots(evidence_log, ledger).encode()
    manifest = ExtractManifest(
        project_id=project_id,
        log_id=evidence_log.log_id,
        origin=evidence_log.key.name,
        created_at=now_utc(),
        checkpoint=ManifestCheckpoint(anchor.size, anchor.root, anchor.checkpoint),
        anchor=_manifest_anchor(anchor),
        head=head,
        project_head=_project_head(evidence_log, anchor, project_id),
        records=tuple(ListedRecord(seq, leaf_hash(entry), record_file_name(seq)) for seq, entry in rows),
        beacons=tuple(_beacons(evidence_log, rows, anchor)),
        submitters=tuple(RegisteredSubmitter(s.submitter_id, s.role, s.public_key, s.registered_at, s.revoked_at)
                         for s in evidence_log.submitters()),
        members=(),
    )
    summary = _summary(manifest, [parse_entry(entry) for _, entry in rows]).encode()
    members = [(SUMMARY, summary), (CLAIMED_ROOTS, claimed), *records]
    manifest = replace(manifest, members=tuple(_digest(n, d) for n, d in members))
    manifest_bytes = manifest.encode()
    signature = evidence_log.key.sign(MANIFEST_CONTEXT + manifest_bytes)
    return canonical_zip([(MANIFEST, manifest_bytes), (SIGNATURE, encode_signature(signature)), *members])
