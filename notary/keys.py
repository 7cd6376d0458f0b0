"""The notary's signing key (Ed25519): it signs checkpoints as C2SP notes and receipts for submitters."""

import contextlib
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
            key = serialization.load_pem_private_key(read_private(path, "notary key"), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"notary key {path} is not an Ed25519 private key")
            return cls(name, key)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            write_private(path, pem, replace=False)
        except FileExistsError:
            return cls.load_or_create(path, name)  # another process created it first: theirs is the key
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


def write_private(path: Path, data: bytes, replace: bool = True) -> None:
    """Write a key, token or other secret file: created 0600 (its folder 0700) with its content already in
    it, fsync'd, then moved into place, so no reader ever sees it empty, partial or readable by others.
    Without `replace`, an existing file wins (FileExistsError): two processes creating one key at once
    must end up with one key."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


MIN_KEY_BYTES = 32  # shorter than any PEM private key: an empty or truncated file, never a key to use


def read_private(path: Path, what: str) -> bytes:
    """The bytes of a key file, refusing one that is empty, truncated or readable by others."""
    mode = path.stat().st_mode & 0o077
    if mode:
        raise ValueError(f"{what} {path} is readable or writable by others (mode {path.stat().st_mode & 0o777:o}); "
                         "chmod 600 it")
    data = path.read_bytes()
    if len(data.strip()) < MIN_KEY_BYTES:
        raise ValueError(f"{what} {path} is empty or too short to be a key")
    return data


def create_private_database(url: str) -> None:
    """Create a SQLite database file 0600 (its folder 0700) before SQLite does with the default mode; its
    journal files take the same mode. Other URLs name a server, which keeps its own files."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix or ":memory:" in url:
        return
    path = Path(url[len(prefix):].split("?", 1)[0])
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
