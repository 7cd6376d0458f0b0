"""Salted commitments that stand in the log for personal data: `sha256(salt || utf8(value))`, hex.

The salt stays with the notary; disclosing (salt, value) for one field opens that field and no other.
"""

import hashlib
import hmac

from verifier.errors import CommitmentError, MalformedInput


def commit(salt: bytes, value: str) -> str:
    return hashlib.sha256(salt + value.encode()).hexdigest()


def verify_disclosure(commitment: str, salt_hex: str, value: str, field: str) -> None:
    try:
        salt = bytes.fromhex(salt_hex)
    except (ValueError, TypeError) as exc:
        raise MalformedInput(f"salt of {field} is not hex") from exc
    if len(salt) < 16:
        raise CommitmentError(f"salt of {field} must be at least 16 bytes, got {len(salt)}")
    if not isinstance(value, str):
        raise MalformedInput(f"disclosed value of {field} must be text")
    if not hmac.compare_digest(commit(salt, value), str(commitment)):
        raise CommitmentError(f"disclosed value of {field} does not open its commitment {str(commitment)[:16]}…")
