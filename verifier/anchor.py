"""Offline checks of anchor evidence: that a ledger recorded a log's checkpoint (log id, size, root).

Embedded-ledger evidence is a block signed by the one organisation that runs it; the check proves that
organisation's ledger recorded the checkpoint, and says plainly that no consensus stands behind it.
"""

import base64
import binascii
import hashlib
import json
from typing import Any

from verifier.canonical import canonical_bytes
from verifier.errors import AnchorError, MalformedInput, SignatureError
from verifier.signatures import load_public_key, verify_signature


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


def verify_embedded_anchor(
    evidence: dict[str, Any], trust: dict[str, Any], log_id: str, size: int, root: bytes,
    first_cover: int | None = None,
) -> str:
    """Check an embedded-ledger block anchors (log_id, size, root); return a one-line summary.
    With `first_cover`, also that it is the first anchor of the log covering that leaf index."""
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
        result = json.loads(tx["result"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AnchorError(f"anchor block is malformed: {exc}") from exc
    if block.get("org") != trust.get("org"):
        raise AnchorError(f"anchor block is from {block.get('org')!r}, trusted ledger is {trust.get('org')!r}")
    if tx.get("function") != "anchor_checkpoint":
        raise AnchorError(f"anchor transaction calls {tx.get('function')!r}, not anchor_checkpoint")
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
    digest = hashlib.sha256(body).hexdigest()
    return (
        f"embedded ledger of {block['org']}, block {block['number']} ({digest[:12]}…), "
        f"tx {str(tx.get('tx_id'))[:12]}… — one organisation, no consensus"
    )
