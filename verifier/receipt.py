"""Receipts: the notary's signed promise that a leaf was appended (and will be anchored within the
log's maximum merge delay). One Ed25519 signature covers a whole appended batch; each receipt carries its
member's path to that batch's root, like a submitter's batch signature.

Scheme `bidtrace/receipt/v2`: a batch's members are `receipt_member` hashes, each binding the leaf index,
leaf hash, record hash and receipt time of one receipt (fixed-length fields, the time length-prefixed, all
under a domain tag); the notary signs `batch_statement(RECEIPT_CONTEXT, log_id, size, root)`. Version 1
signed the leaf hashes alone, so the record hash and the time a receipt names were not the notary's word:
anyone could show a receipt for a leaf naming another record.
"""

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from verifier.canonical import canonical_bytes
from verifier.errors import MalformedInput, SignatureError
from verifier.merkle import root_from_inclusion_proof
from verifier.note import NoteKey
from verifier.signatures import RECEIPT_CONTEXT, batch_statement
from verifier.strict import count, exact_object, hex64, listed, text
from verifier.times import utc_text

_MEMBER_DOMAIN = b"bidtrace/receipt-member/v2\x00"
_MAX_TIME = 64  # an RFC 3339 time is about 32 characters


def receipt_member(leaf_index: int, leaf_hash: bytes, record_hash: bytes, received_at: str) -> bytes:
    """The hash a receipt contributes to its batch's signed root: every field the receipt states but the log
    id (which the signed statement names once for the batch)."""
    at = received_at.encode("utf-8")
    if not 0 <= leaf_index < 2**64 or len(leaf_hash) != 32 or len(record_hash) != 32 or len(at) > _MAX_TIME:
        raise MalformedInput(f"receipt for leaf {leaf_index} has a field out of range (leaf index below 2^64, "
                             f"32-byte hashes, a time of at most {_MAX_TIME} bytes)")
    return hashlib.sha256(_MEMBER_DOMAIN + leaf_index.to_bytes(8, "big") + leaf_hash + record_hash
                          + len(at).to_bytes(1, "big") + at).digest()


def receipt_statement(log_id: str, batch_size: int, root: bytes) -> bytes:
    """What the notary signs for one batch of receipts: the root of its members' `receipt_member` hashes."""
    return batch_statement(RECEIPT_CONTEXT, log_id, batch_size, root)


_FIELDS = frozenset({"log_id", "leaf_index", "leaf_hash", "record_hash", "received_at", "batch", "signature"})
_BATCH = frozenset({"size", "index", "path"})

_HEX64_SCHEMA = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
JSON_SCHEMA: dict[str, Any] = {
    "title": "Receipt",
    "description": "verifier.receipt.Receipt as its encode() writes it and its parse() reads it (scheme "
                   "bidtrace/receipt/v2). A POST /v1/records answer leaves out the batch path of the receipts "
                   "that request appended: it carries every member of their batch, so the path follows.",
    "type": "object",
    "additionalProperties": False,
    "required": sorted(_FIELDS),
    "properties": {
        "log_id": {"type": "string"},
        "leaf_index": {"type": "integer", "minimum": 0},
        "leaf_hash": _HEX64_SCHEMA,
        "record_hash": _HEX64_SCHEMA,
        "received_at": {"type": "string", "description": "RFC 3339 UTC time the notary received the record"},
        "batch": {
            "type": "object",
            "additionalProperties": False,
            "required": ["index", "size"],
            "properties": {"size": {"type": "integer", "minimum": 1}, "index": {"type": "integer", "minimum": 0},
                           "path": {"type": "array", "items": _HEX64_SCHEMA,
                                    "description": "the receipt member's inclusion path in the signed batch"}},
        },
        "signature": {"type": "string", "description": "base64 Ed25519 signature of the notary over the batch"},
    },
}


@dataclass(frozen=True)
class Receipt:
    log_id: str
    leaf_index: int
    leaf_hash: bytes
    record_hash: bytes
    received_at: str
    batch_size: int
    batch_index: int
    batch_path: tuple[bytes, ...]
    signature: bytes

    @property
    def member(self) -> bytes:
        return receipt_member(self.leaf_index, self.leaf_hash, self.record_hash, self.received_at)

    def encode(self, with_path: bool = True) -> dict[str, Any]:
        """The receipt as JSON. Without its path (a submission's answer holds every member of the batch, so
        the client computes the paths: `notary.client.complete_receipts`)."""
        batch: dict[str, Any] = {"size": self.batch_size, "index": self.batch_index}
        if with_path:
            batch["path"] = [h.hex() for h in self.batch_path]
        return {"log_id": self.log_id, "leaf_index": self.leaf_index, "leaf_hash": self.leaf_hash.hex(),
                "record_hash": self.record_hash.hex(), "received_at": self.received_at, "batch": batch,
                "signature": base64.b64encode(self.signature).decode()}

    @classmethod
    def parse(cls, value: Any, what: str = "receipt", with_path: bool = True) -> "Receipt":
        """Read a receipt strictly. `with_path=False` reads the form `encode(with_path=False)` writes (its
        batch has no path; the value's path is empty until `notary.client.complete_receipts` computes it)."""
        value = exact_object(value, what, _FIELDS)
        batch = exact_object(value["batch"], f"{what} batch", _BATCH if with_path else _BATCH - {"path"})
        path = listed(batch, "path", what) if with_path else []
        try:
            signature = base64.b64decode(text(value, "signature", what), validate=True)
        except binascii.Error as exc:
            raise MalformedInput(f"{what} signature is not base64") from exc
        return cls(text(value, "log_id", what), count(value, "leaf_index", what),
                   hex64(value["leaf_hash"], f"{what} leaf_hash"), hex64(value["record_hash"], f"{what} record_hash"),
                   utc_text(value["received_at"], f"{what} received_at"), count(batch, "size", f"{what} batch"),
                   count(batch, "index", f"{what} batch"),
                   tuple(hex64(h, f"{what} batch path[{i}]") for i, h in enumerate(path)),
                   signature)

    def verify(self, notary: NoteKey, log_id: str) -> None:
        """Raise SignatureError unless the notary key `notary` of log `log_id` signed this receipt."""
        if self.log_id != log_id:
            raise SignatureError(f"receipt is from log {self.log_id!r}, expected {log_id!r}")
        if self.batch_size < 1:
            raise SignatureError(f"receipt's batch size must be at least 1, got {self.batch_size}")
        root = root_from_inclusion_proof(self.member, self.batch_index, self.batch_size, list(self.batch_path))
        statement = receipt_statement(log_id, self.batch_size, root)
        try:
            Ed25519PublicKey.from_public_bytes(notary.public_key).verify(self.signature, statement)
        except InvalidSignature as exc:
            raise SignatureError(f"receipt for leaf {self.leaf_index} is not signed by {notary.name}") from exc

    def covers(self, record: Any) -> bool:
        """True if this receipt is for exactly `record` (its RFC 8785 bytes)."""
        return hashlib.sha256(canonical_bytes(record)).digest() == self.record_hash


def verify_receipt(receipt: dict[str, Any], notary: NoteKey, log_id: str) -> Receipt:
    """Parse `receipt` strictly and raise unless it is signed by the notary key for a leaf of log `log_id`."""
    parsed = Receipt.parse(receipt)
    parsed.verify(notary, log_id)
    return parsed
