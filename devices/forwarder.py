"""Forwarding segment files to the province's media store (S3: SeaweedFS), so one venue disk failing loses nothing.

Every segment the recorder queued is uploaded, as stored on the venue (sealed to the province's media key
when the recorder seals), to `<project>/<venue>/<file>` in the store's bucket. The store checks a SHA-256 on
arrival: a small file goes in one PUT carrying its SHA-256, a large one in parts of `part_size`, each part
carrying its own, and the store refuses a part whose bytes do not match. Afterwards the forwarder asks the
store for the object's checksum and size and compares them with its own (for parts, S3's composite: the
SHA-256 of the parts' SHA-256s, then "-" and their number). Only then is the arrival logged, as a
`media_arrival` record in the same durable queue as the segments, and the segment marked forwarded in the
same transaction.

A multipart upload survives a cut (the store or the network down, the agent killed): its upload id is kept
in the queue's state, and the next attempt asks the store which parts it already holds (same size and
MD5 ETag as the local part) and sends only the rest.
"""

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devices.queue import EvidenceQueue
from verifier.sealed import SUFFIX
from verifier.times import now_local

MIN_PART = 5 * 1024 * 1024  # S3's smallest part but the last


class ForwardError(Exception):
    """A segment that could not be forwarded now; the message says why. It is tried again later."""


@dataclass(frozen=True)
class MediaStore:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def client(self, timeout: float = 30.0) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=self.region,
                            config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=timeout))


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class MediaForwarder:
    def __init__(self, store: MediaStore, queue: EvidenceQueue, folder: Path, part_size: int = 8 * 1024 * 1024,
                 on_part: Callable[[int], None] | None = None) -> None:
        if part_size < MIN_PART:
            raise ValueError(f"part_size must be at least {MIN_PART} bytes (S3's smallest part)")
        self.store, self.queue, self.folder = store, queue, folder
        self.part_size = part_size
        self.on_part = on_part  # called after each part the store accepted (tests cut the store there)
        self._client: Any = None

    def _s3(self) -> Any:
        if self._client is None:
            self._client = self.store.client()
        return self._client

    def pending(self) -> list[dict[str, Any]]:
        """Queued segment records whose file has not been forwarded yet."""
        return [r for _, _, r, _ in self.queue.records()
                if r.get("type") == "recording_segment" and self.queue.get_state(self._state(r)) is None]

    @staticmethod
    def _state(record: dict[str, Any]) -> str:
        p = record["payload"]
        return f"forwarded/{record['venue_id']}/{p['camera_id']}/{p['segment_index']}"

    def forward_pending(self) -> int:
        """Forward every pending segment in order; return how many arrived. Raises ForwardError at the first
        that cannot be forwarded now (the rest wait for the next attempt)."""
        from botocore.exceptions import BotoCoreError, ClientError

        forwarded = 0
        for record in self.pending():
            try:
                self._forward(record)
            except (BotoCoreError, ClientError, OSError) as exc:
                self._client = None  # a fresh connection next time
                p = record["payload"]
                raise ForwardError(f"segment {p['segment_index']} of camera {p['camera_id']} not forwarded: "
                                   f"{type(exc).__name__}: {exc}") from exc
            forwarded += 1
        return forwarded

    def _local_file(self, record: dict[str, Any]) -> Path:
        name = str(record["attachments"][0]["name"])
        for candidate in (self.folder / (name + SUFFIX), self.folder / name):
            if candidate.is_file():
                return candidate
        raise ForwardError(f"segment file {name} is not in {self.folder}")

    def _forward(self, record: dict[str, Any]) -> None:
        path = self._local_file(record)
        key = f"{record['project_id']}/{record['venue_id']}/{path.name}"
        data = path.read_bytes()
        state = self._state(record)
        checksum = self._upload(key, data, state)
        head = self._s3().head_object(Bucket=self.store.bucket, Key=key, ChecksumMode="ENABLED")
        if head.get("ChecksumSHA256") != checksum or int(head["ContentLength"]) != len(data):
            raise ForwardError(f"the store holds {key} with checksum {head.get('ChecksumSHA256')} and "
                               f"{head['ContentLength']} bytes, not {checksum} and {len(data)}")
        p = record["payload"]
        arrival = {
            "type": "media_arrival", "project_id": record["project_id"], "session_id": record["session_id"],
            "venue_id": record["venue_id"], "device_id": record["device_id"],
            "occurred_at": now_local(),
            "payload": {"camera_id": p["camera_id"], "segment_index": p["segment_index"], "segment_sha256": p["sha256"],
                        "object_key": key, "stored_sha256": hashlib.sha256(data).hexdigest(),
                        "stored_size": len(data), "store_checksum": checksum,
                        "sealed": path.name.endswith(SUFFIX)},
        }
        self.queue.enqueue([arrival], state={state: key, state + "/upload_id": ""})

    def _upload(self, key: str, data: bytes, state: str) -> str:
        s3, bucket = self._s3(), self.store.bucket
        if len(data) <= self.part_size:
            checksum = _b64(hashlib.sha256(data).digest())
            s3.put_object(Bucket=bucket, Key=key, Body=data, ChecksumSHA256=checksum)
            return checksum
        upload_id = self.queue.get_state(state + "/upload_id") or None
        held: dict[int, dict[str, Any]] = {}
        if upload_id is not None:
            try:
                listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
                held = {int(part["PartNumber"]): part for part in listed.get("Parts", [])}
            except s3.exceptions.NoSuchUpload:
                upload_id = None
        if upload_id is None:
            upload_id = str(s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")["UploadId"])
            self.queue.set_state({state + "/upload_id": upload_id})
        parts, digests = [], []
        for number, offset in enumerate(range(0, len(data), self.part_size), 1):
            chunk = data[offset:offset + self.part_size]
            digest = hashlib.sha256(chunk).digest()
            digests.append(digest)
            have = held.get(number)
            if have is not None and int(have["Size"]) == len(chunk) and \
                    str(have["ETag"]).strip('"') == hashlib.md5(chunk, usedforsecurity=False).hexdigest():
                etag = str(have["ETag"])
            else:
                etag = str(s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk,
                                          ChecksumSHA256=_b64(digest), ChecksumAlgorithm="SHA256")["ETag"])
                if self.on_part is not None:
                    self.on_part(number)
            parts.append({"PartNumber": number, "ETag": etag, "ChecksumSHA256": _b64(digest)})
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        return f"{_b64(hashlib.sha256(b''.join(digests)).digest())}-{len(parts)}"
