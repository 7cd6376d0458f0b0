"""Offline checks of anchor evidence: that a ledger recorded a log's checkpoint (log id, size, root), and
what a ledger attested as a log's head (its newest anchored checkpoint) at a position of the ledger.

Embedded-ledger evidence is a block signed by the one organisation that runs it; the check proves that
organisation's ledger recorded the transaction, and says plainly that no consensus stands behind it.
"""

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from verifier.canonical import canonical_bytes
from verifier.errors import AnchorError, MalformedInput, SignatureError
from verifier.signatures import load_public_key, verify_signature
from verifier.strict import count, exact_object, hex64, text
from verifier.times import utc_text

ANCHOR_FUNCTION = "anchor_checkpoint"
HEAD_FUNCTION = "attest_log_head"


def head_key(log_id: str) -> str:
    """Where the contract writes a log's attested head: one key per log, so each attestation is a write."""
    return f"head/{log_id}"


@dataclass(frozen=True)
class LogHead:
    """What a ledger attests, in a transaction of its own, about a log at that point of the ledger: its newest
    anchored checkpoint (`size`, `root`; size 0 before any anchor) as of `attested_at`."""

    log_id: str
    size: int
    root: bytes
    tx_id: str
    attested_at: str

    def encode(self) -> dict[str, Any]:
        return {"log_id": self.log_id, "size": self.size, "root": self.root.hex(), "tx_id": self.tx_id,
                "attested_at": self.attested_at}

    @classmethod
    def parse(cls, value: Any, what: str) -> "LogHead":
        try:
            value = exact_object(value, what, {"log_id", "size", "root", "tx_id", "attested_at"})
            return cls(text(value, "log_id", what), count(value, "size", what), hex64(value["root"], f"{what} root"),
                       text(value, "tx_id", what), utc_text(value["attested_at"], f"{what} attested_at"))
        except MalformedInput as exc:
            raise AnchorError(str(exc)) from exc


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise AnchorError(f"{what} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise AnchorError(f"{what} is not base64") from exc


def check_first_cover(anchor: dict[str, Any], leaf: int | None) -> None:
    """With `leaf`, the anchor must be the first of its log to cover that leaf: the anchor before it (whose
    size the contract records as `previous_size`) must not. Used for draw beacons, so a drawer cannot wait
    for a later anchor whose root it likes better."""
    if leaf is None:
        return
    previous = anchor.get("previous_size")
    if not isinstance(previous, int) or isinstance(previous, bool):
        raise AnchorError("anchor record has no previous_size")
    if previous > leaf:
        raise AnchorError(
            f"anchor of size {anchor.get('size')} is not the first to cover leaf {leaf}: "
            f"the anchor before it already had size {previous}"
        )


def _embedded_transaction(evidence: dict[str, Any], trust: dict[str, Any], function: str,
                          ) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """The block, its transaction and the transaction's result, once the block is shown signed by the trusted
    ledger key and the transaction shown to call `function`."""
    body = _b64(evidence.get("block"), "anchor block")
    signature = _b64(evidence.get("signature"), "anchor block signature")
    try:
        key = load_public_key(str(trust.get("public_key", "")))
        verify_signature(key, signature, body, f"embedded ledger {trust.get('org')}")
    except (SignatureError, MalformedInput) as exc:
        raise AnchorError(f"anchor block is not signed by the trusted ledger key: {exc}") from exc
    try:
        block = json.loads(body)
        if canonical_bytes(block) != body:
            raise AnchorError("anchor block is not in canonical form")
        tx = block["transaction"]
        if not isinstance(block, dict) or not isinstance(tx, dict):
            raise TypeError("block and its transaction must be JSON objects")
        result = json.loads(tx["result"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AnchorError(f"anchor block is malformed: {exc}") from exc
    if block.get("org") != trust.get("org"):
        raise AnchorError(f"anchor block is from {block.get('org')!r}, trusted ledger is {trust.get('org')!r}")
    if tx.get("function") != function:
        raise AnchorError(f"ledger transaction calls {tx.get('function')!r}, not {function}")
    if not isinstance(block.get("number"), int):
        raise AnchorError("anchor block has no block number")
    return block, tx, result


def _embedded_summary(block: dict[str, Any], tx: dict[str, Any]) -> str:
    digest = hashlib.sha256(canonical_bytes(block)).hexdigest()
    return (
        f"embedded ledger of {block['org']}, block {block['number']} ({digest[:12]}…), "
        f"tx {str(tx.get('tx_id'))[:12]}… — one organisation, no consensus"
    )


def check_anchored_note(anchor: dict[str, Any], note: str | None, what: str) -> None:
    """With `note`, the anchor must record exactly that signed checkpoint: its size and root alone would let a
    holder of the notary key sign other extension lines (the project heads) over the same tree."""
    if note is not None and anchor.get("checkpoint") != note:
        raise AnchorError(f"{what} records another signed checkpoint than the one presented (same size and root, "
                          "other text)")


def verify_embedded_anchor(
    evidence: dict[str, Any], trust: dict[str, Any], log_id: str, size: int, root: bytes,
    first_cover: int | None = None, note: str | None = None,
) -> str:
    """Check an embedded-ledger block anchors (log_id, size, root); return a one-line summary.
    With `first_cover`, also that it is the first anchor of the log covering that leaf index; with `note`, that
    the anchor records exactly that signed checkpoint."""
    block, tx, result = _embedded_transaction(evidence, trust, ANCHOR_FUNCTION)
    if not isinstance(result, dict):
        raise AnchorError("anchor transaction result is not an object")
    if result.get("log_id") != log_id:
        raise AnchorError(f"anchor is for log {result.get('log_id')!r}, expected {log_id!r}")
    if result.get("size") != size or result.get("root") != root.hex():
        raise AnchorError(
            f"anchor records size {result.get('size')} root {str(result.get('root'))[:16]}…, "
            f"expected size {size} root {root.hex()[:16]}…"
        )
    check_first_cover(result, first_cover)
    check_anchored_note(result, note, "anchor")
    return _embedded_summary(block, tx)


def verify_embedded_head(evidence: dict[str, Any], trust: dict[str, Any], log_id: str) -> tuple[LogHead, int, str]:
    """Check an embedded-ledger block attests the head of `log_id`; return the head, the block number and a
    one-line summary."""
    block, tx, result = _embedded_transaction(evidence, trust, HEAD_FUNCTION)
    head = LogHead.parse(result, "attested head")
    if head.log_id != log_id:
        raise AnchorError(f"ledger attests the head of log {head.log_id!r:.60}, expected {log_id!r:.60}")
    if head.tx_id != tx.get("tx_id"):
        raise AnchorError(f"attested head names transaction {head.tx_id:.16}…, it is in {tx.get('tx_id')!s:.16}…")
    return head, block["number"], _embedded_summary(block, tx)
