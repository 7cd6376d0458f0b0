"""What a recording segment file holds: its streams (video with its size, audio with its rate and channels).

A `recording_segment` record lists them (`streams`), as the recorder read them back from the file it wrote;
with `--media`, `bidtrace verify` reads the same description from each segment file (its container
headers only, through FFmpeg's demuxers as PyAV ships them, after the file's hash matched the log) and
compares. This module is the one encoder and strict parser of that list, and the one way to read it from a
file.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifier.errors import MalformedInput
from verifier.strict import count, exact_object, text

MAX_STREAMS = 8
_CODEC = re.compile(r"[a-z0-9_]{1,32}")
_FIELDS = {"video": ("width", "height"), "audio": ("sample_rate", "channels")}


@dataclass(frozen=True)
class SegmentStream:
    kind: str  # "video" or "audio"
    codec: str  # FFmpeg's codec name: mpeg4, mjpeg, h264, aac, pcm_s16le, …
    first: int  # video: width in pixels; audio: sample rate in Hz
    second: int  # video: height in pixels; audio: channels

    @classmethod
    def parse(cls, value: Any, what: str) -> "SegmentStream":
        kind = value.get("kind") if isinstance(value, dict) else None
        if kind not in _FIELDS:
            raise MalformedInput(f"{what} kind must be video or audio, got {kind!r:.40}")
        first, second = _FIELDS[kind]
        value = exact_object(value, what, {"kind", "codec", first, second})
        codec = text(value, "codec", what)
        if not _CODEC.fullmatch(codec):
            raise MalformedInput(f"{what} codec must be an FFmpeg codec name (a-z, 0-9, _), got {codec!r:.40}")
        a, b = count(value, first, what), count(value, second, what)
        if not (0 < a <= 1_000_000 and 0 < b <= 100_000):
            raise MalformedInput(f"{what} {first} and {second} must be positive, got {a} and {b}")
        return cls(kind, codec, a, b)

    def encode(self) -> dict[str, Any]:
        first, second = _FIELDS[self.kind]
        return {"kind": self.kind, "codec": self.codec, first: self.first, second: self.second}

    def describe(self) -> str:
        if self.kind == "video":
            return f"video {self.codec} {self.first}×{self.second}"
        return f"audio {self.codec} {self.first} Hz × {self.second} ch"


def parse_streams(value: Any, what: str = "streams") -> tuple[SegmentStream, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_STREAMS:
        raise MalformedInput(f"{what} must be a list of 1 to {MAX_STREAMS} streams, got {str(value)[:60]}")
    return tuple(SegmentStream.parse(item, f"{what} {i}") for i, item in enumerate(value))


def encode_streams(streams: tuple[SegmentStream, ...]) -> list[dict[str, Any]]:
    return [s.encode() for s in streams]


def describe_streams(streams: tuple[SegmentStream, ...]) -> str:
    return ", ".join(s.describe() for s in streams) or "no stream"


def probe_streams(path: Path) -> tuple[SegmentStream, ...]:
    """The video and audio streams of a media file, from its container headers; other streams are left out."""
    import av  # FFmpeg, only when media is read

    try:
        with av.open(str(path), mode="r") as container:
            found = []
            for s in container.streams:
                ctx: Any = s.codec_context
                if s.type == "video":
                    found.append(SegmentStream("video", ctx.name, int(ctx.width), int(ctx.height)))
                elif s.type == "audio":
                    found.append(SegmentStream("audio", ctx.name, int(ctx.sample_rate), int(ctx.channels)))
            return tuple(found)
    except (av.FFmpegError, ValueError) as exc:
        raise MalformedInput(f"{path.name} is not a media file FFmpeg reads: {exc}") from exc
