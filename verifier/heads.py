"""Project heads: how many records each project has in the log at a checkpoint, committed in the checkpoint.

Each checkpoint carries one extension line (c2sp.org/tlog-checkpoint allows them after the root):
`bidtrace/project-heads/v1 <number of projects> <hex root>`, the RFC 9162 root over one leaf per project
that has records below the checkpoint's size, in order of project id (by code point): the RFC 8785 bytes of
`{"last_leaf", "project_id", "records"}` (the project's number of records and the leaf index of its last one).
The notary signs it with the checkpoint and the ledger anchors that text, so an extract proven against the
checkpoint can show, by one inclusion proof, that it holds every record the project had there: a record
left off the end of a project changes the count and the last leaf.
"""

from dataclasses import dataclass
from typing import Any

from verifier.canonical import canonical_bytes
from verifier.errors import CheckpointError, MalformedInput
from verifier.merkle import root
from verifier.strict import count, exact_object, hex64, hex64_list

PROJECT_HEADS = "bidtrace/project-heads/v1"


@dataclass(frozen=True)
class ProjectHead:
    project_id: str
    records: int
    last_leaf: int

    def leaf(self) -> bytes:
        return canonical_bytes({"last_leaf": self.last_leaf, "project_id": self.project_id, "records": self.records})


def ordered(heads: list[ProjectHead]) -> list[ProjectHead]:
    return sorted(heads, key=lambda h: h.project_id)


def heads_line(heads: list[ProjectHead]) -> str:
    """The checkpoint extension line committing to `heads` (in any order; they are sorted here)."""
    leaves = [h.leaf() for h in ordered(heads)]
    return f"{PROJECT_HEADS} {len(leaves)} {root(leaves).hex()}"


@dataclass(frozen=True)
class HeadsCommitment:
    projects: int
    root: bytes


def heads_commitment(extensions: tuple[str, ...]) -> HeadsCommitment:
    """The project-heads commitment among a checkpoint's extension lines: exactly one, well formed."""
    lines = [line for line in extensions if line.startswith(PROJECT_HEADS + " ")]
    if len(lines) != 1:
        raise CheckpointError(f"checkpoint must carry one {PROJECT_HEADS} line, it carries {len(lines)}")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[1].isascii() or not parts[1].isdigit() or str(int(parts[1])) != parts[1]:
        raise CheckpointError(f"checkpoint's {PROJECT_HEADS} line is not '<count> <hex root>': {lines[0]!r:.120}")
    try:
        digest = hex64(parts[2], f"{PROJECT_HEADS} root")
    except MalformedInput as exc:
        raise CheckpointError(str(exc)) from exc
    return HeadsCommitment(int(parts[1]), digest)


@dataclass(frozen=True)
class ProjectHeadProof:
    """The extract's project at its checkpoint: its record count, last leaf, and place in the heads tree."""

    records: int
    last_leaf: int
    index: int
    inclusion_proof: tuple[bytes, ...]

    @classmethod
    def parse(cls, value: Any, what: str) -> "ProjectHeadProof":
        value = exact_object(value, what, {"records", "last_leaf", "index", "inclusion_proof"})
        return cls(count(value, "records", what), count(value, "last_leaf", what), count(value, "index", what),
                   hex64_list(value, "inclusion_proof", what))

    def encode(self) -> dict[str, Any]:
        return {"records": self.records, "last_leaf": self.last_leaf, "index": self.index,
                "inclusion_proof": [h.hex() for h in self.inclusion_proof]}
