"""Canonical bytes of JSON values: RFC 8785 (JSON Canonicalization Scheme).

Two equal records give equal bytes, and so equal hashes, on every machine. The `rfc8785` package is the
reference. For the common case (no floats, integers within IEEE 754's exact range, keys in the Basic
Multilingual Plane) Python's C JSON encoder with sorted keys writes exactly the RFC 8785 bytes, several
times faster; anything else goes to the package. Tests check the two agree on arbitrary JSON.
"""

import hashlib
import json
from typing import Any

import rfc8785

from verifier.errors import MalformedInput

_MAX_EXACT = 2**53 - 1
_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode


def _plain(value: Any) -> bool:
    """True if the C encoder's output is the RFC 8785 output for this value."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is int:
            if not -_MAX_EXACT <= item <= _MAX_EXACT:
                return False
        elif kind is dict:
            for key in item:
                # sort_keys orders by code point; RFC 8785 by UTF-16 unit. They agree below U+D800.
                if type(key) is not str or not (key.isascii() or max(key) < "\ud800"):
                    return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        else:
            return False
        if len(stack) > 100_000:
            return False
    return True


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 encoding of a JSON value (dict, list, str, int, float, bool, None)."""
    try:
        if _plain(value):
            return _encode(value).encode()
        encoded: bytes = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, UnicodeEncodeError, RecursionError) as exc:
        raise MalformedInput(f"value cannot be canonicalised as RFC 8785 JSON: {exc}") from exc
    return encoded


def reference_canonical_bytes(value: Any) -> bytes:
    """The `rfc8785` package's encoding, for checking the fast path."""
    encoded: bytes = rfc8785.dumps(value)
    return encoded


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_hash(record: Any) -> bytes:
    """SHA-256 of a record's canonical bytes: the record's identity in the log."""
    return hashlib.sha256(canonical_bytes(record)).digest()
