"""Receipts: the notary's signed promise that a leaf was appended (and will be anchored within the
log's maximum merge delay). One Ed25519 signature covers a whole appended batch; each receipt carries its
leaf's path to that batch's root, like a submitter's batch signature.
"""

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from verifier.errors import MalformedInput, SignatureError, VerificationError
from verifier.merkle import hex_hash, hex_hashes, root_from_inclusion_proof
from verifier.note import NoteKey
from verifier.signatures import RECEIPT_CONTEXT, batch_statement


def verify_receipt(receipt: dict[str, Any], notary: NoteKey, log_id: str) -> None:
    """Raise unless `receipt` is signed by the notary key for a leaf of log `log_id`."""
    try:
        if receipt["log_id"] != log_id:
            raise SignatureError(f"receipt is from log {receipt['log_id']!r}, expected {log_id!r}")
        batch = receipt["batch"]
        leaf = hex_hash("receipt leaf_hash", receipt["leaf_hash"])
        root = root_from_inclusion_proof(leaf, int(batch["index"]), int(batch["size"]),
                                         hex_hashes("receipt batch path", batch["path"]))
        signature = base64.b64decode(receipt["signature"], validate=True)
        statement = batch_statement(RECEIPT_CONTEXT, log_id, int(batch["size"]), root)
        Ed25519PublicKey.from_public_bytes(notary.public_key).verify(signature, statement)
    except InvalidSignature as exc:
        raise SignatureError(f"receipt for leaf {receipt.get('leaf_index')} is not signed by {notary.name}") from exc
    except VerificationError:
        raise
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise MalformedInput(f"receipt is malformed: {exc!r}") from exc
