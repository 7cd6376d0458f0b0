"""Canonical bytes of JSON values: RFC 8785 (JSON Canonicalization Scheme).

Two equal records give equal bytes, and so equal hashes, on every machine.
"""

import hashlib
from typing import Any

import rfc8785

from verifier.errors import MalformedInput


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 encoding of a JSON value (dict, list, str, int, float, bool, None)."""
    try:
        encoded: bytes = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise MalformedInput(f"value cannot be canonicalised as RFC 8785 JSON: {exc}") from exc
    return encoded


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_hash(record: Any) -> bytes:
    """SHA-256 of a record's canonical bytes: the record's identity in the log."""
    return hashlib.sha256(canonical_bytes(record)).digest()
