""""Prove it": one leaf's receipt, its inclusion in the tree the notary anchored, and that anchor.

Built only from the notary's public answers (the anchor covering the leaf, the inclusion proof to it) and
checked here with `verifier`: the inclusion proof must lead from the leaf hash to the anchored root, and,
when the hub is configured with the published roots (`--trust`), the receipt must be signed by the trusted
notary key for exactly this record. The anchor's ledger evidence is checked offline by `bidtrace verify` on
the project's extract; this view names the anchor and says so.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.errors import Conflict, HubError
from hub.service import Hub
from verifier.errors import MalformedInput, VerificationError
from verifier.findings import Finding
from verifier.merkle import hex_hash, hex_hashes, verify_inclusion
from verifier.receipt import verify_receipt
from verifier.times import parse_time
from verifier.trust import TrustRoots, load_trust_file


@dataclass(frozen=True)
class AnchorView:
    size: int
    root: str
    ledger: str
    tx_id: str
    anchored_at: str


@dataclass(frozen=True)
class LeafProof:
    """What a person is shown for one leaf: the proof material and what was checked with it here."""

    leaf_index: int
    leaf_hash: str
    anchor: AnchorView
    inclusion_proof: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)


def trust_roots(trust: Path | None) -> TrustRoots | None:
    """The published roots the hub was configured with, or None; an unreadable file is the operator's to fix."""
    if trust is None:
        return None
    try:
        return load_trust_file(trust)
    except MalformedInput as exc:
        raise HubError(f"the hub's trust roots ({trust}) cannot be read: {exc}") from exc


def prove(hub: Hub, leaf_index: int, leaf_hash: str, receipt: dict[str, Any] | None = None,
          record: dict[str, Any] | None = None) -> LeafProof:
    """Fetch and check the proof of `leaf_index` (whose hash the hub's mirror holds). With `receipt` and
    `record`, also check the receipt against the trusted notary key."""
    anchors = hub.notary_get("/v1/anchors", after_size=leaf_index, limit=1)
    if not anchors:
        raise Conflict(f"leaf {leaf_index} is not anchored yet; the notary anchors within its maximum merge delay")
    a = anchors[0]
    anchor = AnchorView(int(a["size"]), str(a["root"]), str(a["ledger"]), str(a["tx_id"]),
                        _when(hub, str(a["anchored_at"])))
    proof = hub.notary_get("/v1/proof/inclusion", leaf_index=leaf_index, tree_size=anchor.size)["proof"]
    findings = [_inclusion(leaf_index, leaf_hash, anchor, proof)]
    if receipt is not None and record is not None:
        findings.append(_receipt(hub, receipt, record, leaf_index, leaf_hash))
    return LeafProof(leaf_index, leaf_hash, anchor, tuple(proof), tuple(findings))


def _when(hub: Hub, anchored_at: str) -> str:
    """The ledger's time (RFC 3339, UTC), shown as a time of the hub's zone."""
    try:
        return parse_time(anchored_at, "anchored_at").astimezone(hub.tz).isoformat(timespec="seconds")
    except MalformedInput:
        return anchored_at


def _inclusion(leaf_index: int, leaf_hash: str, anchor: AnchorView, proof: list[str]) -> Finding:
    try:
        verify_inclusion(hex_hash("leaf hash", leaf_hash), leaf_index, anchor.size,
                         hex_hashes("inclusion proof", proof), hex_hash("anchored root", anchor.root))
    except (VerificationError, MalformedInput) as exc:
        return Finding("inclusion", False, str(exc))
    return Finding("inclusion", True, f"leaf {leaf_index} is in the anchored tree of {anchor.size} leaves, "
                                      f"root {anchor.root[:16]}…")


def _receipt(hub: Hub, receipt: dict[str, Any], record: dict[str, Any], leaf_index: int, leaf_hash: str) -> Finding:
    roots = trust_roots(hub.config.trust)
    log_id = str(receipt.get("log_id"))
    notary = roots.notary(log_id) if roots is not None else None
    if notary is None:
        return Finding("receipt", False, f"no published root of log {log_id!r} is configured (hub serve --trust); "
                                         "the receipt's signature is not checked here")
    try:
        parsed = verify_receipt(receipt, notary.note_key, log_id)
    except (VerificationError, MalformedInput) as exc:
        return Finding("receipt", False, str(exc))
    if parsed.leaf_index != leaf_index or parsed.leaf_hash.hex() != leaf_hash:
        return Finding("receipt", False, f"the receipt is for leaf {parsed.leaf_index}, not {leaf_index}")
    if not parsed.covers(record):
        return Finding("receipt", False, "the receipt names another record than the one shown")
    return Finding("receipt", True, f"signed by {notary.note_key.name} ({notary.fingerprint}) at "
                                    f"{parsed.received_at}, for this record")
