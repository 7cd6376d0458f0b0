"""Check-in station: photo -> exactly one face? -> encrypted blob + `checkin` record with a salted commitment.

The photo is captured from a camera (JPEG-encoded frame) or read from an image file, faces are counted
with the frontal-face Haar cascade that ships with OpenCV, and the check-in is refused (nothing stored,
nothing queued) unless exactly one face is present. The photo is stored encrypted (AES-256-GCM) in a local
blob store named by the SHA-256 of the plaintext; the log gets only that digest. The expert's identity
number enters the record only as a salted commitment (`verifier.commitments`); the opening travels to the notary as a
disclosure of the same submission and is erased from the device's queue once acknowledged.

Face *verification* (is this the registered expert?) is the job of a provider (the cloud-sign system's):
any object with a `name` and `verify(photo, identity_number) -> "matched" | "rejected"`. Without one
the record says method "face", result "unverified", provider null — no result is invented.
"""

import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import cv2.data
import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devices.queue import EvidenceQueue
from devices.recorder import now_rfc3339, parse_source
from verifier.commitments import commit, new_salt

CAPTURE_ATTEMPTS = 30  # frames read from a camera before giving up (the first ones may be dark)


class CheckinRefused(Exception):
    """The check-in was not recorded; the message says why."""


class FaceVerifier(Protocol):
    """A face-verification provider: compares the photo with the expert's registered identity."""

    name: str

    def verify(self, photo: bytes, identity_number: str) -> Literal["matched", "rejected"]: ...


class FaceCounter(Protocol):
    def count(self, image: np.ndarray[Any, Any]) -> int: ...


class HaarFaceCounter:
    """Frontal faces found by OpenCV's bundled `haarcascade_frontalface_default.xml`."""

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", min_size: int = 40) -> None:
        path = os.path.join(cv2.data.haarcascades, cascade)
        self._classifier = cv2.CascadeClassifier(path)
        if self._classifier.empty():
            raise RuntimeError(f"cannot load the Haar cascade {path}")
        self.min_size = min_size

    def count(self, image: np.ndarray[Any, Any]) -> int:
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        gray = cv2.equalizeHist(gray)
        faces = self._classifier.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                                  minSize=(self.min_size, self.min_size))
        return len(faces)


class BlobStore:
    """Encrypted files named by the SHA-256 of their plaintext: nonce (12 bytes) || AES-256-GCM ciphertext,
    with the name as associated data. The key is a 32-byte file readable by its owner only."""

    def __init__(self, directory: Path, key_file: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._aead = AESGCM(self._load_key(Path(key_file)))

    @staticmethod
    def _load_key(path: Path) -> bytes:
        if path.exists():
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise PermissionError(f"blob key {path} has mode {mode:o}; it must be 600 (owner only)")
            key = path.read_bytes()
            if len(key) != 32:
                raise ValueError(f"blob key {path} must hold 32 bytes, holds {len(key)}")
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        key = AESGCM.generate_key(bit_length=256)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        return key

    def path(self, digest: str) -> Path:
        return self.directory / f"{digest}.blob"

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, data, digest.encode())
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, sealed)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return digest

    def get(self, digest: str) -> bytes:
        sealed = self.path(digest).read_bytes()
        data = self._aead.decrypt(sealed[:12], sealed[12:], digest.encode())
        if hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"blob {digest} does not hash to its name")
        return data


def media_type(photo: bytes) -> str:
    if photo.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if photo.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return "application/octet-stream"


def capture_photo(source: str) -> bytes:
    """The photo's bytes: an image file as it is, or one frame of a camera/stream encoded as JPEG."""
    if not source.isdigit() and "://" not in source:
        path = Path(source)
        if not path.is_file():
            raise CheckinRefused(f"no image file {source}")
        return path.read_bytes()
    cap = cv2.VideoCapture(parse_source(source))
    try:
        if not cap.isOpened():
            raise CheckinRefused(f"cannot open camera {source!r}")
        frame = None
        for _ in range(CAPTURE_ATTEMPTS):
            ok, got = cap.read()
            if ok and got is not None:
                frame = got
                if float(got.mean()) > 10:  # past the dark frames some cameras start with
                    break
        if frame is None:
            raise CheckinRefused(f"camera {source!r} gave no frame")
    finally:
        cap.release()
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise CheckinRefused("cannot encode the captured frame as JPEG")
    return bytes(encoded.tobytes())


@dataclass(frozen=True)
class CheckinConfig:
    project_id: str
    session_id: str
    venue_id: str
    device_id: str


@dataclass(frozen=True)
class CheckinResult:
    record: dict[str, Any]
    queue_seq: int
    photo_sha256: str
    faces: int


class CheckinStation:
    def __init__(self, config: CheckinConfig, queue: EvidenceQueue, blobs: BlobStore,
                 faces: FaceCounter | None = None, verifier: FaceVerifier | None = None) -> None:
        self.config = config
        self.queue = queue
        self.blobs = blobs
        self.faces = faces or HaarFaceCounter()
        self.verifier = verifier

    def check_in(self, identity_number: str, photo: bytes) -> CheckinResult:
        identity_number = identity_number.strip()
        if not 1 <= len(identity_number) <= 64:
            raise CheckinRefused("the identity number must be 1 to 64 characters")
        image = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise CheckinRefused("the photo is not an image OpenCV can decode")
        faces = self.faces.count(image)
        if faces != 1:
            raise CheckinRefused(f"exactly one face must be in the photo, found {faces}; check-in not recorded")
        result: Literal["matched", "rejected", "unverified"] = "unverified"
        provider: str | None = None
        if self.verifier is not None:
            provider = self.verifier.name
            try:
                result = self.verifier.verify(photo, identity_number)
            except Exception as exc:
                raise CheckinRefused(f"face-verification provider {provider} failed: {exc}") from exc
            if result not in ("matched", "rejected"):
                raise CheckinRefused(f"face-verification provider {provider} answered {result!r}")
        digest = self.blobs.put(photo)
        salt = new_salt()
        c = self.config
        kind = media_type(photo)
        suffix = {"image/jpeg": ".jpg", "image/png": ".png"}.get(kind, "")
        record = {
            "type": "checkin", "project_id": c.project_id, "session_id": c.session_id, "venue_id": c.venue_id,
            "device_id": c.device_id, "occurred_at": now_rfc3339(),
            "payload": {"expert_commitment": commit(salt, identity_number), "method": "face", "result": result,
                        "provider": provider, "photo_sha256": digest, "faces_detected": faces},
            "attachments": [{"name": f"{digest}{suffix}", "sha256": digest, "size": len(photo),
                             "media_type": kind}],
        }
        disclosure = {"field": "expert_commitment", "salt": salt.hex(), "value": identity_number}
        [seq] = self.queue.enqueue([record], disclosures=[[disclosure]])
        return CheckinResult(record, seq, digest, faces)
