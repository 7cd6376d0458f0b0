"""Log entries: the canonical envelope a notary appends for each record, and its checks.

An entry is the RFC 8785 encoding of `{leaf_index, project_seq, received_at, record, signature, submitter}`,
where `signature` is the submitter's batch signature with this record's place in the batch. `encode_entry`
writes it (the notary), `parse_entry` reads it strictly (everyone else).
"""

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from verifier.canonical import canonical_bytes
from verifier.errors import MalformedInput
from verifier.merkle import hex_hashes, leaf_hash
from verifier.signatures import SUBMISSION_CONTEXT, BatchSignature, PublicKey, verify_batch_member
from verifier.times import utc_text

ENTRY_FIELDS = frozenset({"leaf_index", "project_seq", "received_at", "record", "signature", "submitter"})


@dataclass(frozen=True)
class LogEntry:
    leaf_index: int
    project_seq: int
    received_at: str
    submitter: str
    record: dict[str, Any]
    signature: BatchSignature
    algorithm: str

    @property
    def record_hash(self) -> bytes:
        return hashlib.sha256(canonical_bytes(self.record)).digest()

    @property
    def project_id(self) -> str:
        """The record's project id; "" unless it is text, so that a record of project 7 (a number) can never
        pass for a record of project "7"."""
        value = self.record.get("project_id")
        return value if isinstance(value, str) else ""

    def encode(self) -> bytes:
        return encode_entry(self.leaf_index, self.project_seq, self.received_at, self.submitter,
                            canonical_bytes(self.record), self.signature, self.algorithm)


# The envelope's other values are identifiers, a timestamp, hex and base64: none can hold this string.
_RECORD_SLOT = "\x00record\x00"
_RECORD_SLOT_BYTES = canonical_bytes(_RECORD_SLOT)


def encode_entry(leaf_index: int, project_seq: int, received_at: str, submitter: str, record: bytes,
                 signature: BatchSignature, algorithm: str) -> bytes:
    """The entry's canonical bytes, given the record's (`record`). RFC 8785 orders an object's members by key
    alone, so a member's encoding does not depend on its neighbours: the envelope is encoded with a placeholder
    for the record, which is then replaced by the record's canonical bytes (the notary has them already, from
    checking the submitter's signature; encoding a record again costs more than the rest of the envelope)."""
    envelope = {
        "leaf_index": leaf_index, "project_seq": project_seq, "received_at": received_at, "record": _RECORD_SLOT,
        "signature": {"alg": algorithm, "index": signature.index, "path": [h.hex() for h in signature.path],
                      "size": signature.size, "value": base64.b64encode(signature.value).decode()},
        "submitter": submitter,
    }
    return canonical_bytes(envelope).replace(_RECORD_SLOT_BYTES, record, 1)


def _int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedInput(f"{what} must be a non-negative integer, got {value!r:.40}")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedInput(f"{what} must be a non-empty string, got {value!r:.40}")
    return value


def parse_entry(data: bytes) -> LogEntry:
    """Parse entry bytes; raise MalformedInput naming the first field that is wrong."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, or an integer too long to convert
        raise MalformedInput(f"entry is not JSON: {exc}") from exc
    if not isinstance(value, dict) or set(value) != ENTRY_FIELDS:
        found = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise MalformedInput(f"entry must have fields {sorted(ENTRY_FIELDS)}, got {found}")
    if canonical_bytes(value) != data:
        raise MalformedInput("entry bytes are not the RFC 8785 canonical form of their JSON")
    sig = value["signature"]
    if not isinstance(sig, dict) or set(sig) != {"alg", "index", "path", "size", "value"}:
        raise MalformedInput("entry signature must have fields alg, index, path, size, value")
    record = value["record"]
    if not isinstance(record, dict):
        raise MalformedInput("entry record must be a JSON object")
    try:
        sig_value = base64.b64decode(_str(sig["value"], "signature value"), validate=True)
    except binascii.Error as exc:
        raise MalformedInput("entry signature value is not base64") from exc
    return LogEntry(
        leaf_index=_int(value["leaf_index"], "leaf_index"),
        project_seq=_int(value["project_seq"], "project_seq"),
        received_at=utc_text(value["received_at"], "entry received_at"),
        submitter=_str(value["submitter"], "submitter"),
        record=record,
        signature=BatchSignature(
            size=_int(sig["size"], "signature size"),
            index=_int(sig["index"], "signature index"),
            path=tuple(hex_hashes("signature path", sig["path"])),
            value=sig_value,
        ),
        algorithm=_str(sig["alg"], "signature alg"),
    )


def verify_entry_signature(entry: LogEntry, key: PublicKey) -> None:
    """Raise SignatureError unless the entry's record is signed by its submitter's key."""
    member = leaf_hash(canonical_bytes(entry.record))
    verify_batch_member(key, SUBMISSION_CONTEXT, entry.submitter, member, entry.signature)
