"""Check-in station: photo -> exactly one face? -> face compared with the enrolled photo -> encrypted blob +
`checkin` record with a salted commitment -> reported to the hub.

The photo is captured from a camera (JPEG-encoded frame) or read from an image file. With a
face-verification provider (`devices.face.FaceRecognitionVerifier`: dlib's ResNet embedding, 1:1 against
the expert's enrolled photo) the provider counts the faces and compares; without one, faces are counted
with OpenCV's frontal-face Haar cascade and the record says result "unverified", provider null — no result
is invented. Either way the check-in is refused (nothing stored, nothing queued) unless exactly one face
is present. The comparison (`verifier.face.FaceMatch`: decision, distance, threshold, model) goes into the
record; "match" makes the result "matched", "no_match" makes it "rejected" (a rejected check-in is evidence too).

The photo is stored encrypted (AES-256-GCM) in a local blob store named by the SHA-256 of the plaintext;
the log gets only that digest. The expert's identity number enters the record only as a salted commitment
(`verifier.commitments`); the opening travels to the notary as a disclosure of the same submission and is
erased from the device's queue once acknowledged.

The station reports each check-in to the hub itself (`HubReporter`, RFC 9421 signed requests with the
station's own key, a device principal bound to its venue and the function "checkin"): once the notary
has acknowledged the record, the station tells the hub which expert it checked in, at which leaf, with the
commitment's opening. A report waits in the queue's state until the hub has taken it, like the evidence.
"""

import hashlib
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import cv2.data
import httpx
import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devices.face import FaceCheck, NotEnrolled, decode
from devices.queue import EvidenceQueue, record_hash
from devices.recorder import now_rfc3339, parse_source
from notary.access import PrincipalKey, SignedRequests
from verifier.commitments import commit, new_salt
from verifier.face import FaceMatch

CAPTURE_ATTEMPTS = 30  # frames read from a camera before giving up (the first ones may be dark)


class CheckinRefused(Exception):
    """The check-in was not recorded; the message says why."""


class FaceVerifier(Protocol):
    """A face-verification provider: counts the faces in the photo (OpenCV BGR) and, for exactly one, compares
    it with the enrolled photo of the expert with that identity number (`devices.face.NotEnrolled` if none)."""

    name: str

    def verify(self, image: np.ndarray[Any, Any], identity_number: str) -> FaceCheck: ...


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
        self._key = self._load_key(Path(key_file))
        self._aead = AESGCM(self._key)

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

    def label(self, value: str) -> str:
        """A keyed hash of `value` (HMAC-SHA256 under a key derived from the blob key): finds what belongs to an
        identity number without writing the number to disk."""
        key = hmac.new(self._key, b"bidtrace/blob-label/v1", hashlib.sha256).digest()
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

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


class HubReporter:
    """The station's client of the hub's API: every request signed (RFC 9421) with the station's own key."""

    def __init__(self, hub_url: str, key: PrincipalKey, timeout: float = 30.0) -> None:
        self._api = httpx.Client(base_url=hub_url, timeout=timeout, auth=SignedRequests(key))

    def report_checkin(self, session_id: str, expert_id: str, checkin_leaf: int, salt: str) -> dict[str, Any]:
        """POST the check-in to the session's roster; the hub's answer, or HubRefused with its reason."""
        response = self._api.post(f"/sessions/{session_id}/checkins",
                                  json={"expert_id": expert_id, "checkin_leaf": checkin_leaf, "salt": salt})
        if response.status_code != 201:
            try:
                detail = str(response.json().get("detail"))
            except ValueError:
                detail = response.text[:300]
            raise HubRefused(response.status_code, detail)
        answer: dict[str, Any] = response.json()
        return answer

    def close(self) -> None:
        self._api.close()


class HubRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the hub refused the check-in report ({status}): {detail}")
        self.status = status
        self.detail = detail


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
    face_match: FaceMatch | None = None


@dataclass
class HubReports:
    """What `CheckinStation.report_to_hub` did: answers of the hub, reports still waiting, refusals."""

    reported: list[dict[str, Any]] = field(default_factory=list)
    waiting: int = 0
    refused: list[str] = field(default_factory=list)
    error: str | None = None


_REPORT = "hub_report:"  # queue state: hub_report:<record hash> -> {"expert_id", "salt"}, then "reported" or why not


def hub_report(record: dict[str, Any], expert_id: str, salt: str) -> dict[str, str]:
    """The queue state that makes `CheckinStation.report_to_hub` report `record` as `expert_id`'s check-in: to
    be enqueued with the record, in one transaction. Named by the record's hash, which its receipt names."""
    return {f"{_REPORT}{record_hash(record)}": json.dumps({"expert_id": expert_id, "salt": salt})}


class CheckinStation:
    def __init__(self, config: CheckinConfig, queue: EvidenceQueue, blobs: BlobStore,
                 faces: FaceCounter | None = None, verifier: FaceVerifier | None = None,
                 hub: HubReporter | None = None) -> None:
        self.config = config
        self.queue = queue
        self.blobs = blobs
        self.faces = faces or HaarFaceCounter()  # counts faces when no verifier does
        self.verifier = verifier
        self.hub = hub

    def _compare(self, image: np.ndarray[Any, Any], identity_number: str) -> tuple[int, FaceMatch | None]:
        if self.verifier is None:
            return self.faces.count(image), None
        provider = self.verifier.name
        try:
            check = self.verifier.verify(image, identity_number)
        except NotEnrolled as exc:
            raise CheckinRefused(f"{exc}; check-in not recorded") from exc
        except Exception as exc:
            raise CheckinRefused(f"face-verification provider {provider} failed: {exc}") from exc
        if check.faces == 1 and check.match is None:
            raise CheckinRefused(f"face-verification provider {provider} found one face but gave no comparison")
        return check.faces, check.match

    def check_in(self, identity_number: str, photo: bytes, expert_id: str | None = None) -> CheckinResult:
        """Check in the expert with `identity_number` on `photo`; with `expert_id`, also queue the report
        of this check-in to the hub (sent by `report_to_hub` once the notary has acknowledged the record)."""
        identity_number = identity_number.strip()
        if not 1 <= len(identity_number) <= 64:
            raise CheckinRefused("the identity number must be 1 to 64 characters")
        image = decode(photo)
        if image is None:
            raise CheckinRefused("the photo is not an image OpenCV can decode")
        faces, match = self._compare(image, identity_number)
        if faces != 1:
            raise CheckinRefused(f"exactly one face must be in the photo, found {faces}; check-in not recorded")
        result: Literal["matched", "rejected", "unverified"] = "unverified"
        if match is not None:
            result = "matched" if match.matched else "rejected"
        digest = self.blobs.put(photo)
        salt = new_salt()
        c = self.config
        kind = media_type(photo)
        suffix = {"image/jpeg": ".jpg", "image/png": ".png"}.get(kind, "")
        payload: dict[str, Any] = {
            "expert_commitment": commit(salt, identity_number), "method": "face", "result": result,
            "provider": self.verifier.name if self.verifier is not None else None, "photo_sha256": digest,
            "faces_detected": faces}
        if match is not None:
            payload["face_match"] = match.to_json()
        record = {
            "type": "checkin", "project_id": c.project_id, "session_id": c.session_id, "venue_id": c.venue_id,
            "device_id": c.device_id, "occurred_at": now_rfc3339(), "payload": payload,
            "attachments": [{"name": f"{digest}{suffix}", "sha256": digest, "size": len(photo),
                             "media_type": kind}],
        }
        disclosure = {"field": "expert_commitment", "salt": salt.hex(), "value": identity_number}
        seq = self._enqueue(record, disclosure, expert_id, salt.hex())
        return CheckinResult(record, seq, digest, faces, match)

    def _enqueue(self, record: dict[str, Any], disclosure: dict[str, str], expert_id: str | None, salt: str) -> int:
        state = {} if expert_id is None else hub_report(record, expert_id, salt)
        [seq] = self.queue.enqueue([record], disclosures=[[disclosure]], state=state)
        return seq

    def report_to_hub(self) -> HubReports:
        """Report every check-in the notary has acknowledged and the hub has not yet taken. A report the hub
        refuses is kept with its reason (and not sent again); one the hub could not be reached for waits."""
        if self.hub is None:
            raise CheckinRefused("this station has no hub to report to")
        out = HubReports()
        receipts = {record_hash(record): receipt for _, state, record, receipt in self.queue.records()
                    if state == "sent"}
        ready = []
        for key, value in self.queue.states(_REPORT).items():
            if not value.startswith("{"):
                continue  # reported, or refused with its reason
            receipt = receipts.get(key[len(_REPORT):])
            if receipt is None:
                out.waiting += 1
            else:
                ready.append((receipt.leaf_index, key, value, receipt))
        # In log order: the hub takes an expert's latest as it comes.
        for _, key, value, receipt in sorted(ready, key=lambda r: r[0]):
            pending = json.loads(value)
            try:
                answer = self.hub.report_checkin(self.config.session_id, pending["expert_id"],
                                                 receipt.leaf_index, pending["salt"])
            except HubRefused as exc:
                if exc.status >= 500 or exc.status == 429:
                    out.waiting += 1
                    out.error = str(exc)
                    continue
                self.queue.set_state({key: f"refused: {exc}"})
                out.refused.append(str(exc))
                continue
            except httpx.HTTPError as exc:
                out.waiting += 1
                out.error = f"hub unreachable ({type(exc).__name__}: {exc}); will retry"
                continue
            self.queue.set_state({key: "reported"})  # the opening is not kept once the hub has it
            out.reported.append(answer)
        return out
