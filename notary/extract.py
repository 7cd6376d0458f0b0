"""Proof bundles for one record and audit extracts for a whole project.

An extract is one zip: a manifest signed by the notary (the project's records by leaf index and leaf
hash, the anchored checkpoint they are proven against, its anchor evidence, the submitter registry),
one file per record with its entry and inclusion proof, the trust roots, and a human-readable summary.
"""

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from anchors.ledger import Ledger
from notary import store
from notary.log import EvidenceLog, now_rfc3339
from verifier.canonical import canonical_bytes
from verifier.extract import canonical_zip
from verifier.merkle import leaf_hash

EXTRACT_FORMAT = "bidtrace-extract/1"
MANIFEST_CONTEXT = b"bidtrace/extract-manifest/v1\n"


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


def _anchor_json(anchor: StoredAnchor) -> dict[str, Any]:
    return {
        "ledger": anchor.ledger,
        "size": anchor.size,
        "root": anchor.root.hex(),
        "tx_id": anchor.tx_id,
        "anchored_at": anchor.anchored_at,
        "evidence": anchor.evidence,
    }


def proof_bundle(evidence_log: EvidenceLog, leaf_index: int) -> dict[str, Any]:
    entry = evidence_log.entry(leaf_index)
    if entry is None:
        raise LookupError(f"leaf {leaf_index} is not in the log (size {evidence_log.size})")
    anchor = latest_anchor(evidence_log, leaf_index)
    return {
        "log_id": evidence_log.log_id,
        "leaf_index": leaf_index,
        "entry": json.loads(entry),
        "inclusion_proof": [h.hex() for h in evidence_log.inclusion_proof(leaf_index, anchor.size)],
        "checkpoint": anchor.checkpoint,
        "anchor": _anchor_json(anchor),
    }


def _summary(manifest: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    lines = [
        f"bidtrace audit extract — project {manifest['project_id']}",
        f"log {manifest['log_id']} ({manifest['origin']}), created {manifest['created_at']}",
        f"{len(entries)} records, proven against checkpoint of size {manifest['checkpoint']['size']}",
        f"anchored on the {manifest['anchor']['ledger']} ledger, tx {manifest['anchor']['tx_id']}",
        "",
        "leaf     seq  type                 occurred at                 venue          submitter",
    ]
    for e in entries:
        r = e["record"]
        lines.append(
            f"{e['seq']:<8} {e['project_seq']:<4} {r['type']:<20} {r['occurred_at']:<27} "
            f"{r['venue_id']:<14} {e['submitter']}"
        )
    lines += ["", "Check it offline with: bidtrace verify <this file> [--trust published-roots.json]", ""]
    return "\n".join(lines)


def _beacons(evidence_log: EvidenceLog, rows: list[tuple[int, bytes]], final: StoredAnchor) -> list[dict[str, Any]]:
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
        {
            "size": row.size, "root": bytes(row.root).hex(), "checkpoint": row.checkpoint,
            "evidence": json.loads(row.evidence),
            "consistency_proof": [h.hex() for h in evidence_log.consistency_proof(row.size, final.size)],
        }
        for row in found
    ]


def build_extract(
    evidence_log: EvidenceLog, ledger: Ledger, project_id: str, disclose: bool = False
) -> bytes:
    """The zip bytes of a project's audit extract, proven against the newest anchored checkpoint."""
    anchor = latest_anchor(evidence_log)
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
    manifest = {
        "format": EXTRACT_FORMAT,
        "project_id": project_id,
        "log_id": evidence_log.log_id,
        "origin": evidence_log.key.name,
        "created_at": now_rfc3339(),
        "checkpoint": {"size": anchor.size, "root": anchor.root.hex(), "note": anchor.checkpoint},
        "anchor": _anchor_json(anchor),
        "records": [
            {"leaf_index": seq, "leaf_hash": leaf_hash(entry).hex(), "file": f"records/{seq:012d}.json"}
            for seq, entry in rows
        ],
        "beacons": _beacons(evidence_log, rows, anchor),
        "submitters": [
            {"submitter_id": s.submitter_id, "role": s.role, "public_key": s.public_key,
             "registered_at": s.registered_at, "revoked_at": s.revoked_at}
            for s in evidence_log.submitters()
        ],
    }
    summary = _summary(manifest, [json.loads(entry) for _, entry in rows])
    manifest["summary_sha256"] = hashlib.sha256(summary.encode()).hexdigest()
    manifest_bytes = canonical_bytes(manifest)
    signature = evidence_log.key.sign(MANIFEST_CONTEXT + manifest_bytes)
    trust = {
        "notary": {"log_id": evidence_log.log_id, "note_key": evidence_log.key.vkey},
        "ledger": ledger.trust_roots(),
    }
    members = [
        ("manifest.json", manifest_bytes),
        ("manifest.sig", base64.b64encode(signature) + b"\n"),
        ("trust.json", json.dumps(trust, indent=2, sort_keys=True).encode()),
        ("SUMMARY.txt", summary.encode()),
    ]
    for seq, entry in rows:
        record_file = {
            "leaf_index": seq,
            "entry": json.loads(entry),
            "inclusion_proof": [h.hex() for h in evidence_log.inclusion_proof(seq, anchor.size)],
            "disclosures": evidence_log.disclosures(seq) if disclose else [],
        }
        members.append((f"records/{seq:012d}.json", json.dumps(record_file, indent=1, ensure_ascii=False).encode()))
    return canonical_zip(members)
