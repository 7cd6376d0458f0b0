"""Sealed segment files: a recording segment encrypted at rest on the venue, readable only by the province.

The province's media store holds an X25519 key pair (the *media key*); venues are given only its public
half. Each segment file is sealed on its own: a fresh ephemeral X25519 key agrees a secret with the
province's public key, HKDF-SHA256 turns it into a one-time AES-256-GCM key, and the ephemeral private key
and the AES key live only in the recorder's memory while it seals. So the venue's disk holds ciphertext and
nothing that decrypts it: a stolen or failed venue disk discloses nothing, and only the holder of the
province's private key (the media store's operator, a court's verifier) reads the recording back.

`bidtrace-sealed/1` = "bidtrace-sealed/1\\n" ‖ ephemeral public key (32) ‖ nonce (12) ‖ AES-256-GCM
ciphertext with its tag. The additional data is the header (magic, ephemeral key, nonce) and the
segment's file name, so a sealed file cannot pass for another segment's.
"""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from verifier.errors import MalformedInput, VerificationError

MAGIC = b"bidtrace-sealed/1\n"
SUFFIX = ".sealed"
_INFO = b"bidtrace/sealed-segment/v1"
_HEADER = len(MAGIC) + 32 + 12


class UnsealError(VerificationError):
    """A sealed file that this key does not open: another key, another name, or changed bytes."""


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _aead(shared: bytes, ephemeral: bytes, recipient: bytes) -> AESGCM:
    key = HKDF(hashes.SHA256(), 32, salt=ephemeral + recipient, info=_INFO).derive(shared)
    return AESGCM(key)


def seal(plaintext: bytes, recipient: X25519PublicKey, name: str) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = _raw(ephemeral.public_key())
    nonce = os.urandom(12)
    header = MAGIC + ephemeral_raw + nonce
    aead = _aead(ephemeral.exchange(recipient), ephemeral_raw, _raw(recipient))
    return header + aead.encrypt(nonce, plaintext, header + name.encode())


def unseal(sealed: bytes, key: X25519PrivateKey, name: str) -> bytes:
    if not sealed.startswith(MAGIC) or len(sealed) < _HEADER + 16:
        raise MalformedInput(f"{name}{SUFFIX} is not a bidtrace-sealed/1 file")
    header = sealed[:_HEADER]
    ephemeral_raw, nonce = header[len(MAGIC):len(MAGIC) + 32], header[len(MAGIC) + 32:]
    aead = _aead(key.exchange(X25519PublicKey.from_public_bytes(ephemeral_raw)), ephemeral_raw,
                 _raw(key.public_key()))
    try:
        return aead.decrypt(nonce, sealed[_HEADER:], header + name.encode())
    except InvalidTag as exc:
        raise UnsealError(f"{name}{SUFFIX} does not open with the media key given: sealed to another key, under "
                          "another name, or changed") from exc


def load_media_key(pem: bytes, what: str) -> X25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise MalformedInput(f"{what} is not a PEM private key: {exc}") from exc
    if not isinstance(key, X25519PrivateKey):
        raise MalformedInput(f"{what} is a {type(key).__name__}, not an X25519 media key")
    return key


def load_media_public_key(pem: bytes, what: str) -> X25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise MalformedInput(f"{what} is not a PEM public key: {exc}") from exc
    if not isinstance(key, X25519PublicKey):
        raise MalformedInput(f"{what} is a {type(key).__name__}, not an X25519 media key")
    return key
