"""Submitter signatures: one signature over a batch's Merkle root proves each record's submitter.

A submitter signs the statement `bidtrace/submission/v1`, its id, the batch size and the RFC 9162 root
of the batch's records (each record hashed as a leaf over its RFC 8785 bytes). Every record keeps its
index and inclusion path in that batch, so it can be checked on its own. A single record is a batch of one.
Keys are Ed25519 or ECDSA P-256 with SHA-256, given as PEM SubjectPublicKeyInfo.
"""

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from verifier.errors import InclusionProofError, MalformedInput, SignatureError
from verifier.merkle import root_from_inclusion_proof

SUBMISSION_CONTEXT = "bidtrace/submission/v1"
RECEIPT_CONTEXT = "bidtrace/receipt/v2"  # see verifier.receipt for what v2 binds

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def load_public_key(pem: str | bytes) -> PublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MalformedInput(f"public key is not a PEM SubjectPublicKeyInfo: {exc}") from exc
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise MalformedInput(f"public key must be Ed25519 or ECDSA P-256, got {type(key).__name__}")


def key_algorithm(key: PublicKey) -> str:
    return "ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else "ecdsa-p256-sha256"


def verify_signature(key: PublicKey, signature: bytes, message: bytes, who: str) -> None:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        else:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise SignatureError(f"signature by {who} does not verify") from exc


def batch_statement(context: str, signer: str, size: int, root: bytes) -> bytes:
    return f"{context}\n{signer}\n{size}\n{root.hex()}\n".encode()


@dataclass(frozen=True)
class BatchSignature:
    """A signature over a batch root, plus one member's position and path in that batch."""

    size: int
    index: int
    path: tuple[bytes, ...]
    value: bytes

    def batch_root(self, member_leaf_hash: bytes) -> bytes:
        if self.size < 1:
            raise SignatureError(f"batch size must be at least 1, got {self.size}")
        return root_from_inclusion_proof(member_leaf_hash, self.index, self.size, self.path)


def verify_batch_member(
    key: PublicKey, context: str, signer: str, member_leaf_hash: bytes, sig: BatchSignature
) -> None:
    """Raise SignatureError unless `sig` is `signer`'s signature over a batch that contains the member."""
    try:
        root = sig.batch_root(member_leaf_hash)
    except (InclusionProofError, MalformedInput) as exc:
        raise SignatureError(f"batch path of {signer}'s signature is invalid: {exc}") from exc
    verify_signature(key, sig.value, batch_statement(context, signer, sig.size, root), signer)
