"""Checkpoints as C2SP signed notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).

A checkpoint body is three lines, `origin`, tree size in decimal, base64 root hash, then optional
extension lines; a blank line; then one or more signature lines `— <name> <base64(keyid || sig)>`.
Keys are Ed25519 (signature type 0x01); a verifier key is written `<name>+<hex keyid>+<base64(0x01 || key)>`.
"""

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from verifier.errors import CheckpointError, MalformedInput

ED25519_TYPE = b"\x01"
_DASH = "\u2014"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)


@dataclass(frozen=True)
class NoteKey:
    """A note verifier key: the signer's name and its Ed25519 public key."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(ED25519_TYPE + self.public_key).decode()}"


_SIZE = re.compile(r"[0-9]{1,20}")

def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519_TYPE + public_key).digest()[:4]


def parse_vkey(vkey: str) -> NoteKey:
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise MalformedInput(f"verifier key must be name+keyid+key, got {vkey!r:.100}")
    name, hex_id, b64 = parts
    try:
        raw = base64.b64decode(b64, validate=True)
        expected_id = bytes.fromhex(hex_id)
    except (binascii.Error, ValueError) as exc:
        raise MalformedInput(f"verifier key {name!r} is not well encoded: {exc}") from exc
    if len(raw) != 33 or raw[:1] != ED25519_TYPE:
        raise MalformedInput(f"verifier key {name!r} is not an Ed25519 key (type 0x01, 32 bytes)")
    key = NoteKey(name, raw[1:])
    if key.key_id != expected_id:
        raise MalformedInput(f"verifier key {name!r} has key id {hex_id}, expected {key.key_id.hex()}")
    return key


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse a checkpoint body (the text before the blank line)."""
    if not body.endswith("\n"):
        raise CheckpointError("checkpoint body must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(f"checkpoint body needs origin, size and root lines, got {len(lines)} lines")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise CheckpointError("checkpoint origin line is empty")
    # ASCII digits only (str.isdigit also admits "²" and other scripts' digits, which int() then refuses or reads
    # as another spelling of the same number) and at most 20 of them: a tree size is an unsigned 64-bit number.
    if (not _SIZE.fullmatch(size_text) or (size_text != "0" and size_text.startswith("0"))
            or int(size_text) >= 2**64):
        raise CheckpointError(f"checkpoint size must be a decimal number, got {size_text!r:.40}")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as exc:
        raise CheckpointError(f"checkpoint root is not base64: {root_text!r:.60}") from exc
    if len(root) != 32:
        raise CheckpointError(f"checkpoint root must be 32 bytes, got {len(root)}")
    if any(not line for line in extensions):
        raise CheckpointError("checkpoint has an empty extension line")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


def split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """Split a signed note into its body and (name, keyid||signature) pairs."""
    if not isinstance(note, str):
        raise MalformedInput(f"signed note must be text, got {type(note).__name__}")
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        raise CheckpointError("signed note has no blank line between body and signatures")
    body += "\n"
    signatures: list[tuple[str, bytes]] = []
    for line in sigs.split("\n"):
        if not line:
            continue
        fields = line.split(" ")
        if len(fields) != 3 or fields[0] != _DASH:
            raise CheckpointError(f"malformed signature line {line!r:.100}")
        try:
            blob = base64.b64decode(fields[2], validate=True)
        except binascii.Error as exc:
            raise CheckpointError(f"signature of {fields[1]!r} is not base64") from exc
        if len(blob) < 5:
            raise CheckpointError(f"signature of {fields[1]!r} is too short")
        signatures.append((fields[1], blob))
    if not signatures:
        raise CheckpointError("signed note carries no signature")
    return body, signatures


def signature_line(name: str, public_key: bytes, signature: bytes) -> str:
    return f"{_DASH} {name} {base64.b64encode(key_id(name, public_key) + signature).decode()}\n"


def verify_checkpoint(note: str, key: NoteKey) -> Checkpoint:
    """Verify that `note` is a checkpoint signed by `key`; return the checkpoint."""
    body, signatures = split_note(note)
    checkpoint = parse_checkpoint(body)
    mine = [blob for name, blob in signatures if name == key.name and blob[:4] == key.key_id]
    if not mine:
        names = ", ".join(sorted({name for name, _ in signatures}))
        raise CheckpointError(f"checkpoint is not signed by {key.name} ({key.key_id.hex()}); signers: {names}")
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(mine[0][4:], body.encode())
    except InvalidSignature as exc:
        raise CheckpointError(f"checkpoint signature by {key.name} does not verify") from exc
    return checkpoint
