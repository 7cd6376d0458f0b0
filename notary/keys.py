"""The notary's signing key (Ed25519): it signs checkpoints as C2SP notes and receipts for submitters."""

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from verifier.note import Checkpoint, NoteKey, signature_line


class NotaryKey:
    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = name
        self._private = private_key
        self.public_raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.note_key = NoteKey(name, self.public_raw)

    @classmethod
    def generate(cls, name: str) -> "NotaryKey":
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path, name: str) -> "NotaryKey":
        """Load the key at `path`, creating it (mode 0600) on first start."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"notary key {path} is not an Ed25519 private key")
            return cls(name, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        return cls(name, key)

    @property
    def vkey(self) -> str:
        return self.note_key.vkey()

    def public_pem(self) -> str:
        return (
            self._private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def sign_checkpoint(self, checkpoint: Checkpoint) -> str:
        body = checkpoint.body()
        return body + "\n" + signature_line(self.name, self.public_raw, self.sign(body.encode()))


def write_private(path: Path, data: bytes) -> None:
    """Write a key, token or other secret file: created 0600 (its folder 0700) with its content already in
    it, fsync'd, then renamed into place, so no reader ever sees it empty, partial or readable by others."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
