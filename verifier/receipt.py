"""Receipts: the notary's signed promise that a leaf was appended (and will be anchored within the
log's maximum merge delay). One Ed25519 signature covers a whole appended batch; each receipt carries its
leaf's path to that batch's root, like a submitter's batch signature.
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

_FIELDS = frozenset({"log_id", "leaf_index", "leaf_hash", "record_hash", "received_at", "batch", "signature"})


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

    def encode(self) -> dict[str, Any]:
        return {"log_id": self.log_id, "leaf_index": self.leaf_index, "leaf_hash": self.leaf_hash.hex(),
                "record_hash": self.record_hash.hex(), "received_at": self.received_at,
                "batch": {"size": self.batch_size, "index": self.batch_index,
                          "path": [h.hex() for h in self.batch_path]},
                "signature": base64.b64encode(self.signature).decode()}

    @classmethod
    def parse(cls, value: Any, what: str = "receipt") -> "Receipt":
        value = exact_object(value, what, _FIELDS)
        batch = exact_object(value["batch"], f"{what} batch", {"size", "index", "path"})
        try:
            signature = base64.b64decode(text(value, "signature", what), validate=True)
        except binascii.Error as exc:
            raise MalformedInput(f"{what} signature is not base64") from exc
        return cls(text(value, "log_id", what), count(value, "leaf_index", what),
                   hex64(value["leaf_hash"], f"{what} leaf_hash"), hex64(value["record_hash"], f"{what} record_hash"),
                   text(value, "received_at", what), count(batch, "size", f"{what} batch"),
                   count(batch, "index", f"{what} batch"),
                   tuple(hex64(h, f"{what} batch path[{i}]") for i, h in enumerate(listed(batch, "path", what))),
                   signature)

    def verify(self, notary: NoteKey, log_id: str) -> None:
        """Raise SignatureError unless the notary key `notary` of log `log_id` signed this receipt."""
        if self.log_id != log_id:
            raise SignatureError(f"receipt is from log {self.log_id!r}, expected {log_id!r}")
        if self.batch_size < 1:
            raise SignatureError(f"receipt's batch size must be at least 1, got {self.batch_size}")
        root = root_from_inclusion_proof(self.leaf_hash, self.batch_index, self.batch_size, list(self.batch_path))
        statement = batch_statement(RECEIPT_CONTEXT, log_id, self.batch_size, root)
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
