"""Recording segmenter: camera, stream or video file -> segment files -> hash-chained `recording_segment` records.

Frames are read with OpenCV and written with PyAV (`devices.media`) to segment files of a fixed number of
frames (segment length in seconds times the source's frame rate), with sound from an audio input beside
them when one is given (`audio_source`); the record lists the streams the file holds, as read back from it.
When a segment is complete its file is closed and fsync'd, hashed (SHA-256 over the file), and its record
is put in the agent's durable queue *together with* the new chain state (next index, hash and end of this
segment) in one transaction; only then is the file renamed from ``NAME.part.EXT`` to ``NAME.EXT``. So after
a crash at any point:

* a ``.part`` file whose segment is already queued is renamed (its hash is checked first);
* a ``.part`` file of the segment being written when the agent died is kept, renamed ``*.interrupted-…``,
  and reported as an `incident` record (with the partial file's hash) — it is not part of the chain;
* with a media key to seal to (`seal_to`), a settled file is sealed (`verifier.sealed`) instead of renamed:
  the venue keeps ``NAME.EXT.sealed`` and the plaintext is removed, so at rest the disk holds only what the
  province's private key opens; only the segment being written is in clear, until it is complete;
* the chain resumes at the next index and names the last queued segment as its predecessor. For a video
  file source the frames already segmented are skipped, so the recording continues exactly where the
  last complete segment ended.

Times: with the *media* clock (default for files) a segment starts where the previous one ended and lasts
frame_count / fps; with the *wall* clock (default for cameras and streams) a segment ends when its last
frame was read and starts where the previous one of the same run ended — after a restart the first new
segment starts at the restart, so the outage shows as a time gap, as it should.
"""

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from devices.media import SAMPLE_RATE, AudioFeed, MediaError, SegmentWriter
from devices.queue import EvidenceQueue
from verifier.errors import MalformedInput
from verifier.sealed import SUFFIX, seal
from verifier.streams import encode_streams, probe_streams
from verifier.times import format_time, now_local, parse_time

CHUNK = 4 << 20
CODECS: dict[str, tuple[str, str]] = {"mp4v": (".mp4", "video/mp4"), "MJPG": (".avi", "video/x-msvideo")}
MAX_READ_FAILURES = 50  # consecutive failed reads of a live source before the recording ends


def sha256_file(path: Path, chunk: int = CHUNK) -> tuple[str, int]:
    """(hex SHA-256, size) of a file, read in large chunks into one reused buffer."""
    h = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    size = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            size += n
    return h.hexdigest(), size


def now_rfc3339() -> str:
    """A capture time: this machine's clock, with its offset."""
    return now_local()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    _fsync_file(path)


def parse_source(source: str) -> int | str:
    return int(source) if source.isdigit() else source


def is_file_source(source: str) -> bool:
    return not source.isdigit() and "://" not in source


class RecorderError(Exception):
    pass


@dataclass
class RecorderConfig:
    source: str  # camera index ("0"), stream URL, or video file
    camera_id: str
    project_id: str
    session_id: str
    venue_id: str
    device_id: str
    output_dir: Path
    segment_seconds: float = 10.0
    max_frames: int | None = None  # frames to read in this run
    max_seconds: float | None = None  # wall-clock length of this run
    codec: str = "mp4v"
    fps_fallback: float = 25.0  # when the source does not say its frame rate
    clock: Literal["auto", "media", "wall"] = "auto"
    realtime: bool = False  # pace a file source at its frame rate, as a camera would deliver it
    audio_source: str | None = None  # microphone or audio input, as FFmpeg opens it (file, URL, device)
    audio_format: str | None = None  # FFmpeg input format of audio_source: "alsa", "pulse", … (None: guessed)
    seal_to: X25519PublicKey | None = None  # the province's media key: segments are kept sealed to it


@dataclass(frozen=True)
class Segment:
    index: int
    path: Path
    sha256: str
    size: int
    frame_count: int
    start: str
    end: str
    previous: str | None
    record: dict[str, Any]


class Recorder:
    def __init__(self, config: RecorderConfig, queue: EvidenceQueue,
                 on_segment: Callable[[Segment], None] | None = None) -> None:
        if config.codec not in CODECS:
            raise RecorderError(f"codec must be one of {sorted(CODECS)}, got {config.codec!r}")
        if config.segment_seconds <= 0:
            raise RecorderError("segment length must be positive")
        self.config = config
        self.queue = queue
        self.on_segment = on_segment
        self._stop = threading.Event()
        self.ext, self.media_type = CODECS[config.codec]
        self.segments: list[Segment] = []
        self.incidents: list[dict[str, Any]] = []
        c = config
        self._key = f"chain/{c.venue_id}/{c.camera_id}/"
        self.clock = c.clock if c.clock != "auto" else ("media" if is_file_source(c.source) else "wall")

    # ------------------------------------------------------------------ chain state

    def _state(self, name: str) -> str | None:
        return self.queue.get_state(self._key + name)

    @property
    def next_index(self) -> int:
        return int(self._state("next_index") or 0)

    def _name(self, index: int) -> str:
        return f"{self.config.camera_id}-{index:06d}{self.ext}"

    def _part_name(self, index: int) -> Path:
        # the extension stays last: OpenCV's FFmpeg backend picks the container from it
        return self.config.output_dir / f"{self.config.camera_id}-{index:06d}.part{self.ext}"

    def stop(self) -> None:
        """Finish the current segment and return from `run` (safe from a signal handler or another thread)."""
        self._stop.set()

    # ------------------------------------------------------------------ recovery

    def recover(self) -> None:
        """Settle files left by a crash (see the module docstring)."""
        out = self.config.output_dir
        out.mkdir(parents=True, exist_ok=True)
        pattern = re.compile(re.escape(self.config.camera_id) + r"-(\d{6})\.part" + re.escape(self.ext))
        queued: dict[int, str] | None = None
        for part in sorted(out.glob(f"{self.config.camera_id}-*.part{self.ext}")):
            m = pattern.fullmatch(part.name)
            if m is None:
                continue
            index = int(m.group(1))
            digest, size = sha256_file(part)
            if index < self.next_index:
                if queued is None:
                    queued = self._queued_hashes()
                if queued.get(index) == digest:
                    self._settle(part, out / self._name(index))
                    continue
            self._report_interrupted(part, index, digest, size)

    def _settle(self, part: Path, final: Path) -> Path:
        """Give a complete file its name: as it is, or sealed to the media key with the plaintext removed."""
        if self.config.seal_to is None:
            os.replace(part, final)
            _fsync_dir(final.parent)
            return final
        sealed = final.with_name(final.name + SUFFIX)
        partial = final.with_name(final.name + SUFFIX + ".tmp")
        partial.write_bytes(seal(part.read_bytes(), self.config.seal_to, final.name))
        _fsync_file(partial)
        os.replace(partial, sealed)
        os.remove(part)
        _fsync_dir(final.parent)
        return sealed

    def _queued_hashes(self) -> dict[int, str]:
        found: dict[int, str] = {}
        for _, _, record, _ in self.queue.records():
            p = record.get("payload", {})
            if (record.get("type") == "recording_segment" and record.get("venue_id") == self.config.venue_id
                    and p.get("camera_id") == self.config.camera_id):
                found[int(p["segment_index"])] = str(p["sha256"])
        return found

    def _report_interrupted(self, part: Path, index: int, digest: str, size: int) -> None:
        c = self.config
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
        kept = part.with_name(f"{self._name(index)}.interrupted-{stamp}")
        stored = self._settle(part, kept)
        written = datetime.fromtimestamp(stored.stat().st_mtime).astimezone()
        started = self._state("previous_end") or format_time(written)
        now = now_rfc3339()
        record = {
            "type": "incident", "project_id": c.project_id, "session_id": c.session_id, "venue_id": c.venue_id,
            "device_id": c.device_id, "occurred_at": now,
            "payload": {
                "incident_id": f"{c.camera_id}.interrupted.{index}.{stamp}",
                "kind": "device_failure",
                "description": (f"recorder of camera {c.camera_id} stopped while writing segment {index}; "
                                f"the partial file ({size} bytes) is kept as {stored.name} and is not part of "
                                f"the hash chain, which continues at segment {self.next_index}"),
                "started_at": started, "ended_at": now,
            },
            "attachments": [{"name": kept.name, "sha256": digest, "size": size,
                             "media_type": "application/octet-stream"}],
        }
        self.queue.enqueue([record])
        self.incidents.append(record)

    # ------------------------------------------------------------------ recording

    def run(self) -> list[Segment]:
        """Record until the source ends, a limit is reached, or `stop()`; return the segments written."""
        c = self.config
        self.recover()
        cap = cv2.VideoCapture(parse_source(c.source))
        if not cap.isOpened():
            raise RecorderError(f"cannot open video source {c.source!r}")
        audio: AudioFeed | None = None
        try:
            if c.audio_source is not None:
                audio = AudioFeed(c.audio_source, c.audio_format)
            return self._record(cap, audio)
        except MediaError as exc:
            raise RecorderError(str(exc)) from exc
        finally:
            cap.release()
            if audio is not None:
                audio.close()

    def _record(self, cap: Any, audio: AudioFeed | None) -> list[Segment]:
        c = self.config
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not fps > 0 or fps > 1000:
            fps = c.fps_fallback
        per_segment = max(1, round(c.segment_seconds * fps))
        consumed = 0
        if is_file_source(c.source) and self._state("source") == os.path.abspath(c.source):
            consumed = self._skip(cap, int(self._state("frames_consumed") or 0))
            if audio is not None:  # the sound of the frames already segmented was segmented with them
                audio.skip(round(consumed / fps * SAMPLE_RATE))
        started = time.monotonic()
        deadline = started + c.max_seconds if c.max_seconds is not None else None
        limit = c.max_frames if c.max_frames is not None else 2**62
        writer: Any = None
        part: Path | None = None
        size: tuple[int, int] | None = None
        seg_start = ""
        frames = 0
        read_frames = 0
        failures = 0
        continuing = False  # a segment of this run already ended: the next starts where it ended
        while read_frames < limit and not self._stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if c.realtime:
                lag = started + read_frames / fps - time.monotonic()
                if lag > 0:
                    time.sleep(min(lag, 1.0))
            ok, frame = cap.read()
            if not ok or frame is None:
                if is_file_source(c.source):
                    break
                failures += 1
                if failures >= MAX_READ_FAILURES:
                    break
                time.sleep(0.02)
                continue
            failures = 0
            read_frames += 1
            if writer is None:
                height, width = frame.shape[:2]
                size = (width, height)
                part = self._part_name(self.next_index)
                writer = SegmentWriter(part, c.codec, fps, size, audio)
                seg_start = self._segment_start(continuing)
                frames = 0
            assert size is not None and part is not None
            if (frame.shape[1], frame.shape[0]) != size:
                frame = cv2.resize(frame, size)
            writer.write(np.ascontiguousarray(frame))
            frames += 1
            if frames == per_segment:
                writer.close()
                writer = None
                consumed += frames
                self._finish(part, frames, seg_start, fps, consumed)
                continuing = True
        if writer is not None and part is not None:
            writer.close()
            consumed += frames
            self._finish(part, frames, seg_start, fps, consumed)
        return self.segments

    def _skip(self, cap: Any, count: int) -> int:
        skipped = 0
        while skipped < count and cap.grab():
            skipped += 1
        return skipped

    def _segment_start(self, continuing: bool) -> str:
        previous_end = self._state("previous_end")
        if previous_end is not None and (self.clock == "media" or continuing):
            return previous_end
        return now_rfc3339()

    def _finish(self, part: Path, frames: int, start: str, fps: float, consumed: int) -> Segment:
        c = self.config
        _fsync_file(part)
        digest, size = sha256_file(part)
        try:
            streams = encode_streams(probe_streams(part))
        except MalformedInput as exc:
            raise RecorderError(f"the segment just written cannot be read back: {exc}") from exc
        index = self.next_index
        previous = self._state("previous_sha256")
        if self.clock == "media":
            end = format_time(parse_time(start, "segment start") + timedelta(seconds=frames / fps))
        else:
            end = now_rfc3339()
        final = c.output_dir / self._name(index)
        record = {
            "type": "recording_segment", "project_id": c.project_id, "session_id": c.session_id,
            "venue_id": c.venue_id, "device_id": c.device_id, "occurred_at": end,
            "payload": {"camera_id": c.camera_id, "segment_index": index, "start": start, "end": end,
                        "frame_count": frames, "sha256": digest, "previous_segment": previous,
                        "streams": streams},
            "attachments": [{"name": final.name, "sha256": digest, "size": size, "media_type": self.media_type}],
        }
        state = {"next_index": str(index + 1), "previous_sha256": digest, "previous_end": end,
                 "frames_consumed": str(consumed)}
        if is_file_source(c.source):
            state["source"] = os.path.abspath(c.source)
        self.queue.enqueue([record], state={self._key + k: v for k, v in state.items()})
        settled = self._settle(part, final)
        segment = Segment(index, settled, digest, size, frames, start, end, previous, record)
        self.segments.append(segment)
        if self.on_segment is not None:
            self.on_segment(segment)
        return segment

    def chain_state(self) -> dict[str, str | None]:
        names = ("next_index", "previous_sha256", "previous_end", "frames_consumed", "source")
        return {n: self._state(n) for n in names}


def describe(segment: Segment) -> str:
    return json.dumps({"index": segment.index, "file": segment.path.name, "sha256": segment.sha256,
                       "frames": segment.frame_count, "start": segment.start, "end": segment.end})
