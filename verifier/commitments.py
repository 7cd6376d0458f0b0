"""Salted commitments that stand in the log for personal data, and their disclosures.

Scheme `c1`: `"c1:" + hex(sha256(b"bidtrace/commitment/v1" || 0x00 || salt || utf8(value)))` with a salt of
exactly 32 bytes. The fixed-length salt means no byte can move between salt and value (a variable-length
salt let one commitment open to two different values); the context string and its terminating 0x00 keep
these hashes apart from every other hash in the project; the tag in the string names the scheme, so a
later one can be introduced without ambiguity. The salt stays with the notary; disclosing (salt, value)
for one field opens that field and no other. Every producer (hub, devices, notary) calls `commit` here.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from verifier.errors import CommitmentError, MalformedInput
from verifier.strict import exact_object, text

SCHEME = "c1"
SALT_SIZE = 32
_DOMAIN = b"bidtrace/commitment/v1\x00"
_COMMITMENT = re.compile(r"c1:[0-9a-f]{64}")
_SALT = re.compile(r"[0-9a-f]{64}")
MAX_VALUE = 4000


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_SIZE)


def commit(salt: bytes, value: str) -> str:
    """The commitment string to `value` under `salt` (exactly 32 bytes)."""
    if len(salt) != SALT_SIZE:
        raise CommitmentError(f"a commitment salt must be exactly {SALT_SIZE} bytes, got {len(salt)}")
    return f"{SCHEME}:" + hashlib.sha256(_DOMAIN + salt + value.encode("utf-8")).hexdigest()


def is_commitment(value: object) -> bool:
    return isinstance(value, str) and _COMMITMENT.fullmatch(value) is not None


@dataclass(frozen=True)
class Disclosure:
    """The opening of one commitment field of a record: its salt and its value."""

    field: str
    salt: bytes
    value: str

    def encode(self) -> dict[str, str]:
        return {"field": self.field, "salt": self.salt.hex(), "value": self.value}

    @classmethod
    def parse(cls, value: Any, what: str = "disclosure") -> "Disclosure":
        value = exact_object(value, what, {"field", "salt", "value"})
        field = text(value, "field", what)
        salt = text(value, "salt", what)
        if not _SALT.fullmatch(salt):
            raise MalformedInput(f"{what} salt of {field} must be {2 * SALT_SIZE} lower-case hex characters "
                                 f"({SALT_SIZE} bytes)")
        disclosed = text(value, "value", what, empty=True)
        if len(disclosed) > MAX_VALUE:
            raise MalformedInput(f"{what} value of {field} is longer than {MAX_VALUE} characters")
        return cls(field, bytes.fromhex(salt), disclosed)

    def opens(self, commitment: object) -> None:
        """Raise CommitmentError unless this disclosure opens `commitment`."""
        if not is_commitment(commitment):
            raise CommitmentError(f"field {self.field} does not hold a {SCHEME} commitment: {str(commitment)[:24]!r}")
        if not hmac.compare_digest(commit(self.salt, self.value), str(commitment)):
            raise CommitmentError(f"disclosed value of {self.field} does not open its commitment "
                                  f"{str(commitment)[:20]}…")


def verify_disclosure(commitment: str, salt_hex: str, value: str, field: str) -> None:
    """Check an opening given as text (as submitters send it); raise naming `field` on any fault."""
    if not isinstance(salt_hex, str) or not _SALT.fullmatch(salt_hex):
        raise MalformedInput(f"salt of {field} must be {2 * SALT_SIZE} lower-case hex characters ({SALT_SIZE} bytes)")
    if not isinstance(value, str):
        raise MalformedInput(f"disclosed value of {field} must be text")
    Disclosure(field, bytes.fromhex(salt_hex), value).opens(commitment)


_LINKAGE_DOMAIN = b"bidtrace/misconduct-linkage/v1\x00"
PARTY_GROUPS = ("organisation", "expert")


def linkage_salt(registry_key: bytes, party_group: str, party: str) -> bytes:
    """The salt of a misconduct case's `linkage_commitment`: HMAC-SHA256 under the misconduct registry's key
    of the domain tag, the party group (an organisation by its unified social credit code, an expert by
    identity number), 0x00 and the party. One party gets one salt under one key version, so all its cases
    carry the same linkage commitment across projects; without the key nobody can test a guessed code,
    as they could against a plain hash of an 18-character code. The group and the 0x00 keep an
    organisation and an expert with the same text apart."""
    if party_group not in PARTY_GROUPS:
        raise CommitmentError(f"party group must be one of {', '.join(PARTY_GROUPS)}, got {party_group!r:.30}")
    return _keyed(registry_key, _LINKAGE_DOMAIN, party_group, party)


_BID_DOMAIN = b"bidtrace/bid-tag/v1\x00"
BID_TAGS = ("device", "network")


def bid_tag(registry_key: bytes, what: str, value: str) -> str:
    """A bid submission's device (机器码) or network address as a keyed tag (hex HMAC-SHA256 under the
    registry key): equal for equal values, so bids from one machine are seen together, and not open to
    guessing the way a plain hash of an address would be."""
    if what not in BID_TAGS:
        raise CommitmentError(f"a bid tag is one of {', '.join(BID_TAGS)}, got {what!r:.30}")
    return _keyed(registry_key, _BID_DOMAIN, what, value).hex()


def _keyed(registry_key: bytes, domain: bytes, group: str, value: str) -> bytes:
    if len(registry_key) < SALT_SIZE:
        raise CommitmentError(f"a registry key must be at least {SALT_SIZE} bytes, got {len(registry_key)}")
    return hmac.new(registry_key, domain + group.encode() + b"\x00" + value.encode("utf-8"), hashlib.sha256).digest()
