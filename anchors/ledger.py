"""The `Ledger` interface every anchoring backend implements, and the values it returns.

Both implementations run the same `chaincode.contract.EvidenceContract`; they differ only in who
executes it (this process, or a Fabric network) and in the evidence they give for an anchor.
"""

import json
from dataclasses import dataclass
from typing import Any, Protocol

from verifier.anchor import LogHead


class LedgerError(Exception):
    """Base class of ledger failures."""


class LedgerUnavailable(LedgerError):
    """The ledger could not be reached or did not answer in time; the call may be retried."""


class LedgerRefused(LedgerError):
    """The contract refused the transaction (the message is the contract's reason); do not retry as is."""


@dataclass(frozen=True)
class Anchor:
    """A checkpoint as the ledger recorded it."""

    log_id: str
    size: int
    root: bytes
    checkpoint: str
    previous_size: int
    tx_id: str
    anchored_at: str

    @classmethod
    def from_contract(cls, raw: str | bytes) -> "Anchor":
        value = json.loads(raw)
        return cls(
            log_id=value["log_id"],
            size=int(value["size"]),
            root=bytes.fromhex(value["root"]),
            checkpoint=value["checkpoint"],
            previous_size=int(value["previous_size"]),
            tx_id=value["tx_id"],
            anchored_at=value["anchored_at"],
        )


class Ledger(Protocol):
    """What the notary needs from a ledger. Methods are blocking and thread-safe."""

    kind: str  # "embedded" or "fabric"

    def register_log(self, log_id: str, note_key: str) -> dict[str, Any]:
        """Bind a log to this client's identity and the notary's checkpoint key (idempotent)."""
        ...

    def anchor_checkpoint(self, log_id: str, checkpoint: str, consistency_proof: list[bytes]) -> Anchor:
        """Anchor a signed checkpoint with the consistency proof from the log's last anchored one."""
        ...

    def get_log(self, log_id: str) -> dict[str, Any] | None:
        """The log's registration and its last anchored size and root, or None if unregistered."""
        ...

    def anchors(self, log_id: str, from_size: int = 0, limit: int = 1000) -> list[Anchor]:
        """Anchors of a log with size >= from_size, in increasing size."""
        ...

    def attest_head(self, log_id: str) -> LogHead:
        """Have the ledger record, in a transaction of its own, the log's newest anchored checkpoint now."""
        ...

    def transaction_evidence(self, tx_id: str) -> dict[str, Any]:
        """JSON evidence that a transaction (an anchor, an attested head) is on the ledger, checkable offline
        by `verifier.anchor` or `verifier.fabric`."""
        ...

    def trust_roots(self) -> dict[str, Any]:
        """What an offline verifier must trust to check this ledger's evidence (keys or root certificates)."""
        ...

    def close(self) -> None: ...
