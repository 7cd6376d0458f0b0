"""The `Ledger` interface every anchoring backend implements, and the values it returns.

Both implementations run the same `chaincode.contract.EvidenceContract`; they differ only in who
executes it (this process, or a Fabric network) and in the evidence they give for an anchor. What they
return are the verifier's types (`verifier.anchor`, `verifier.trust`), each parsed once, strictly, here.
"""

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from verifier.anchor import Anchor, AnchorEvidence, LogHead, RegisteredLog
from verifier.errors import MalformedInput, VerificationError
from verifier.strict import parse_canonical
from verifier.trust import LedgerRoot

T = TypeVar("T")


class LedgerError(Exception):
    """Base class of ledger failures."""


class LedgerUnavailable(LedgerError):
    """The ledger could not be reached or did not answer in time; the call may be retried."""


class LedgerRefused(LedgerError):
    """The contract refused the transaction (the message is the contract's reason); do not retry as is."""


def parse_answer(raw: str | bytes, parse: Callable[[Any, str], T], what: str) -> T:
    """The contract's answer, parsed once with the verifier's strict parser for its format. The contract writes
    RFC 8785 JSON; anything else is a `LedgerError` that names what was wrong, never a crash of the notary."""
    try:
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        return parse(parse_canonical(data, what), what)
    except VerificationError as exc:
        raise LedgerError(f"the ledger's answer is malformed: {exc}") from exc


def parse_anchors(value: Any, what: str) -> list[Anchor]:
    """A page of anchors, as `list_anchors` answers."""
    if not isinstance(value, list):
        raise MalformedInput(f"{what} must be a JSON list, got {type(value).__name__}")
    return [Anchor.parse(item, f"{what}[{i}]") for i, item in enumerate(value)]


class Ledger(Protocol):
    """What the notary needs from a ledger. Methods are blocking and thread-safe."""

    kind: str  # "embedded" or "fabric"

    def register_log(self, log_id: str, note_key: str) -> RegisteredLog:
        """Bind a log to this client's identity and the notary's checkpoint key (idempotent)."""
        ...

    def anchor_checkpoint(self, log_id: str, checkpoint: str, consistency_proof: list[bytes]) -> Anchor:
        """Anchor a signed checkpoint with the consistency proof from the log's last anchored one."""
        ...

    def get_log(self, log_id: str) -> RegisteredLog | None:
        """The log's registration and its last anchored size and root, or None if unregistered."""
        ...

    def anchors(self, log_id: str, from_size: int = 0, limit: int = 1000) -> list[Anchor]:
        """Anchors of a log with size >= from_size, in increasing size."""
        ...

    def attest_head(self, log_id: str) -> LogHead:
        """Have the ledger record, in a transaction of its own, the log's newest anchored checkpoint now."""
        ...

    def transaction_evidence(self, tx_id: str) -> AnchorEvidence:
        """Evidence that a transaction (an anchor, an attested head) is on the ledger, checkable offline by
        `verifier.anchor` or `verifier.fabric`."""
        ...

    def trust_roots(self) -> LedgerRoot:
        """What an offline verifier must trust to check this ledger's evidence (keys or root certificates), as
        the ledger publishes it, bound to no log yet."""
        ...

    def close(self) -> None: ...
