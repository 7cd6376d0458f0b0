"""Who the client is on Fabric: an MSP id with its X.509 certificate, and an ECDSA P-256 signer.

Fabric rejects ECDSA signatures whose S is in the upper half of the curve order, so every signature
is normalised to low-S before it is DER encoded.
"""

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fabric_protos.msp import identities_pb2

# Order of the NIST P-256 group.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@dataclass(frozen=True)
class Identity:
    msp_id: str
    certificate: bytes  # PEM

    def serialize(self) -> bytes:
        identity = identities_pb2.SerializedIdentity(mspid=self.msp_id, id_bytes=self.certificate)
        data: bytes = identity.SerializeToString()
        return data


class Signer:
    """Signs messages with SHA-256 ECDSA, low-S, DER encoded."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError(f"Fabric identities use P-256 keys, got {private_key.curve.name}")
        self._key = private_key

    def sign(self, message: bytes) -> bytes:
        signature: bytes = self._key.sign(message, ec.ECDSA(hashes.SHA256()))
        return low_s(signature)


def low_s(der_signature: bytes) -> bytes:
    r, s = decode_dss_signature(der_signature)
    if s > P256_ORDER // 2:
        s = P256_ORDER - s
    return encode_dss_signature(r, s)


def load_msp(msp_dir: Path, msp_id: str) -> tuple[Identity, Signer]:
    """The identity and signer of a local MSP folder (signcerts/ and keystore/, as cryptogen writes them)."""
    certs = sorted((msp_dir / "signcerts").glob("*.pem"))
    keys = sorted(p for p in (msp_dir / "keystore").iterdir() if p.is_file())
    if not certs or not keys:
        raise FileNotFoundError(f"{msp_dir} has no signcerts/*.pem or keystore/ key")
    key = serialization.load_pem_private_key(keys[0].read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{keys[0]} is not an ECDSA private key")
    return Identity(msp_id, certs[0].read_bytes()), Signer(key)
