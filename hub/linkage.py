"""The misconduct registry's linkage keys (不当行为信息记录专题库): held by the hub, never logged, versioned.

A case's `linkage_commitment` is a `c1` commitment to its party whose salt is derived from the party and
the current key (`verifier.commitments.linkage_salt`), so all cases of one party link across projects.
A new version starts a new linkage; searches try every version the hub holds, so older cases stay found.
The file is `{"current": "k1", "keys": {"k1": "<64 hex>"}}`, written 0600.
"""

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from notary.keys import read_private, write_private
from verifier.cases import KEY_VERSION
from verifier.commitments import commit, linkage_salt
from verifier.errors import MalformedInput
from verifier.strict import parse_json

_CREDIT_CODE = re.compile(r"[0-9A-HJ-NP-RT-UW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RT-UW-Y]{10}")


class LinkageKeyError(ValueError):
    """The registry key file cannot be used; the message says why."""


def party_of(subject_kind: str, value: str) -> tuple[str, str]:
    """The party group and the normalised value a linkage commits to: an organisation by its unified social
    credit code (GB 32100, 18 characters, upper case), an expert by identity number."""
    if subject_kind == "expert":
        return "expert", value.strip().upper()
    code = "".join(value.split()).upper()
    if not _CREDIT_CODE.fullmatch(code):
        raise ValueError(f"a {subject_kind} is named by its unified social credit code: 18 digits and upper-case "
                         "letters (no I, O, S, V or Z)")
    return "organisation", code


@dataclass(frozen=True)
class LinkageKeys:
    current: str
    keys: dict[str, bytes]

    @classmethod
    def load_or_create(cls, path: Path) -> "LinkageKeys":
        if not path.exists():
            created = cls("k1", {"k1": secrets.token_bytes(32)})
            try:
                write_private(path, created.encode(), replace=False)
                return created
            except FileExistsError:
                pass  # another process made it first
        try:
            doc = parse_json(read_private(path, "misconduct registry key file"), str(path))
        except (ValueError, MalformedInput) as exc:
            raise LinkageKeyError(str(exc)) from exc
        if not isinstance(doc, dict) or set(doc) != {"current", "keys"} or not isinstance(doc["keys"], dict):
            raise LinkageKeyError(f"{path} must be {{\"current\": \"k1\", \"keys\": {{\"k1\": \"<64 hex>\"}}}}")
        keys = {}
        for version, value in doc["keys"].items():
            if not KEY_VERSION.fullmatch(version) or not isinstance(value, str) or not re.fullmatch(
                    r"[0-9a-f]{64}", value):
                raise LinkageKeyError(f"{path}: key {version!r:.20} must be a version like k1 with 64 hex characters")
            keys[version] = bytes.fromhex(value)
        if doc["current"] not in keys:
            raise LinkageKeyError(f"{path}: the current version {doc['current']!r:.20} has no key")
        return cls(doc["current"], keys)

    def encode(self) -> bytes:
        return json.dumps({"current": self.current, "keys": {v: k.hex() for v, k in self.keys.items()}},
                          indent=1).encode()

    def rotated(self) -> "LinkageKeys":
        """A new current version; the old keys stay for searching older cases."""
        number = max(int(v[1:]) for v in self.keys) + 1
        return LinkageKeys(f"k{number}", {**self.keys, f"k{number}": secrets.token_bytes(32)})

    def salt(self, group: str, party: str, version: str | None = None) -> bytes:
        return linkage_salt(self.keys[version or self.current], group, party)

    def linkages(self, group: str, party: str) -> dict[str, str]:
        """The party's linkage commitment under every key version held."""
        return {v: commit(linkage_salt(k, group, party), party) for v, k in self.keys.items()}
