"""Sound recorded with the video (高灵敏度拾音): synthetic frames and a generated tone go into each segment
file through PyAV; the notary accepts records that list the streams, each segment holds the tone for
exactly the time its frames cover, and a resumed recording picks the sound up where it left off."""

import wave
from pathlib import Path

import av
import numpy as np
import pytest

from devices.queue import open_queue
from devices.recorder import Recorder, RecorderError
from notary.client import SubmitterKey
from tests.devices.conftest import LiveNotary, make_video, segments_of
from tests.devices.test_recorder import DEVICE, config
from verifier.streams import SegmentStream, parse_streams, probe_streams

TONE_HZ = 440.0


def tone(path: Path, seconds: float, rate: int = 44_100, hz: float = TONE_HZ) -> Path:
    """A stereo 16-bit WAV file of a sine tone at a rate the recorder must resample (it keeps 48 kHz mono)."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.repeat(samples, 2).tobytes())
    return path


def sound_of(path: Path) -> tuple[np.ndarray, int]:
    """The decoded mono samples of a segment file's audio stream (from -1 to 1), and its sample rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = []
        for frame in container.decode(stream):
            samples = frame.to_ndarray().reshape(-1)
            chunks.append(samples / 32768.0 if samples.dtype == np.int16 else samples.astype(np.float64))
        return np.concatenate(chunks), int(stream.codec_context.sample_rate)


@pytest.fixture
def camera_key() -> SubmitterKey:
    return SubmitterKey.generate(DEVICE)


def loudest_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize(("codec", "video_codec", "audio_codec"), [("mp4v", "mpeg4", "aac"),
                                                                   ("MJPG", "mjpeg", "pcm_s16le")])
def test_each_segment_holds_the_sound_of_its_frames(live_notary: LiveNotary, camera_key: SubmitterKey,
                                                    tmp_path: Path, codec: str, video_codec: str,
                                                    audio_codec: str) -> None:
    live_notary.register(camera_key)
    video = make_video(tmp_path / "in.avi", frames=45, fps=10)
    out = tmp_path / "segments"
    queue = open_queue(tmp_path / "state" / "q.db", camera_key, live_notary.url)
    segments = Recorder(config(video, out, segment_seconds=2.0, codec=codec,
                               audio_source=str(tone(tmp_path / "mic.wav", 6.0))), queue).run()
    assert [s.frame_count for s in segments] == [20, 20, 5]
    assert queue.drain(30).refusal is None and queue.status().pending == 0  # the notary took the streams
    logged = segments_of(live_notary.entries(), "cam1")
    assert len(logged) == 3
    for segment, entry in zip(segments, logged, strict=True):
        streams = parse_streams(entry.record["payload"]["streams"])
        assert set(streams) == {SegmentStream("video", video_codec, 160, 120),
                                SegmentStream("audio", audio_codec, 48_000, 1)}
        assert probe_streams(segment.path) == streams
        samples, rate = sound_of(segment.path)
        covered = segment.frame_count / 10 * rate
        # AAC frames round the stream up to 1024 samples and add the encoder's priming; PCM is exact.
        assert covered <= len(samples) <= covered + (3 * 1024 if audio_codec == "aac" else 0)
        assert abs(loudest_hz(samples, rate) - TONE_HZ) < 5, "the segment does not hold the tone"
        assert np.sqrt(np.mean(samples ** 2)) > 0.15  # a 0.3 full-scale sine: 0.21 RMS, not silence
    queue.close()


def test_a_resumed_recording_takes_the_sound_up_where_it_stopped(camera_key: SubmitterKey, tmp_path: Path) -> None:
    # The tone rises by 100 Hz a second: the second run's first segment must hold the pitch of seconds 2-4.
    rate = 48_000
    t = np.arange(6 * rate) / rate
    sweep = (0.3 * 32767 * np.sin(2 * np.pi * (300 * t + 50 * t ** 2))).astype(np.int16)
    mic = tmp_path / "sweep.wav"
    with wave.open(str(mic), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(sweep.tobytes())
    video = make_video(tmp_path / "in.avi", frames=60, fps=10)
    out = tmp_path / "segments"
    queue = open_queue(tmp_path / "state" / "q.db", camera_key, None)
    kw = {"segment_seconds": 2.0, "codec": "MJPG", "audio_source": str(mic)}
    first = Recorder(config(video, out, max_frames=20, **kw), queue).run()
    second = Recorder(config(video, out, **kw), queue).run()
    assert [s.index for s in first] == [0] and [s.index for s in second] == [1, 2]
    samples, _ = sound_of(second[0].path)
    # seconds 2-4 of the sweep: its instantaneous pitch runs 500-700 Hz, centred on 600
    assert 560 < loudest_hz(samples, rate) < 640
    queue.close()


def test_an_audio_source_without_sound_is_refused_by_name(camera_key: SubmitterKey, tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.avi", frames=5, fps=10)
    queue = open_queue(tmp_path / "q.db", camera_key, None)
    with pytest.raises(RecorderError, match="has no audio stream"):
        Recorder(config(video, tmp_path / "out", audio_source=str(video)), queue).run()
    with pytest.raises(RecorderError, match="cannot open audio source"):
        Recorder(config(video, tmp_path / "out", audio_source=str(tmp_path / "absent.wav")), queue).run()
    queue.close()


def test_a_segment_without_a_microphone_lists_its_video_alone(camera_key: SubmitterKey, tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.avi", frames=10, fps=10)
    queue = open_queue(tmp_path / "q.db", camera_key, None)
    [segment] = Recorder(config(video, tmp_path / "out", segment_seconds=1.0, codec="mp4v"), queue).run()
    assert segment.record["payload"]["streams"] == [{"kind": "video", "codec": "mpeg4", "width": 160, "height": 120}]
    queue.close()
