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

from sqlalchemy import Row, select

from anchors.ledger import Ledger
from notary import store
from notary.log import EvidenceLog
from notary.tree import batch_tree
from verifier.anchor import AnchorEvidence
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
from verifier.trust import NotaryRoot, TrustRoots


class NotAnchored(LookupError):
    """The record (or project) has no anchored checkpoint covering it yet."""


@dataclass(frozen=True)
class AnchoredCheckpoint:
    """A signed checkpoint of the log and its anchor on the ledger, as an extract or a proof bundle carries
    them."""

    checkpoint: ManifestCheckpoint
    anchor: ManifestAnchor


def _stored(row: Row[Any]) -> AnchoredCheckpoint:
    """An anchor as the sealer stored it; its evidence was parsed strictly when it came from the ledger and is
    parsed so again."""
    evidence = AnchorEvidence.parse(json.loads(row.evidence), f"stored evidence of the anchor of size {row.size}")
    return AnchoredCheckpoint(ManifestCheckpoint(row.size, bytes(row.root), row.checkpoint),
                              ManifestAnchor(row.size, bytes(row.root), row.tx_id, row.anchored_at, evidence))


def latest_anchored_checkpoint(evidence_log: EvidenceLog, covering: int = 0) -> AnchoredCheckpoint:
    """The newest stored anchor; NotAnchored if none covers leaf index `covering`."""
    with evidence_log.engine.connect() as conn:
        row = conn.execute(select(store.anchors).order_by(store.anchors.c.size.desc()).limit(1)).first()
    if row is None or row.size <= covering:
        raise NotAnchored(f"no anchored checkpoint covers leaf {covering} yet")
    return _stored(row)


def _anchor_at(evidence_log: EvidenceLog, ledger: Ledger, size: int) -> AnchoredCheckpoint:
    """The anchor of exactly `size`: from the notary's table, or from the ledger if the sealer that made it has
    not stored it yet."""
    with evidence_log.engine.connect() as conn:
        row = conn.execute(select(store.anchors).where(store.anchors.c.size == size)).first()
    if row is not None:
        return _stored(row)
    found = [a for a in ledger.anchors(evidence_log.log_id, from_size=size, limit=1) if a.size == size]
    if not found:
        raise NotAnchored(f"the ledger names size {size} as the log's head but holds no anchor of that size")
    anchor = found[0]
    evidence = ledger.transaction_evidence(anchor.tx_id)
    return AnchoredCheckpoint(ManifestCheckpoint(anchor.size, anchor.root, anchor.checkpoint),
                              ManifestAnchor(anchor.size, anchor.root, anchor.tx_id, anchor.anchored_at, evidence))


def _attested_head(evidence_log: EvidenceLog, ledger: Ledger) -> tuple[ManifestHead, AnchoredCheckpoint]:
    """Have the ledger attest the log's newest anchored checkpoint now, and return that attestation with the
    anchor it names: the extract is proven against the head as of this point of the ledger."""
    head = ledger.attest_head(evidence_log.log_id)
    if head.size == 0:
        raise NotAnchored("the log has no anchored checkpoint yet")
    evidence = ledger.transaction_evidence(head.tx_id)
    return (ManifestHead(head.size, head.root, head.tx_id, head.attested_at, evidence),
            _anchor_at(evidence_log, ledger, head.size))


def _project_head(evidence_log: EvidenceLog, checkpoint: ManifestCheckpoint, project_id: str) -> ProjectHeadProof:
    """The project's head at the anchored checkpoint, proven in the heads tree that checkpoint commits to."""
    heads = ordered(evidence_log.project_heads(checkpoint.size))
    index = next(i for i, h in enumerate(heads) if h.project_id == project_id)
    heads_root, paths = batch_tree([leaf_hash(h.leaf()) for h in heads])
    signed = heads_commitment(parse_checkpoint(split_note(checkpoint.note)[0]).extensions)
    if (signed.projects, signed.root) != (len(heads), heads_root):
        raise NotAnchored(f"the anchored checkpoint of size {checkpoint.size} commits to other project heads than the "
                          "log holds")
    return ProjectHeadProof(heads[index].records, heads[index].last_leaf, index, tuple(paths[index]))


def proof_bundle(evidence_log: EvidenceLog, leaf_index: int) -> ProofBundle:
    """One record with its inclusion proof to the newest anchored checkpoint, that checkpoint and its anchor."""
    entry = evidence_log.entry(leaf_index)
    if entry is None:
        raise LookupError(f"leaf {leaf_index} is not in the log (size {evidence_log.size})")
    anchored = latest_anchored_checkpoint(evidence_log, leaf_index)
    return ProofBundle(evidence_log.log_id, leaf_index, entry,
                       tuple(evidence_log.inclusion_proof(leaf_index, anchored.checkpoint.size)),
                       anchored.checkpoint.note, anchored.anchor)


def published_roots(evidence_log: EvidenceLog, ledger: Ledger) -> TrustRoots:
    """The roots this notary and its ledger publish, the ledger bound to this notary's log: what a court pins,
    after comparing fingerprints."""
    ledger_root = ledger.trust_roots().bound_to([evidence_log.log_id])
    return TrustRoots((NotaryRoot(evidence_log.log_id, evidence_log.key.note_key),), (ledger_root,))


def _summary(manifest: ExtractManifest, entries: list[LogEntry]) -> str:
    lines = [
        f"bidtrace audit extract — project {manifest.project_id}",
        f"log {manifest.log_id} ({manifest.origin}), created {manifest.created_at}",
        f"{len(entries)} records, proven against checkpoint of size {manifest.checkpoint.size}",
        f"anchored on the {manifest.anchor.ledger} ledger, tx {manifest.anchor.tx_id}",
        f"the ledger's newest anchor of the log at {manifest.head.attested_at} (attested in tx {manifest.head.tx_id})",
        "",
        "leaf_index  project_seq  type                 occurred at                 venue          submitter",
    ]
    for e in entries:
        r = e.record
        lines.append(
            f"{e.leaf_index:<11} {e.project_seq:<12} {r['type']:<20} {r['occurred_at']:<27} {r['venue_id']:<14} "
            f"{e.submitter}"
        )
    lines += ["", "Check it offline with: bidtrace verify <this file> --trust <published roots>", ""]
    return "\n".join(lines)


def _beacons(evidence_log: EvidenceLog, rows: list[tuple[int, bytes]], final: ManifestCheckpoint) -> list[Beacon]:
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
        Beacon(row.size, bytes(row.root), row.checkpoint, _stored(row).anchor.evidence,
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
    head, anchored = _attested_head(evidence_log, ledger)
    checkpoint = anchored.checkpoint
    rows: list[tuple[int, bytes]] = []
    after = -1
    while True:
        page = evidence_log.entries(after=after, limit=1000, project_id=project_id)
        rows += [(leaf_index, entry) for leaf_index, entry in page if leaf_index < checkpoint.size]
        if len(page) < 1000 or page[-1][0] >= checkpoint.size:
            break
        after = page[-1][0]
    if not rows:
        raise NotAnchored(f"project {project_id} has no anchored records yet")
    records: list[tuple[str, bytes]] = []
    for leaf_index, entry in rows:
        disclosures = tuple(Disclosure(d["field"], bytes.fromhex(d["salt"]), d["value"])
                            for d in (evidence_log.disclosures(leaf_index) if disclose else []))
        proof = tuple(evidence_log.inclusion_proof(leaf_index, checkpoint.size))
        records.append((record_file_name(leaf_index), RecordFile(leaf_index, entry, proof, disclosures).encode()))
    claimed = published_roots(evidence_log, ledger).encode()
    manifest = ExtractManifest(
        project_id=project_id,
        log_id=evidence_log.log_id,
        origin=evidence_log.key.name,
        created_at=now_utc(),
        checkpoint=checkpoint,
        anchor=anchored.anchor,
        head=head,
        project_head=_project_head(evidence_log, checkpoint, project_id),
        records=tuple(ListedRecord(leaf_index, leaf_hash(entry), record_file_name(leaf_index))
                      for leaf_index, entry in rows),
        beacons=tuple(_beacons(evidence_log, rows, checkpoint)),
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
