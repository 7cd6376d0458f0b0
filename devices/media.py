"""Segment files with PyAV (FFmpeg as its wheels ship it): video frames and, from a microphone or any audio
input FFmpeg opens, sound, muxed into one file per segment.

Sound is kept in step with the video on the media clock: after each video frame the segment holds exactly
the audio samples of the time its frames cover (frames / fps × sample rate), so a segment's audio and video
are equally long and the next segment's sound continues where this one's ended.
"""

from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np

SAMPLE_RATE = 48_000
# codec name (the recorder's option) -> container format, video codec, its pixel format, audio codec
FORMATS: dict[str, tuple[str, str, str, str]] = {
    "mp4v": ("mp4", "mpeg4", "yuv420p", "aac"),
    "MJPG": ("avi", "mjpeg", "yuvj420p", "pcm_s16le"),
}


class MediaError(Exception):
    """A media input or output that cannot be used; the message names it."""


class AudioFeed:
    """Mono 16-bit samples at SAMPLE_RATE from an audio input: a file, a stream, or a capture device
    (`input_format` "alsa" or "pulse" with a device name, as FFmpeg names them)."""

    def __init__(self, source: str, input_format: str | None = None) -> None:
        try:
            self._container: Any = av.open(source, mode="r", format=input_format)
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"cannot open audio source {source!r}: {exc}") from exc
        audio = [s for s in self._container.streams if s.type == "audio"]
        if not audio:
            self._container.close()
            raise MediaError(f"audio source {source!r} has no audio stream")
        self._frames: Any = self._container.decode(audio[0])
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._buffer = np.zeros(0, np.int16)
        self.ended = False
        self.silence = 0  # samples padded with silence after the source ended

    def _fill(self, n: int) -> None:
        chunks: list[Any] = [self._buffer]
        have = len(self._buffer)
        while have < n and not self.ended:
            try:
                frame = next(self._frames)
            except StopIteration:
                self.ended = True
                for flushed in self._resampler.resample(None):
                    chunks.append(flushed.to_ndarray().reshape(-1))
                break
            for out in self._resampler.resample(frame):
                samples = out.to_ndarray().reshape(-1)
                chunks.append(samples)
                have += len(samples)
        self._buffer = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]

    def take(self, n: int) -> np.ndarray:
        """The next `n` samples; silence once the source has ended (counted in `silence`)."""
        self._fill(n)
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        if len(out) < n:
            self.silence += n - len(out)
            out = np.concatenate([out, np.zeros(n - len(out), np.int16)])
        return out

    def skip(self, n: int) -> None:
        while n > 0:
            n -= len(self.take(min(n, SAMPLE_RATE)))

    def close(self) -> None:
        self._container.close()


class SegmentWriter:
    """One segment file: video frames (BGR arrays) and, when `audio`, the feed's samples beside them."""

    def __init__(self, path: Path, codec: str, fps: float, size: tuple[int, int], audio: AudioFeed | None) -> None:
        container_format, video_codec, pix_fmt, audio_codec = FORMATS[codec]
        self.fps = fps
        self.audio = audio
        self.frames = 0
        self.samples = 0
        try:
            self._container: Any = av.open(str(path), mode="w", format=container_format)
            rate = Fraction(fps).limit_denominator(1001)
            self._video: Any = cast(Any, self._container.add_stream(video_codec, rate=rate))
            self._video.width, self._video.height = size
            self._video.pix_fmt = pix_fmt
            self._sound: Any = None
            if audio is not None:
                self._sound = self._container.add_stream(audio_codec, rate=SAMPLE_RATE, layout="mono")
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"cannot write {video_codec} video to {path}: {exc}") from exc
        self._rate = rate

    def write(self, bgr: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
        frame.pts = self.frames
        frame.time_base = 1 / self._rate
        self._mux(self._video.encode(frame))
        self.frames += 1
        if self.audio is not None:
            due = round(self.frames / self.fps * SAMPLE_RATE) - self.samples
            if due > 0:
                self._write_audio(self.audio.take(due))

    def _write_audio(self, samples: np.ndarray) -> None:
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self.samples
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._mux(self._sound.encode(frame))
        self.samples += len(samples)

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            self._container.mux(packet)

    def close(self) -> None:
        self._mux(self._video.encode(None))
        if self._sound is not None:
            self._mux(self._sound.encode(None))
        self._container.close()
