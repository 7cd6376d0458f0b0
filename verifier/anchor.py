"""Offline checks of anchor evidence: that a ledger recorded a log's checkpoint (log id, size, root), and
what a ledger attested as a log's head (its newest anchored checkpoint) at a position of the ledger.

Embedded-ledger evidence is a block signed by the one organisation that runs it; the check proves that
organisation's ledger recorded the transaction, and says plainly that no consensus stands behind it.
"""

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from verifier.errors import AnchorError, MalformedInput, SignatureError
from verifier.signatures import load_public_key, verify_signature
from verifier.strict import count, exact_object, hex64, listed, parse_canonical, text
from verifier.times import utc_text
from verifier.trust import ledger_tag

ANCHOR_FUNCTION = "anchor_checkpoint"
HEAD_FUNCTION = "attest_log_head"
T = TypeVar("T")


def head_key(log_id: str) -> str:
    """Where the contract writes a log's attested head: one key per log, so each attestation is a write."""
    return f"head/{log_id}"


def anchor_key(log_id: str, size: int) -> str:
    """Where the contract writes the anchor of a log's checkpoint of `size`; keys sort by size."""
    return f"anchor/{log_id}/{size:020d}"


def _parsed(parse: Callable[[], T]) -> T:
    """A ledger value that does not parse is anchor evidence that does not hold."""
    try:
        return parse()
    except MalformedInput as exc:
        raise AnchorError(str(exc)) from exc


@dataclass(frozen=True)
class RegisteredLog:
    """A log as the ledger holds it: the identity that registered it (MSP id and the SHA-256 of its
    certificate), the notary's checkpoint key, and the newest anchored checkpoint (`size` 0 and the empty
    tree's root before any anchor). The contract's answer to `register_log` and `get_log`."""

    log_id: str
    origin: str
    note_key: str
    owner_msp: str
    owner_id: str
    registered_at: str
    size: int
    root: bytes

    def encode(self) -> dict[str, Any]:
        return {"log_id": self.log_id, "origin": self.origin, "note_key": self.note_key,
                "owner_msp": self.owner_msp, "owner_id": self.owner_id, "registered_at": self.registered_at,
                "size": self.size, "root": self.root.hex()}

    @classmethod
    def parse(cls, value: Any, what: str) -> "RegisteredLog":
        def parse() -> RegisteredLog:
            fields = exact_object(value, what, {"log_id", "origin", "note_key", "owner_msp", "owner_id",
                                                "registered_at", "size", "root"})
            return cls(text(fields, "log_id", what), text(fields, "origin", what), text(fields, "note_key", what),
                       text(fields, "owner_msp", what), hex64(fields["owner_id"], f"{what} owner_id").hex(),
                       utc_text(fields["registered_at"], f"{what} registered_at"), count(fields, "size", what),
                       hex64(fields["root"], f"{what} root"))

        return _parsed(parse)


@dataclass(frozen=True)
class Anchor:
    """A checkpoint as the ledger recorded it: the contract's answer to `anchor_checkpoint` and what it writes
    under `anchor_key`. `previous_size` is the size anchored before it (0 for the first)."""

    log_id: str
    size: int
    root: bytes
    checkpoint: str
    previous_size: int
    tx_id: str
    anchored_at: str

    def encode(self) -> dict[str, Any]:
        return {"log_id": self.log_id, "size": self.size, "root": self.root.hex(), "checkpoint": self.checkpoint,
                "previous_size": self.previous_size, "tx_id": self.tx_id, "anchored_at": self.anchored_at}

    @classmethod
    def parse(cls, value: Any, what: str) -> "Anchor":
        def parse() -> Anchor:
            fields = exact_object(value, what, {"log_id", "size", "root", "checkpoint", "previous_size", "tx_id",
                                                "anchored_at"})
            anchor = cls(text(fields, "log_id", what), count(fields, "size", what),
                         hex64(fields["root"], f"{what} root"), text(fields, "checkpoint", what),
                         count(fields, "previous_size", what), text(fields, "tx_id", what),
                         utc_text(fields["anchored_at"], f"{what} anchored_at"))
            if anchor.previous_size > anchor.size:
                raise MalformedInput(f"{what} previous_size {anchor.previous_size} exceeds its size {anchor.size}")
            return anchor

        return _parsed(parse)


@dataclass(frozen=True)
class AnchorEvidence:
    """Evidence that a ledger recorded a transaction (an anchor, an attested head), tagged `ledger` with the
    ledger's kind; `evidence` is checked by that kind's check against the user's roots for it.

    Embedded: `{"ledger": "embedded", "block", "signature"}`, the canonical block and the organisation's
    ECDSA signature over it, both base64. Fabric: `{"ledger": "fabric", "channel", "chaincode", "tx_id",
    "block_number", "block", "config_blocks"}`, the serialized block holding the transaction and the channel's
    configuration blocks from the genesis block to the one in force at it, base64 (see `verifier.fabric`)."""

    ledger: str
    evidence: dict[str, Any]

    @classmethod
    def parse(cls, value: Any, what: str) -> "AnchorEvidence":
        kind = ledger_tag(value, what)
        if kind == "embedded":
            fields = exact_object(value, what, {"ledger", "block", "signature"})
            _base64(fields["block"], f"{what} block")
            _base64(fields["signature"], f"{what} signature")
        else:
            fields = exact_object(value, what, {"ledger", "channel", "chaincode", "tx_id", "block_number", "block",
                                                "config_blocks"})
            for name in ("channel", "chaincode", "tx_id"):
                text(fields, name, what)
            count(fields, "block_number", what)
            _base64(fields["block"], f"{what} block")
            for i, block in enumerate(listed(fields, "config_blocks", what)):
                _base64(block, f"{what} config_blocks[{i}]")
        return cls(kind, fields)

    def encode(self) -> dict[str, Any]:
        return self.evidence


def _base64(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise MalformedInput(f"{what} must be non-empty base64 text, got {type(value).__name__}")
    try:
        data = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise MalformedInput(f"{what} is not base64: {exc}") from exc
    if base64.b64encode(data).decode() != value:
        raise MalformedInput(f"{what} is not in canonical base64 (padding bits or padding differ)")
    return data


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
        def parse() -> LogHead:
            fields = exact_object(value, what, {"log_id", "size", "root", "tx_id", "attested_at"})
            return cls(text(fields, "log_id", what), count(fields, "size", what), hex64(fields["root"], f"{what} root"),
                       text(fields, "tx_id", what), utc_text(fields["attested_at"], f"{what} attested_at"))

        return _parsed(parse)


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise AnchorError(f"{what} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise AnchorError(f"{what} is not base64") from exc


def check_first_cover(anchor: Anchor, leaf_index: int | None) -> None:
    """With `leaf_index`, the anchor must be the first of its log to cover that leaf: the anchor before it (whose
    size the contract records as `previous_size`) must not. Used for draw beacons, so a drawer cannot wait
    for a later anchor whose root it likes better."""
    if leaf_index is not None and anchor.previous_size > leaf_index:
        raise AnchorError(
            f"anchor of size {anchor.size} is not the first to cover leaf {leaf_index}: "
            f"the anchor before it already had size {anchor.previous_size}"
        )


def check_anchors(anchor: Anchor, what: str, log_id: str, size: int, root: bytes) -> None:
    """The anchor must record exactly (log_id, size, root)."""
    if anchor.log_id != log_id:
        raise AnchorError(f"{what} is for log {anchor.log_id!r:.60}, expected {log_id!r:.60}")
    if (anchor.size, anchor.root) != (size, root):
        raise AnchorError(f"{what} records size {anchor.size} root {anchor.root.hex()[:16]}…, "
                          f"expected size {size} root {root.hex()[:16]}…")


@dataclass(frozen=True)
class LedgerTransaction:
    """One contract call as an embedded block records it: who called which function with which arguments, the
    contract's answer (`result`, its RFC 8785 text), the SHA-256 of each value it wrote, and its events."""

    tx_id: str
    creator_msp: str
    creator_id: str  # SHA-256 (hex) of the caller's identity bytes
    function: str
    args: tuple[str, ...]
    result: str
    writes: tuple[tuple[str, str], ...]  # (key, SHA-256 hex of the value), by key
    events: tuple[tuple[str, str], ...]  # (name, payload)

    def encode(self) -> dict[str, Any]:
        return {"tx_id": self.tx_id, "creator_msp": self.creator_msp, "creator_id": self.creator_id,
                "function": self.function, "args": list(self.args), "result": self.result,
                "writes": dict(self.writes), "events": [{"name": n, "payload": p} for n, p in self.events]}

    @classmethod
    def parse(cls, value: Any, what: str) -> "LedgerTransaction":
        fields = exact_object(value, what, {"tx_id", "creator_msp", "creator_id", "function", "args", "result",
                                            "writes", "events"})
        args = tuple(text(a, f"args[{i}]", what, empty=True) for i, a in enumerate(listed(fields, "args", what)))
        writes = fields["writes"]
        if not isinstance(writes, dict):
            raise MalformedInput(f"{what} writes must map keys to SHA-256 values, got {type(writes).__name__}")
        events = []
        for i, event in enumerate(listed(fields, "events", what)):
            event = exact_object(event, f"{what} events[{i}]", {"name", "payload"})
            events.append((text(event, "name", f"{what} events[{i}]"),
                           text(event, "payload", f"{what} events[{i}]", empty=True)))
        return cls(text(fields, "tx_id", what), text(fields, "creator_msp", what),
                   hex64(fields["creator_id"], f"{what} creator_id").hex(), text(fields, "function", what), args,
                   text(fields, "result", what, empty=True),
                   tuple((k, hex64(v, f"{what} writes[{k!r:.60}]").hex()) for k, v in sorted(writes.items())),
                   tuple(events))


@dataclass(frozen=True)
class EmbeddedBlock:
    """A block of the embedded ledger: one transaction, hash-linked to the block before it (`previous_hash`,
    64 zeros for the first) and signed, over its RFC 8785 bytes, by the one organisation that runs it."""

    org: str
    number: int
    previous_hash: bytes
    timestamp: str
    transaction: LedgerTransaction

    def encode(self) -> dict[str, Any]:
        return {"ledger": "embedded", "org": self.org, "number": self.number,
                "previous_hash": self.previous_hash.hex(), "timestamp": self.timestamp,
                "transaction": self.transaction.encode()}

    @classmethod
    def parse(cls, value: Any, what: str) -> "EmbeddedBlock":
        fields = exact_object(value, what, {"ledger", "org", "number", "previous_hash", "timestamp", "transaction"})
        if fields["ledger"] != "embedded":
            raise MalformedInput(f"{what} must be tagged \"ledger\": \"embedded\", got {fields['ledger']!r:.40}")
        return cls(text(fields, "org", what), count(fields, "number", what),
                   hex64(fields["previous_hash"], f"{what} previous_hash"),
                   utc_text(fields["timestamp"], f"{what} timestamp"),
                   LedgerTransaction.parse(fields["transaction"], f"{what} transaction"))


def _embedded_transaction(evidence: dict[str, Any], trust: dict[str, Any], function: str,
                          ) -> tuple[EmbeddedBlock, bytes, Any]:
    """The block, its bytes and its transaction's result, once the block is shown signed by the trusted ledger
    key and its transaction shown to call `function`."""
    body = _b64(evidence.get("block"), "anchor block")
    signature = _b64(evidence.get("signature"), "anchor block signature")
    try:
        key = load_public_key(str(trust.get("public_key", "")))
        verify_signature(key, signature, body, f"embedded ledger {trust.get('org')}")
    except (SignatureError, MalformedInput) as exc:
        raise AnchorError(f"anchor block is not signed by the trusted ledger key: {exc}") from exc
    try:
        block = EmbeddedBlock.parse(parse_canonical(body, "anchor block"), "anchor block")
        result = parse_canonical(block.transaction.result.encode(), "anchor block transaction result")
    except MalformedInput as exc:
        raise AnchorError(f"anchor block is malformed: {exc}") from exc
    if block.org != trust.get("org"):
        raise AnchorError(f"anchor block is from {block.org!r:.60}, trusted ledger is {trust.get('org')!r:.60}")
    if block.transaction.function != function:
        raise AnchorError(f"ledger transaction calls {block.transaction.function!r:.60}, not {function}")
    return block, body, result


def _embedded_summary(block: EmbeddedBlock, body: bytes) -> str:
    digest = hashlib.sha256(body).hexdigest()
    return (
        f"embedded ledger of {block.org}, block {block.number} ({digest[:12]}…), "
        f"tx {block.transaction.tx_id[:12]}… — one organisation, no consensus"
    )


def check_anchored_note(anchor: Anchor, note: str | None, what: str) -> None:
    """With `note`, the anchor must record exactly that signed checkpoint: its size and root alone would let a
    holder of the notary key sign other extension lines (the project heads) over the same tree."""
    if note is not None and anchor.checkpoint != note:
        raise AnchorError(f"{what} records another signed checkpoint than the one presented (same size and root, "
                          "other text)")


def verify_embedded_anchor(
    evidence: dict[str, Any], trust: dict[str, Any], log_id: str, size: int, root: bytes,
    first_cover: int | None = None, note: str | None = None,
) -> str:
    """Check an embedded-ledger block anchors (log_id, size, root); return a one-line summary.
    With `first_cover`, also that it is the first anchor of the log covering that leaf index; with `note`, that
    the anchor records exactly that signed checkpoint."""
    block, body, result = _embedded_transaction(evidence, trust, ANCHOR_FUNCTION)
    anchor = Anchor.parse(result, "anchor transaction result")
    check_anchors(anchor, "anchor", log_id, size, root)
    check_first_cover(anchor, first_cover)
    check_anchored_note(anchor, note, "anchor")
    return _embedded_summary(block, body)


def verify_embedded_head(evidence: dict[str, Any], trust: dict[str, Any], log_id: str) -> tuple[LogHead, int, str]:
    """Check an embedded-ledger block attests the head of `log_id`; return the head, the block number and a
    one-line summary."""
    block, body, result = _embedded_transaction(evidence, trust, HEAD_FUNCTION)
    head = LogHead.parse(result, "attested head")
    if head.log_id != log_id:
        raise AnchorError(f"ledger attests the head of log {head.log_id!r:.60}, expected {log_id!r:.60}")
    if head.tx_id != block.transaction.tx_id:
        raise AnchorError(f"attested head names transaction {head.tx_id:.16}…, it is in "
                          f"{block.transaction.tx_id:.16}…")
    return head, block.number, _embedded_summary(block, body)
