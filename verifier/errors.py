"""Exceptions raised by the verifier; each says what was expected and what was found."""


class VerificationError(Exception):
    """Evidence did not verify. The message names what failed and why."""


class MalformedInput(VerificationError):
    """Input could not be parsed into the structure the check needs."""


class InclusionProofError(VerificationError):
    """An inclusion proof does not lead from the leaf to the claimed root."""


class ConsistencyProofError(VerificationError):
    """A consistency proof does not show the second tree extends the first."""


class SignatureError(VerificationError):
    """A signature does not verify under the key it claims."""


class CheckpointError(VerificationError):
    """A checkpoint (signed tree head) is malformed or not signed by a trusted key."""


class AnchorError(VerificationError):
    """Anchor evidence does not show the checkpoint on the ledger."""


class CommitmentError(VerificationError):
    """A disclosed value does not open the commitment stored in a record."""


class ExtractError(VerificationError):
    """An audit extract is incomplete, reordered or inconsistent with itself."""
